using System.Text.Json;
using Microsoft.Data.Analysis;
using ScalingInteractive.Fitting;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Tests.Fitting;

public class DataAndInputTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "si-fit-" + Guid.NewGuid().ToString("N"));

    public DataAndInputTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private sealed record Run(double Params, double Tokens, double FinalLoss);

    [Fact]
    public void Csv_dataframe_records_and_run_store_give_the_same_points()
    {
        string csv = Path.Combine(_folder, "runs.csv");
        File.WriteAllText(csv, "name,N,D,loss\n\"a, small\",1e8,2e9,3.1\nb,2e8,4e9,2.9\nc,4e8,8e9,2.7\n");
        var fromCsv = FitData.FromCsv(csv, ["N", "D"], "loss");
        Assert.Equal([1e8, 2e8, 4e8], fromCsv.X[0]);
        Assert.Equal([3.1, 2.9, 2.7], fromCsv.Y);

        var frame = new DataFrame(new DoubleDataFrameColumn("N", [1e8, 2e8, 4e8]), new DoubleDataFrameColumn("D", [2e9, 4e9, 8e9]), new DoubleDataFrameColumn("loss", [3.1, 2.9, 2.7]));
        var fromFrame = FitData.FromDataFrame(frame, ["N", "D"], "loss");
        Assert.Equal(fromCsv.X[1], fromFrame.X[1]);

        var records = new[] { new Run(1e8, 2e9, 3.1), new Run(2e8, 4e9, 2.9), new Run(4e8, 8e9, 2.7) };
        var fromRecords = FitData.FromRecords(records, ["Params", "Tokens"], "FinalLoss");
        Assert.Equal(fromCsv.Y, fromRecords.Y);

        var store = RunStore.Open(Path.Combine(_folder, "runs.jsonl"), "proxy-sweep");
        store.Append(JsonSerializer.SerializeToNode(new { key = "a", config = new { parameters = 1e8, tokens = 2e9 }, finalLoss = 3.1 })!.AsObject());
        store.Append(JsonSerializer.SerializeToNode(new { key = "x", config = new { parameters = 3e8, tokens = 2e9 }, finalLoss = 99.0, diverged = true })!.AsObject());
        store.Append(JsonSerializer.SerializeToNode(new { key = "b", config = new { parameters = 2e8, tokens = 4e9 }, finalLoss = 2.9 })!.AsObject());
        var fromStore = FitData.FromRunStore(store, ["config.parameters", "config.tokens"], "finalLoss");
        Assert.Equal([1e8, 2e8], fromStore.X[0]);
        Assert.Equal([3.1, 2.9], fromStore.Y);
        Assert.Single(fromStore.Skipped);
        Assert.Contains("diverged", fromStore.Skipped[0]);
    }

    [Fact]
    public void Filters_split_points()
    {
        var data = FitData.FromArrays([1e8, 1e9, 1e10], [1e9, 1e10, 1e11], [3, 2.5, 2]);
        var (kept, rest) = data.Split("N>1e8 && D<=1e11");
        Assert.Equal([1e9, 1e10], kept.X[0]);
        Assert.Equal([1e8], rest.X[0]);
        Assert.Equal(2, data.Split("n >= 1e9 and loss < 3").Kept.Count);
        Assert.Contains("Unknown column 'P'", Assert.Throws<ArgumentException>(() => data.Split("P>1")).Message);
        Assert.Contains("Cannot read filter term", Assert.Throws<ArgumentException>(() => data.Split("N bigger 1")).Message);
    }

    [Fact]
    public void Bad_input_gets_clear_messages()
    {
        var law = ScalingLaws.SaturatingPower;
        double[] x = [1, 2, 3, 4, 5], y = [3, 2.5, 2.2, 2.1, 2.05];
        // Non-positive values where the law takes logs.
        Assert.Contains("is not positive", Fit(law, FitData.FromArrays([0, 2, 3, 4, 5], y)));
        Assert.Contains("observed values must be > 0", Fit(law, FitData.FromArrays(x, [3, 2.5, -1, 2.1, 2.05])));
        // NaN / Infinity.
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => FitData.FromArrays([1, double.NaN, 3, 4, 5], y)).Message);
        Assert.Contains("Infinity", Assert.Throws<ArgumentException>(() => FitData.FromArrays(x, [3, double.PositiveInfinity, 2, 2, 2])).Message);
        // Too few points.
        Assert.Contains("needs at least 4 points; got 3", Fit(law, FitData.FromArrays([1, 2, 3], [3, 2.5, 2.2])));
        // Mismatched lengths.
        Assert.Contains("Mismatched lengths", Assert.Throws<ArgumentException>(() => FitData.FromArrays([1, 2, 3], [3, 2.5])).Message);
        // Constant column.
        Assert.Contains("is constant", Fit(law, FitData.FromArrays([2, 2, 2, 2, 2], y)));
        Assert.Contains("is constant", Fit(law, FitData.FromArrays(x, [2, 2, 2, 2, 2])));
        // Wrong number of columns for the law.
        Assert.Contains("takes 2 input(s) (N, D)", Fit(ScalingLaws.Chinchilla, FitData.FromArrays(x, y)));
        // Unknown law and column.
        Assert.Contains("Valid laws: chinchilla", Assert.Throws<ArgumentException>(() => ScalingLaws.Get("chinchila")).Message);
        string csv = Path.Combine(_folder, "bad.csv");
        File.WriteAllText(csv, "N,D,loss\n1,2,3\n");
        Assert.Contains("Unknown column 'tokens'", Assert.Throws<ArgumentException>(() => FitData.FromCsv(csv, ["N", "tokens"], "loss")).Message);
        Assert.Contains("Available columns: N, D, loss", Assert.Throws<ArgumentException>(() => FitData.FromCsv(csv, ["N", "tokens"], "loss")).Message);
        File.WriteAllText(csv, "N,loss\n1,abc\n");
        Assert.Contains("'abc' is not a number", Assert.Throws<InvalidDataException>(() => FitData.FromCsv(csv, ["N"], "loss")).Message);
        Assert.Throws<FileNotFoundException>(() => FitData.FromCsv(Path.Combine(_folder, "missing.csv"), ["N"], "loss"));
        // A hostile header (one endless line) is refused without reading it all.
        File.WriteAllText(csv, new string('x', 3 << 20));
        Assert.Contains("longer than", Assert.Throws<InvalidDataException>(() => FitData.FromCsv(csv, ["N"], "loss")).Message);
        // Bounds that exclude the start grid.
        var message = Assert.Throws<ArgumentException>(() => ScalingLaws.Custom("bad", "y = a x", ["x"], [ParameterSpec.Bounded("a", 0, 1, 0.5, 2)], (p, v) => p[0] * v[0])).Message;
        Assert.Contains("exclude start value 2", message);
        Assert.Contains("exclude start value", Fit(law, FitData.FromArrays(x, y), new FitOptions { Starts = [[0, 0, 0], [0, 0, 100]] }, expectBounds: true));
        // No start converging: one iteration allowed.
        var noConvergence = Assert.Throws<InvalidDataException>(() => ScalingFit.Fit(law, FitData.FromArrays(x, y),
            new FitOptions { Starts = [[3, 3, 3]], Settings = new OptimizerSettings(MaxIterations: 1) })).Message;
        Assert.Contains("No start of the 1-point grid converged", noConvergence);
        // Bad loss scale.
        Assert.Contains("positive finite delta", Fit(law, FitData.FromArrays(x, y), new FitOptions { Delta = 0 }));
    }

    private static string Fit(ScalingLaw law, FitData data, FitOptions? options = null, bool expectBounds = false)
    {
        var bounded = expectBounds ? ScalingLaws.Custom("bounded", "y = E + A x^-alpha", ["x"],
            [ParameterSpec.Log("E", 0), ParameterSpec.Log("A", 0), ParameterSpec.Bounded("alpha", 0, 5, 1)], (p, v) => p[0] + p[1] * Math.Pow(v[0], -p[2])) : law;
        return Assert.Throws<ArgumentException>(() => ScalingFit.Fit(bounded, data, options)).Message;
    }

    [Fact]
    public void Results_serialise_parameters_by_name_with_uncertainty()
    {
        var data = LawTests.Law1Data(0.02, 8);
        var starts = ScalingLaws.Chinchilla.StartGrid().Where((_, i) => i % 300 == 0).ToArray();
        var fit = ScalingFit.Bootstrap(ScalingFit.Fit(ScalingLaws.Chinchilla, data, new FitOptions { Starts = starts }), new BootstrapOptions { Resamples = 40, Seed = 1 });
        using var json = JsonDocument.Parse(fit.ToJson());
        var parameters = json.RootElement.GetProperty("parameters");
        foreach (var name in new[] { "E", "A", "B", "alpha", "beta" })
        {
            var p = parameters.GetProperty(name);
            Assert.Equal(fit[name], p.GetProperty("estimate").GetDouble());
            Assert.True(p.GetProperty("standardError").GetDouble() > 0);
            Assert.True(p.GetProperty("ciLower").GetDouble() <= p.GetProperty("ciUpper").GetDouble());
        }
        Assert.StartsWith("parameter,estimate,standard_error,ci_lower,ci_upper\nE,", fit.ToCsv());
        Assert.Equal(41, fit.Bootstrap!.ToCsv().Trim().Split('\n').Length);
        Assert.Equal(data.Count + 1, fit.PointsToCsv().Trim().Split('\n').Length);
        string html = fit.ToHtml();
        Assert.Contains("E + A / N^alpha + B / D^beta", html);
        Assert.Contains("Compute-optimal frontier", html);
        var (prediction, lower, upper) = fit.PredictWithInterval([[1e9, 2e10]]);
        Assert.InRange(prediction[0], lower[0], upper[0]);
    }

    [Fact]
    public void From_reads_any_supported_holder_and_names_the_accepted_ones()
    {
        var columns = new Dictionary<string, double[]> { ["N"] = [1, 2, 3], ["loss"] = [3, 2, 1] };
        var data = FitData.From(columns, ["N"], "loss");
        Assert.Equal(3, data.Count);
        Assert.Same(data, FitData.From(data, ["N"], "loss"));
        Assert.Equal(3, FitData.From(new[] { new { N = 1.0, loss = 2.0 }, new { N = 2.0, loss = 1.0 }, new { N = 3.0, loss = 0.5 } }, ["N"], "loss").Count);
        Assert.Contains("DataFrame", Assert.Throws<ArgumentException>(() => FitData.From(42, ["N"], "loss")).Message);
    }
}
