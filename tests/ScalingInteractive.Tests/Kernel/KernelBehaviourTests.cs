using ScalingInteractive.Runner;

namespace ScalingInteractive.Tests.Kernel;

/// <summary>
/// Behaviours of the package inside the real .NET Interactive kernel that broke there while every in-process test was
/// green: wrong-typed values, variables after <c>--name</c>, C# variables passed to commands, TorchSharp touched by user
/// code first, two kernels at once.
/// </summary>
public class KernelBehaviourTests
{
    private const string Points = "var points = ScalingInteractive.Fitting.FitData.FromArrays([1e6, 1e7, 1e8, 1e9, 1e10], [3.0, 2.5, 2.2, 2.0, 1.9], \"N\", \"L\");";

    [Fact]
    public async Task A_wrong_typed_value_gets_a_message_naming_the_parameter_the_value_and_what_is_accepted()
    {
        var run = await RealKernel.RunCellsAsync(RealKernel.LoadPackages, Points, "#!scaling-fit --law power --data points --bootstrap abc");
        var failed = Assert.Single(run.Cells, c => c.Status == CellStatus.Failed);
        string message = string.Join("\n", failed.Errors);
        Assert.Contains("--bootstrap", message);
        Assert.Contains("'abc'", message);
        Assert.Contains("integer", message);
        Assert.DoesNotContain("DNI106", message);
        Assert.DoesNotContain("Nullable", message);
    }

    [Fact]
    public async Task Whos_lists_every_variable_after_a_command_with_name()
    {
        var run = await RealKernel.RunCellsAsync(RealKernel.LoadPackages, "var before = 1;", Points,
            "#!scaling-fit --law power --data points --name fit", "var after = 2;", "#!whos");
        Assert.True(run.Succeeded, RealKernel.Describe(run));
        string whos = string.Join("\n", run.Cells.Last().Outputs.Select(o => o.Html ?? o.PlainText));
        foreach (string name in new[] { "before", "points", "fit", "after" })
            Assert.Contains($"<td>{name}</td>", whos);
        Assert.Contains("ScalingInteractive.Fitting.ScalingLawFit", whos);
    }

    [Fact]
    public async Task Two_bare_variable_names_on_one_line_bind_without_asking_for_input()
    {
        var run = await RealKernel.RunCellsAsync(RealKernel.LoadPackages,
            """
            TorchSharp.torch.manual_seed(1);
            var w0 = new Dictionary<string, TorchSharp.torch.Tensor> { ["layer.weight"] = TorchSharp.torch.randn(32, 32) };
            var w1 = new Dictionary<string, TorchSharp.torch.Tensor> { ["layer.weight"] = w0["layer.weight"] + 0.01 * TorchSharp.torch.randn(32, 32) };
            """,
            "#!lora-spectrum --base w0 --tuned w1 --name spectrum",
            "spectrum.Layers.Count");
        Assert.True(run.Succeeded, RealKernel.Describe(run));
        var returned = run.Cells.Last().Outputs.Single(o => o.Kind == "return");
        Assert.Contains("1", returned.PlainText ?? returned.Html);
    }

    [Fact]
    public async Task Two_csharp_values_on_one_line_fail_the_cell_at_once_instead_of_waiting_for_a_click()
    {
        // The kernel answers such a line with an empty input form and waits for the user (a kernel bug): the runner
        // must not hang on it, and must say what to write instead.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var run = await RealKernel.RunCellsAsync(RealKernel.LoadPackages, Points + "\nvar n = 20;", "#!scaling-fit --law power --data @csharp:points --bootstrap @csharp:n");
        var failed = Assert.Single(run.Cells, c => c.Status == CellStatus.Failed);
        Assert.Contains("bare C# variable names", string.Join("\n", failed.Errors));
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task User_code_can_touch_TorchSharp_first_after_the_package_is_loaded()
    {
        // Notebooks 03 and 04 call torch.set_num_threads before any ScalingInteractive API: TorchSharp then initialised
        // unpatched on Debian 12 and no TorchSharp cell worked until a kernel restart.
        var run = await RealKernel.RunCellsAsync(RealKernel.LoadPackages,
            "TorchSharp.torch.set_num_threads(1);\nTorchSharp.torch.ones(3).sum().item<float>()");
        Assert.True(run.Succeeded, RealKernel.Describe(run));
        Assert.Contains("3", run.Cells.Last().Outputs.Single(o => o.Kind == "return").PlainText ?? run.Cells.Last().Outputs.Single(o => o.Kind == "return").Html);
    }

    [Fact]
    public async Task Two_kernels_use_TorchSharp_at_once_and_neither_dies()
    {
        // Each kernel starts from the same EMPTY private cache, so both prepare the patched native copy; the first one
        // keeps computing while the second starts (a library rewritten in place killed it with SIGBUS before).
        string cache = Directory.CreateTempSubdirectory("si-cache-").FullName;
        try
        {
            var environment = new Dictionary<string, string> { ["XDG_CACHE_HOME"] = cache };
            var settings = RealKernel.Settings(environment: environment);
            await using var first = await StartAsync(settings);
            await using var second = await StartAsync(settings);
            var load = await first.SubmitCodeAsync(RealKernel.LoadPackages, "csharp", settings.CellTimeout);
            Assert.True(load.Succeeded, string.Join("\n", load.Errors));
            const string work = "TorchSharp.torch.set_num_threads(1); var a = TorchSharp.torch.randn(256, 256); var s = 0.0; " +
                                "for (int i = 0; i < 300; i++) { s += (a.matmul(a) / 256).sum().item<float>(); } s.ToString(\"F0\")";
            var running = first.SubmitCodeAsync(work, "csharp", settings.CellTimeout);
            var secondLoad = await second.SubmitCodeAsync(RealKernel.LoadPackages, "csharp", settings.CellTimeout);
            var secondWork = await second.SubmitCodeAsync("TorchSharp.torch.ones(4).sum().item<float>()", "csharp", settings.CellTimeout);
            var firstWork = await running;
            Assert.True(secondLoad.Succeeded && secondWork.Succeeded, string.Join("\n", secondLoad.Errors.Concat(secondWork.Errors)));
            Assert.True(firstWork.Succeeded, "the first kernel failed while the second started: " + string.Join("\n", firstWork.Errors) + first.StandardError);
            var after = await first.SubmitCodeAsync("TorchSharp.torch.ones(2).sum().item<float>()", "csharp", settings.CellTimeout);
            Assert.True(after.Succeeded && first.IsRunning, string.Join("\n", after.Errors));
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    private static Task<KernelClient> StartAsync(RunnerSettings settings) =>
        KernelClient.StartAsync(new KernelStartOptions
        {
            WorkingDirectory = Path.GetTempPath(),
            ToolManifestDirectory = settings.ToolManifestDirectory,
            Environment = settings.Environment.Append(new("SCALING_INTERACTIVE_QUICK", "1")).ToDictionary(),
        }, TimeSpan.FromMinutes(2), CancellationToken.None)
        .ContinueWith(async t =>
        {
            var client = await t;
            var feed = await client.SubmitCodeAsync($"#i \"nuget: {RealKernel.Feed}\"", "csharp", settings.CellTimeout);
            Assert.True(feed.Succeeded, string.Join("\n", feed.Errors));
            return client;
        }).Unwrap();
}
