using ScalingInteractive.Fitting;

namespace ScalingInteractive.Tests.Fitting;

/// <summary>One instance of each Fitting result type, for the display tests.</summary>
internal static class FittingSamples
{
    private static readonly Lazy<object[]> Samples = new(() =>
    {
        var data = LawTests.Law1Data(0.02, 1);
        var starts = ScalingLaws.Chinchilla.StartGrid().Where((_, i) => i % 500 == 0).ToArray();
        var fit = ScalingFit.Bootstrap(ScalingFit.Extrapolate(ScalingLaws.Chinchilla, data, "N<5e9", new FitOptions { Starts = starts }),
            new BootstrapOptions { Resamples = 20 });
        var power = ScalingFit.Fit(ScalingLaws.Power, FitData.FromArrays([1, 2, 3, 4.0], [1, 2.1, 2.9, 4.2]));
        return [fit, fit.Bootstrap!, fit.Holdout!, ScalingFit.Compare(power, power), ComputeOptimal.Allocate(fit, [1e20, 1e22], [2.2])];
    });

    public static IEnumerable<object> All() => Samples.Value;
}
