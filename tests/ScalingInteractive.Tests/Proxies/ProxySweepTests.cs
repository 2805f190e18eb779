using System.Text.Json.Nodes;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using Xunit;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.Proxies;

public class ProxySweepTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-proxy-").FullName;
    private string StorePath => Path.Combine(_dir, "sweep.jsonl");
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly TextCorpus Corpus = TextCorpus.Synthetic(60_000, seed: 3);

    private static ProxySweepSpec SmallSweep => new()
    {
        Widths = [16, 32], HeadDim = 8, LearningRates = [3e-3, 60.0],
        Training = new ProxyTrainingOptions { Steps = 12, BatchSize = 4, SequenceLength = 16, LogEvery = 4, ValidationBatches = 1 },
    };

    private sealed class CountingProgress : ScalingInteractive.Core.IProgressSink
    {
        public int Reports;
        public string? Final;
        public void Report(int done, string? status = null, string? best = null) => Reports++;
        public void Complete(string? status = null) => Final = status;
    }

    [Fact]
    public void LrSensitivityMatchesHandComputedNumbers()
    {
        // L0 = 5; losses 3, 2, 4, NaN (diverged -> 5), 6 (above L0 -> 5): min(L, L0) = 3, 2, 4, 5, 5; L* = 2; mean = 19/5 = 3.8.
        Assert.Equal(1.8, LrSensitivity.Compute([3, 2, 4, double.NaN, 6], 5), 12);
        Assert.Equal(0.0, LrSensitivity.Compute([2.5, 2.5], 5), 12);
        Assert.Throws<ArgumentException>(() => LrSensitivity.Compute([], 5));
    }

    [Fact]
    public void SweepAppendsEachRunAndRestartSkipsFinishedOnes()
    {
        var runs = SmallSweep.Runs();
        Assert.Equal(4, runs.Count);
        Assert.Equal(runs.Count, runs.Select(r => r.Key).Distinct().Count());
        var store = ProxySweep.OpenStore(StorePath, Corpus);
        ProxySweep.Run(runs.Take(2).ToList(), Corpus, CPU, store);
        Assert.Equal(3, File.ReadAllLines(StorePath).Length); // header + 2 runs
        var progress = new CountingProgress();
        var reopened = ProxySweep.OpenStore(StorePath, Corpus);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var records = ProxySweep.Run(runs, Corpus, CPU, reopened, progress);
        Assert.Equal(4, records.Count);
        Assert.Equal(5, File.ReadAllLines(StorePath).Length); // only the two missing runs were added
        var result = ProxySweepResult.FromStore(reopened);
        Assert.Equal(4, result.Rows.Count);
        // lr 60 diverges at both widths; recorded as diverged with NaN final loss, and counted as L0 in sensitivity.
        Assert.Equal(2, result.DivergedRuns.Count);
        Assert.All(result.DivergedRuns, r => Assert.Equal(60.0, r.LearningRate));
        var s = result.SensitivityOf("baseline", 16)!;
        var good = result.Rows.Single(r => r.Width == 16 && r.LearningRate == 3e-3);
        Assert.Equal((Math.Min(good.FinalLoss, s.InitialLoss) + s.InitialLoss) / 2 - Math.Min(good.FinalLoss, s.InitialLoss), s.Sensitivity, 9);
        // Fields the fitting API reads by name.
        var record = reopened.Records[0];
        foreach (string field in new[] { "parameters", "tokens", "finalLoss", "learningRate", "batchSize" }) Assert.NotNull(record[field]);
        Assert.Equal(((JsonArray)record["curve"]!["step"]!).Count, ((JsonArray)record["curve"]!["loss"]!).Count);
        Assert.Contains("<table", result.ToHtml());
        Assert.Contains("diverged", result.ToText());
    }

    [Fact]
    public void CorruptLastLineIsReportedAndRerun()
    {
        var runs = SmallSweep.Runs().Take(2).ToList();
        var store = ProxySweep.OpenStore(StorePath, Corpus);
        ProxySweep.Run(runs, Corpus, CPU, store);
        File.WriteAllText(StorePath, File.ReadAllText(StorePath)[..^40]); // killed while writing the second run
        var reopened = ProxySweep.OpenStore(StorePath, Corpus);
        Assert.Single(reopened.BadLines);
        Assert.Equal(1, reopened.Count);
        ProxySweep.Run(runs, Corpus, CPU, reopened);
        Assert.Equal(2, reopened.Count);
        var again = ProxySweep.OpenStore(StorePath, Corpus);
        Assert.Equal(2, again.Count);
        Assert.Single(again.BadLines); // the broken line stays reported, the good lines are used
        Assert.Contains("Unreadable store lines", ProxySweepResult.FromStore(again).ToHtml());
    }

    [Fact]
    public void StoreOfAnotherCorpusIsRefused()
    {
        ProxySweep.OpenStore(StorePath, Corpus);
        var e = Assert.Throws<InvalidDataException>(() => ProxySweep.OpenStore(StorePath, TextCorpus.Synthetic(50_000, seed: 3)));
        Assert.Contains("another configuration", e.Message);
    }

    [Fact]
    public void BadSweepInputsAreRejected()
    {
        Assert.Contains("not a multiple of the head size", Assert.Throws<ArgumentException>(() => (SmallSweep with { Widths = [20] }).Runs()).Message);
        Assert.Contains("positive", Assert.Throws<ArgumentException>(() => (SmallSweep with { LearningRates = [-1] }).Runs()).Message);
        Assert.Contains("positive", Assert.Throws<ArgumentException>(() => (SmallSweep with { Widths = [0] }).Runs()).Message);
        Assert.Throws<ArgumentException>(() => ProxySweepSpec.LogSpaced(1e-3, 1e-4, 3));
        var lrs = ProxySweepSpec.LogSpaced(1e-4, 1e-2, 3);
        Assert.Equal(1e-3, lrs[1], 12);
    }

    [Fact]
    public void FittingDataExperimentsHaveTheRightShape()
    {
        var training = new ProxyTrainingOptions { BatchSize = 4, SequenceLength = 16, LearningRate = 3e-3 };
        var nd = ProxyExperiments.NdGrid([16, 32], [10, 20, 40], training, headDim: 8);
        Assert.Equal(6, nd.Count);
        Assert.All(nd, r => Assert.Equal("nd-grid", r.Experiment));
        var schedules = ProxyExperiments.ScheduleCurves(16, training with { Steps = 30 }, headDim: 8);
        Assert.Equal(["constant", "cosine", "wsd"], schedules.Select(s => s.Setting));
        Assert.Equal(ScheduleShape.WarmupStableDecay, schedules[2].Training.Schedule);
        var grid = ProxyExperiments.LrBatchGrid(16, [1e-3, 3e-3], [4, 8], tokenBudget: 16 * 8 * 10, training, headDim: 8);
        Assert.Equal(4, grid.Count);
        Assert.Equal([20, 20, 10, 10], grid.Select(g => g.Training.Steps));
    }
}
