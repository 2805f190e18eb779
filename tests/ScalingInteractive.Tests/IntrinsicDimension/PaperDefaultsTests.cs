using ScalingInteractive.IntrinsicDimension;
using Xunit;

namespace ScalingInteractive.Tests.IntrinsicDimension;

/// <summary>The paper-named definitions of the intrinsic-dimension capability (Li et al. 2018, "Measuring the intrinsic dimension of objective landscapes").</summary>
public sealed class PaperDefaultsTests
{
    /// <summary>
    /// Li et al. 2018, section 2: "we define the intrinsic dimension d_int90 ... as the dimension at which performance
    /// reaches 90% of the baseline" (full-parameter training); d90 is the default and first fraction reported.
    /// </summary>
    [Fact]
    public void D90_is_the_smallest_swept_d_reaching_90_percent_of_the_full_training_baseline()
    {
        Assert.Equal(0.9, IntrinsicDimensionAnalysis.DefaultFractions[0]);
        // Baseline accuracy 0.95 (two seeds); 90% of it is 0.855. d = 100 reaches 0.85 (below), d = 300 reaches 0.86.
        MetricPoint[] points =
        [
            new(30, 0, 0.50), new(30, 1, 0.52),
            new(100, 0, 0.84), new(100, 1, 0.86),
            new(300, 0, 0.855), new(300, 1, 0.865),
            new(1000, 0, 0.93), new(1000, 1, 0.94),
        ];
        var thresholds = IntrinsicDimensionAnalysis.Thresholds(points, [0.94, 0.96], IntrinsicDimensionAnalysis.DefaultFractions, resamples: 0);
        var d90 = thresholds[0];
        Assert.Equal(0.9, d90.Fraction);
        Assert.Equal(0.9 * 0.95, d90.Target, 12);
        Assert.Equal(300, d90.Dimension);
        // Log interpolation between (100, 0.85) and (300, 0.86) at 0.855: halfway in log d.
        Assert.Equal(Math.Sqrt(100.0 * 300), d90.Interpolated!.Value, 6);
    }
}
