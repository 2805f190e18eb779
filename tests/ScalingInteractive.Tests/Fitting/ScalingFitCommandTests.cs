using ScalingInteractive.Commands;
using ScalingInteractive.Fitting;
using ScalingInteractive.Tests.Commands;

namespace ScalingInteractive.Tests.Fitting;

public class ScalingFitCommandTests
{
    [Fact]
    public async Task Command_fits_a_variable_and_sets_the_result_variable()
    {
        var host = new TestHost();
        var x = ComputeOptimal.LogSpaced(1e3, 1e7, 10);
        host.Variables["points"] = new Dictionary<string, double[]> { ["tokens"] = x, ["loss"] = x.Select(v => 1.5 + 30 * Math.Pow(v, -0.3)).ToArray() };
        await CommandCatalog.InvokeAsync("#!scaling-fit --law saturating-power --data points --x tokens --y loss --bootstrap 30 --seed 3 --name fit", host);
        var fit = Assert.IsType<ScalingLawFit>(host.Variables["fit"]);
        Assert.Equal(0.3, fit["alpha"], 1e-6);
        Assert.Equal(30, fit.Bootstrap!.Resamples);
        Assert.Contains(host.Shown, h => h.Value is ScalingLawFit);
    }

    [Fact]
    public async Task Command_reads_csv_with_json_columns_and_a_holdout()
    {
        string csv = Path.Combine(Path.GetTempPath(), $"si-fit-{Guid.NewGuid():N}.csv");
        var data = LawTests.Law1Data(0.01, 4);
        File.WriteAllLines(csv, new[] { "params,tokens,loss" }.Concat(Enumerable.Range(0, data.Count).Select(i =>
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{data.X[0][i]:R},{data.X[1][i]:R},{data.Y[i]:R}"))));
        try
        {
            var host = new TestHost();
            await CommandCatalog.InvokeAsync($"#!scaling-fit chinchilla --data \"{csv}\" --x [\"params\",\"tokens\"] --y loss --bootstrap 0 --holdout params>5e9 --loss squared --name f", host);
            var fit = Assert.IsType<ScalingLawFit>(host.Variables["f"]);
            Assert.Equal(LossKind.Squared, fit.Loss);
            Assert.Equal(data.X[0].Count(n => n > 5e9), fit.Holdout!.HeldOut.Count);
            Assert.InRange(fit.Holdout.MeanAbsoluteRelativeError, 0, 0.05);

            var error = await Assert.ThrowsAsync<ArgumentException>(() => CommandCatalog.InvokeAsync($"#!scaling-fit chinchilla --data \"{csv}\" --x N,D", host));
            Assert.Contains("Unknown column 'N'", error.Message);
            var missing = await Assert.ThrowsAsync<CommandException>(() => CommandCatalog.InvokeAsync("#!scaling-fit chinchilla --data nothing", host));
            Assert.Contains("--data 'nothing' is neither a C# variable (none has that name) nor an existing file or folder", missing.Message);
            Assert.Contains("@csharp:myVariable", missing.Message);
            var badLaw = await Assert.ThrowsAsync<CommandException>(() => CommandCatalog.InvokeAsync("#!scaling-fit --law chinchila --data nothing", host));
            Assert.Contains("chinchilla", badLaw.Message);
        }
        finally
        {
            File.Delete(csv);
        }
    }

    [Fact]
    public async Task Command_honours_cancellation()
    {
        var host = new TestHost { CancellationToken = new CancellationToken(canceled: true) };
        host.Variables["d"] = LawTests.Law1Data(0.01, 4);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => CommandCatalog.InvokeAsync("#!scaling-fit chinchilla --data d", host));
    }
}
