using ScalingInteractive.Commands;
using ScalingInteractive.IntrinsicDimension;
using ScalingInteractive.Runs;
using ScalingInteractive.Tests.Commands;

namespace ScalingInteractive.Tests.IntrinsicDimension;

public class IntrinsicDimCommandTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "si-intrinsic-" + Guid.NewGuid().ToString("N"));

    public IntrinsicDimCommandTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Line(string rest) =>
        $"#!intrinsic-dim {rest} --data-dir \"{RepoPaths.SharedData}\" --bootstrap 50" + (rest.Contains("--device", StringComparison.Ordinal) ? "" : " --device cpu");

    [SharedDataFact]
    public async Task Runs_a_small_sweep_shows_the_report_and_resumes_from_the_store()
    {
        string store = Path.Combine(_folder, "runs.jsonl");
        var host = new TestHost();
        string line = Line($"mnist-mlp --dims [20,200] --projection dense,fastfood --seeds [3] --steps 40 --batch-size 32 --store \"{store}\" --name report");
        await CommandCatalog.InvokeAsync(line, host);
        var report = Assert.IsType<IntrinsicDimensionReport>(host.Variables["report"]);
        Assert.Equal(199_210, report.ParameterCount);
        Assert.Equal(["dense", "fastfood"], report.Series.Select(s => s.Name));
        Assert.Equal(5, report.Runs.Count); // baseline + 2 projections x 2 dims
        Assert.All(report.Runs, r => Assert.Equal(3, r.Seed)); // --seeds is the list of seeds, not a count
        string html = report.ToHtml();
        Assert.Contains("90% of baseline", html);
        Assert.Contains("d90", html);
        Assert.Contains("199,210", html);
        Assert.Contains(host.Shown, h => h.Value is IntrinsicDimensionReport);
        Assert.Equal(5, RunStore.Open(store, "intrinsic-dimension", ReadIdentity(store)).Count);

        // Second invocation: every run comes from the store (same metrics, no training).
        var again = new TestHost();
        await CommandCatalog.InvokeAsync(line, again);
        var second = Assert.IsType<IntrinsicDimensionReport>(again.Variables["report"]);
        Assert.Equal(report.Runs.Select(r => r.Metric), second.Runs.Select(r => r.Metric));
        Assert.Equal(5, File.ReadAllLines(store).Length - 1);
    }

    private static System.Text.Json.Nodes.JsonObject ReadIdentity(string store) =>
        (System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(File.ReadLines(store).First())!["identity"]!.DeepClone();

    [SharedDataTheory]
    [InlineData("mnist-mlp --projection gaussian", "--projection 'gaussian'")]
    [InlineData("mnist-rnn", "--task 'mnist-rnn'")]
    [InlineData("mnist-mlp --dims [0,10]", "below the minimum")]
    [InlineData("mnist-mlp --dims [300000] --projection dense", "exceeds the 199,210 parameters")]
    [InlineData("mnist-mlp --dims [100000] --projection dense --memory-mib 100", "memory budget")]
    [InlineData("mnist-mlp --device cuda", "CUDA")]
    [InlineData("mnist-mlp --d-min 100 --d-max 10", "--d-max (10) must be at least --d-min (100)")]
    [InlineData("mnist-mlp --dims [3] --said", "must exceed the 6 tensors")]
    public async Task Bad_input_gets_a_message_naming_the_parameter(string arguments, string expected)
    {
        var host = new TestHost();
        var error = await Assert.ThrowsAnyAsync<Exception>(() => CommandCatalog.InvokeAsync(Line(arguments), host));
        string? message = CommandCatalog.UserErrorMessage(error);
        Assert.NotNull(message);
        Assert.Contains(expected, message);
    }

    [SharedDataFact]
    public async Task Said_per_tensor_runs_name_their_series_and_a_log_range_is_used_without_dims()
    {
        var host = new TestHost();
        await CommandCatalog.InvokeAsync(Line("mnist-cnn --d-min 20 --d-max 80 --d-points 2 --said --per-tensor --seeds [0] --steps 5 --batch-size 16 --name r"), host);
        var report = Assert.IsType<IntrinsicDimensionReport>(host.Variables["r"]);
        Assert.Equal("fastfood per-tensor SAID", Assert.Single(report.Series).Name);
        Assert.Equal([20L, 80], report.Series[0].Curve.Select(p => p.Dimension));
        Assert.Equal(44_426, report.ParameterCount);
    }

    [Fact]
    public async Task A_missing_data_folder_names_the_file()
    {
        var host = new TestHost();
        var error = await Assert.ThrowsAsync<FileNotFoundException>(() =>
            CommandCatalog.InvokeAsync($"#!intrinsic-dim mnist-cnn --data-dir \"{_folder}\" --device cpu", host));
        Assert.Contains(MnistData.TestImagesFile, error.Message);
    }

    [SharedDataFact]
    public async Task Cancellation_stops_the_sweep()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var host = new TestHost { CancellationToken = cts.Token };
        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => CommandCatalog.InvokeAsync(Line("mnist-mlp --dims [10] --steps 5"), host));
        Assert.Equal("Cancelled.", CommandCatalog.UserErrorMessage(error));
    }

    [SharedDataFact]
    public async Task ToSweepSpec_gives_the_keys_and_identity_the_command_writes_to_its_store()
    {
        string store = Path.Combine(_folder, "cmd.jsonl");
        string rest = $"mnist-mlp --dims [20,200] --projection dense,fastfood --seeds [3,4] --steps 5 --batch-size 16 --store \"{store}\"";
        await CommandCatalog.InvokeAsync(Line(rest), new TestHost());
        var spec = IntrinsicDimCommand.ToSweepSpec(Line(rest + " --name probe"));
        Assert.Equal("intrinsic-dimension", spec.Kind);
        Assert.Equal("probe", spec.Name);
        var written = File.ReadLines(store).Skip(1).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!["key"]!.GetValue<string>()).ToList();
        Assert.Equal(written.Order(), spec.Keys.Order());
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(ReadIdentity(store), spec.Experiment.StoreIdentity()));
        Assert.Throws<CommandException>(() => IntrinsicDimCommand.ToSweepSpec("#!proxy-sweep --widths [16]"));
    }
}
