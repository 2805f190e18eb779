using ScalingInteractive.LoraSpectra;
using ScalingInteractive.Proxies;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.LoraSpectra;

public sealed class LoraExperimentTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-lora-exp-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static LoraExperimentCorpora TinyCorpora()
    {
        string a = string.Concat(Enumerable.Repeat("the cat sat on the mat. ", 200));
        string b = string.Concat(Enumerable.Repeat("To be, or not to be: that is the question. ", 120));
        return new LoraExperimentCorpora(TextCorpus.FromText("A", a),
            [TextCorpus.FromText("B", b), TextCorpus.FromText("C", new string(b.Reverse().ToArray())), TextCorpus.FromText("D", b.ToUpperInvariant())]);
    }

    private static LoraExperimentOptions Tiny => new()
    {
        Model = new ProxyModelConfig { Width = 32, Depth = 1, Heads = 2, ContextLength = 16 },
        PretrainSteps = 20, FineTuneSteps = 10, SequentialSteps = 5, BatchSize = 4, SequenceLength = 16,
        FullLearningRates = [1e-3], LoraLearningRates = [1e-2, 3e-2], Ranks = [1, 4], SequentialRanks = [2], EvaluationBatches = 2,
        Intruders = new IntruderOptions { TopK = 4 },
    };

    [Fact]
    public void Experiment_runs_every_method_selects_matched_rates_and_resumes_from_its_store()
    {
        string store = Path.Combine(_dir, "lora.jsonl");
        var counter = new CountingSink();
        var result = LoraExperiment.Run(Tiny, TinyCorpora(), CPU, store, counter);
        int reports = counter.Reports;
        // 1 full rate + 2 ranks x (LoRA, rsLoRA) x 2 rates.
        Assert.Equal(9, result.Runs.Count);
        Assert.Equal(5, result.Selected.Count);
        Assert.Equal(["full", "LoRA r=1", "rsLoRA r=1", "LoRA r=4", "rsLoRA r=4"], result.Selected.Select(r => r.Method));
        // LoRA parameters: r (in + out) for qkv 32->96, proj 32->32, fc 32->128, proj 128->32.
        int perRank = (32 + 96) + (32 + 32) + (32 + 128) + (128 + 32);
        Assert.Equal(4 * perRank, result.Selected.Single(r => r.Method == "LoRA r=4").TrainableParameters);
        var full = result.Full!;
        foreach (var lora in result.Selected.Where(r => r.Rank > 0))
        {
            // The selected rate is the one whose target loss is closest to full fine-tuning's.
            var alternatives = result.Runs.Where(r => r.Rank == lora.Rank && r.RsLora == lora.RsLora);
            Assert.Equal(alternatives.Min(r => Math.Abs(r.TargetLoss - full.TargetLoss)), Math.Abs(lora.TargetLoss - full.TargetLoss));
            Assert.Equal(4, lora.Spectrum!.Layers.Count);
            Assert.True(lora.TargetLoss < result.PretrainLoss + 5);
        }
        Assert.Equal(2, result.Sequences.Count);
        Assert.All(result.Sequences, s => Assert.Equal(4, s.Losses.Length));
        Assert.Equal(["A", "B", "C", "D"], result.Sequences[0].Tasks);
        Assert.True(File.Exists(LoraExperiment.PretrainedCheckpointPath(store)));
        Assert.True(reports > 0);
        Assert.Contains("intruders", result.ToText());
        Assert.Contains("si-chart", result.ToHtml());

        // Resume: nothing is retrained, the numbers come back from the store.
        var again = LoraExperiment.Run(Tiny, TinyCorpora(), CPU, store);
        Assert.Equal(result.Selected.Select(r => r.TargetLoss), again.Selected.Select(r => r.TargetLoss));
        Assert.Equal(result.Sequences[1].Losses[3], again.Sequences[1].Losses[3]);
        Assert.Equal(1 + 1 + 9 + 2, File.ReadAllLines(store).Count(l => l.Length > 0)); // header + pre-training + runs, none appended twice
    }

    [Fact]
    public void Target_runs_on_several_workers_give_the_records_of_one_worker_in_the_grids_order()
    {
        var options = Tiny with { SequentialSteps = 0 };
        string Records(int workers)
        {
            var result = LoraExperiment.Run(options with { Workers = workers }, TinyCorpora(), CPU, Path.Combine(_dir, $"w{workers}.jsonl"));
            return string.Join("\n", result.Runs.Select(r => $"{r.Key} {r.TargetLoss:R} {r.PretrainLossAfter:R} {r.Spectrum?.Layers.Sum(l => l.Intruders.Length)} {r.MitigatedTargetLoss:R}"));
        }
        string one = Records(1);
        Assert.Equal(9, one.Split('\n').Length);
        Assert.Equal(one, Records(3));
        var error = Assert.Throws<ArgumentException>(() => LoraExperiment.Run(options with { Workers = 0 }, TinyCorpora(), CPU));
        Assert.Contains("Workers", error.Message);
    }

    [Theory]
    [InlineData(1, false, 3e-2)]
    [InlineData(0, false, 1e-3)]
    public void FineTuneToLosses_without_levels_is_the_experiments_run_and_stops_at_the_first_evaluation_below_each_level(int rank, bool rs, double lr)
    {
        string store = Path.Combine(_dir, "lora.jsonl");
        var result = LoraExperiment.Run(Tiny with { SequentialSteps = 0 }, TinyCorpora(), CPU, store);
        var run = result.Runs.Single(r => r.Rank == rank && r.RsLora == rs && r.LearningRate == lr);

        // No levels: the whole schedule with the target loss evaluated every 2 steps; its last point is the experiment's
        // run of that method (trained separately by Run), to the bit.
        var whole = LoraExperiment.FineTuneToLosses(Tiny with { SequentialSteps = 0 }, TinyCorpora(), CPU, store, rank, rs, lr, [], evaluateEvery: 2);
        Assert.Equal([2, 4, 6, 8, 10], whole.Steps);
        Assert.Equal(10, whole.StepsCompleted);
        Assert.Empty(whole.Snapshots);
        Assert.Equal(run.TargetLoss, whole.TargetLosses[^1]);

        // Two levels: the pre-trained model's loss on B is far above every evaluated loss (reached at the first
        // evaluation), and one taken from the trajectory above is reached at the first evaluated step at or below it.
        double high = 100, mid = whole.TargetLosses[2];
        int expected = whole.Steps[Array.FindIndex(whole.TargetLosses, l => l <= mid)];
        var stopped = LoraExperiment.FineTuneToLosses(Tiny with { SequentialSteps = 0 }, TinyCorpora(), CPU, store, rank, rs, lr, [mid, high], evaluateEvery: 2);
        Assert.Equal(expected, stopped.StepsCompleted); // training stopped once both levels were reached
        Assert.Equal(2, stopped.At(high)!.Step);
        var snap = stopped.At(mid)!;
        Assert.Equal(expected, snap.Step);
        Assert.Equal(whole.TargetLosses[Array.IndexOf(whole.Steps, expected)], snap.TargetLoss); // the same training up to there
        Assert.True(snap.TargetLoss <= mid);
        Assert.Equal(result.PretrainLoss, snap.PretrainLossBefore);
        Assert.Equal(4, snap.Spectrum!.Layers.Count);
        Assert.Null(stopped.At(0.5 * mid));

        // A level never reached has no snapshot, and training then runs the whole schedule.
        var unreached = LoraExperiment.FineTuneToLosses(Tiny with { SequentialSteps = 0 }, TinyCorpora(), CPU, store, rank, rs, lr, [-1], evaluateEvery: 2);
        Assert.Empty(unreached.Snapshots);
        Assert.Equal(10, unreached.StepsCompleted);
        Assert.Equal(whole.TargetLosses, unreached.TargetLosses);

        // The records live in the experiment's store: asked again, nothing is retrained or appended.
        int lines = File.ReadAllLines(store).Count(l => l.Length > 0);
        var again = LoraExperiment.FineTuneToLosses(Tiny with { SequentialSteps = 0 }, TinyCorpora(), CPU, store, rank, rs, lr, [mid, high], evaluateEvery: 2);
        Assert.Equal(stopped.At(mid)!.TargetLoss, again.At(mid)!.TargetLoss);
        Assert.Equal(lines, File.ReadAllLines(store).Count(l => l.Length > 0));
    }

    [Theory]
    [InlineData(0, 1e-3)]
    [InlineData(2, 1e-2)]
    public void SequenceToLosses_with_unreachable_levels_is_the_experiments_sequence_and_stops_each_task_at_its_level(int rank, double lr)
    {
        string store = Path.Combine(_dir, "lora.jsonl");
        var options = Tiny with { SequentialRanks = [2], LoraLearningRates = [1e-2], FullLearningRates = [1e-3] };
        var plain = LoraExperiment.Run(options, TinyCorpora(), CPU, store).Sequences.Single(q => q.Rank == rank);
        Assert.Equal(lr, plain.LearningRate);

        // Levels no loss reaches: every task runs all its steps, and the record is Run's sequence (trained there), to the bit.
        var never = LoraExperiment.SequenceToLosses(options, TinyCorpora(), CPU, store, rank, lr, [-1, -1, -1]);
        Assert.Equal([5, 5, 5], never.StepsPerTask);
        for (int stage = 0; stage < plain.Losses.Length; stage++) Assert.Equal(plain.Losses[stage], never.Losses[stage]);
        Assert.Equal(plain.Intruders, never.Intruders);

        // Levels every loss is below: each task stops after its first step. A level equal to the plain run's final loss
        // on B is reached on B at the latest at its last step, and the loss on B after B is then at most that level.
        var first = LoraExperiment.SequenceToLosses(options, TinyCorpora(), CPU, store, rank, lr, [100, 100, 100]);
        Assert.Equal([1, 1, 1], first.StepsPerTask);
        var atB = LoraExperiment.SequenceToLosses(options, TinyCorpora(), CPU, store, rank, lr, [plain.Losses[1][1], -1, -1]);
        Assert.InRange(atB.StepsPerTask[0], 1, 5);
        Assert.True(atB.Losses[1][1] <= plain.Losses[1][1]);
        Assert.Equal([plain.Losses[1][1], -1, -1], atB.Levels!);
        Assert.Throws<ArgumentException>(() => LoraExperiment.SequenceToLosses(options, TinyCorpora(), CPU, store, rank, lr, [1, 1]));
    }

    private sealed class CountingSink : ScalingInteractive.Core.IProgressSink
    {
        public int Reports;
        public void Report(int done, string? status = null, string? best = null) => Reports++;
        public void Complete(string? status = null) { }
    }
}
