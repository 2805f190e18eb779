using ScalingInteractive.Commands;
using ScalingInteractive.Proxies;
using ScalingInteractive.Tests.Commands;
using Xunit;

namespace ScalingInteractive.Tests.Proxies;

public class ProxyCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-proxy-cmd-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Shakespeare => Path.Combine(RepoPaths.SharedData, "tinyshakespeare.txt");

    [SharedDataFact]
    public async Task SweepCommandRunsResumesAndSetsTheVariable()
    {
        string store = Path.Combine(_dir, "s.jsonl");
        string line = $"#!proxy-sweep --widths [16] --head-dim 8 --lr-min 1e-3 --lr-max 1e-2 --lr-count 2 --compare [\"baseline\",\"qk-layernorm+z-loss\"] " +
                      $"--steps 6 --batch-size 4 --seq-len 16 --log-every 3 --device cpu --corpus \"{Shakespeare}\" --store \"{store}\" --name sw";
        var host = new TestHost();
        await CommandCatalog.InvokeAsync(line, host);
        var result = Assert.IsType<ProxySweepResult>(host.Variables["sw"]);
        Assert.Equal(4, result.Rows.Count);
        Assert.Equal(["baseline", "qk-layernorm+z-loss"], result.Sensitivities.Select(s => s.Setting).Distinct().Order(StringComparer.Ordinal));
        Assert.Equal([1e-3, 1e-2], result.Rows.Select(r => r.LearningRate).Distinct().Order().Select(x => Math.Round(x, 12)));
        int lines = File.ReadAllLines(store).Length;
        await CommandCatalog.InvokeAsync(line, new TestHost());
        Assert.Equal(lines, File.ReadAllLines(store).Length); // nothing re-run
    }

    [Fact]
    public async Task TrainCommandSetsARunResult()
    {
        var host = new TestHost();
        await CommandCatalog.InvokeAsync($"#!proxy-train --width 16 --head-dim 8 --lr 3e-3 --steps 5 --batch-size 2 --seq-len 16 --schedule wsd --device cpu --corpus synthetic --name r", host);
        var run = Assert.IsType<ProxyRunResult>(host.Variables["r"]);
        Assert.Equal(5, run.StepsCompleted);
        Assert.Equal(ScheduleShape.WarmupStableDecay, run.Training.Schedule);
    }

    [Theory]
    [InlineData("#!proxy-sweep --widths [20] --head-dim 16 --learning-rates [1e-3]", "not a multiple of --head-dim")]
    [InlineData("#!proxy-sweep --widths [16] --head-dim 8 --learning-rates [-1e-3]", "positive")]
    [InlineData("#!proxy-sweep --widths [16] --head-dim 8", "Give the learning rates")]
    [InlineData("#!proxy-sweep --widths [16] --head-dim 8 --lr-min 1e-2 --lr-max 1e-3", "at least the smallest")]
    [InlineData("#!proxy-sweep --widths [16] --head-dim 8 --learning-rates [1e-3] --compare [\"magic\"]", "'magic' is not known")]
    [InlineData("#!proxy-train --width 16 --head-dim 8 --corpus /no/such/file.txt", "neither 'synthetic', 'shakespeare' nor an existing file")]
    [InlineData("#!proxy-train --width 16 --head-dim 8 --lr 0", "--lr must be a positive")]
    public async Task BadArgumentsGiveClearMessages(string line, string message)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => CommandCatalog.InvokeAsync(line, new TestHost()));
        Assert.Contains(message, CommandCatalog.UserErrorMessage(error) ?? error.ToString());
    }

    [SkippableFact]
    public async Task CudaWithoutGpuIsAClearMessage()
    {
        Skip.If(TorchSharp.torch.cuda.is_available(), "checks the message on a machine without CUDA; this one has a GPU");
        var error = await Assert.ThrowsAnyAsync<Exception>(() => CommandCatalog.InvokeAsync("#!proxy-train --width 16 --head-dim 8 --steps 2 --device cuda", new TestHost()));
        Assert.Contains("CUDA is not available", CommandCatalog.UserErrorMessage(error));
    }

    [Fact]
    public async Task CancelledSweepWritesNothingHalfDone()
    {
        string store = Path.Combine(_dir, "c.jsonl");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var host = new TestHost { CancellationToken = cts.Token };
        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => CommandCatalog.InvokeAsync(
            $"#!proxy-sweep --widths [16] --head-dim 8 --learning-rates [1e-3] --steps 5 --batch-size 2 --seq-len 16 --device cpu --store \"{store}\"", host));
        Assert.Equal("Cancelled.", CommandCatalog.UserErrorMessage(error));
        Assert.Single(File.ReadAllLines(store)); // header only
    }
}
