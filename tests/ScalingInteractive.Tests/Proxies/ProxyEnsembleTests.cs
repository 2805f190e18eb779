using ScalingInteractive.Proxies;
using Xunit;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.Proxies;

public class ProxyEnsembleTests
{
    private static readonly Lazy<TextCorpus> Shakespeare = new(() => TextCorpus.FromFile(Path.Combine(RepoPaths.SharedData, "tinyshakespeare.txt")));
    private static readonly ProxyModelConfig Width32 = new() { Width = 32, Depth = 2, Heads = 2, ContextLength = 32 };
    private static readonly ProxyTrainingOptions Base = new() { Steps = 30, BatchSize = 8, SequenceLength = 32, LogEvery = 5, ValidationBatches = 2, ValidationSteps = [15] };

    // Every logged metric, validation point and outcome of a member equals the separate run's within float tolerance.
    private static void AssertSameRun(ProxyRunResult separate, ProxyRunResult member, double tolerance)
    {
        string label = $"lr {separate.Training.LearningRate}, z-loss {separate.Training.ZLoss}, wd {separate.Training.WeightDecay}";
        Assert.Equal(separate.Diverged, member.Diverged);
        Assert.Equal(separate.StepsCompleted, member.StepsCompleted);
        Assert.Equal(separate.Parameters, member.Parameters);
        Assert.True(Math.Abs(separate.InitialLoss - member.InitialLoss) <= tolerance * separate.InitialLoss, $"{label}: initial loss {separate.InitialLoss} vs {member.InitialLoss}");
        Assert.Equal(separate.Metrics.Select(x => x.Step), member.Metrics.Select(x => x.Step));
        for (int i = 0; i < separate.Metrics.Count; i++)
        {
            var (a, b) = (separate.Metrics[i], member.Metrics[i]);
            if (separate.Diverged && i == separate.Metrics.Count - 1) continue; // the blown-up step itself: both huge or NaN
            Assert.True(Math.Abs(a.Loss - b.Loss) <= tolerance * Math.Max(1, Math.Abs(a.Loss)), $"{label}: step {a.Step} loss {a.Loss} vs {b.Loss}");
            Assert.Equal(a.LearningRate, b.LearningRate, 9);
            Assert.True(Math.Abs(a.GradNorm - b.GradNorm) <= 20 * tolerance * Math.Max(1, a.GradNorm), $"{label}: step {a.Step} grad norm {a.GradNorm} vs {b.GradNorm}");
            Assert.True(Math.Abs(a.MeanLogZ - b.MeanLogZ) <= 20 * tolerance * Math.Max(1, Math.Abs(a.MeanLogZ)), $"{label}: step {a.Step} log Z {a.MeanLogZ} vs {b.MeanLogZ}");
            Assert.True(Math.Abs(a.ZLoss - b.ZLoss) <= 20 * tolerance * Math.Max(1e-6, Math.Abs(a.ZLoss)), $"{label}: step {a.Step} z-loss {a.ZLoss} vs {b.ZLoss}");
            for (int l = 0; l < a.MaxAttentionLogit.Length; l++)
                Assert.True(Math.Abs(a.MaxAttentionLogit[l] - b.MaxAttentionLogit[l]) <= 20 * tolerance * Math.Max(1, Math.Abs(a.MaxAttentionLogit[l])), $"{label}: attention logit");
            Assert.True(Math.Abs(a.ParameterRms - b.ParameterRms) <= 20 * tolerance * a.ParameterRms, $"{label}: parameter RMS");
            Assert.True(Math.Abs(a.UpdateRms - b.UpdateRms) <= 0.05 * a.UpdateRms + 1e-9, $"{label}: step {a.Step} update RMS {a.UpdateRms} vs {b.UpdateRms}");
        }
        Assert.Equal(separate.Validation.Select(x => x.Step), member.Validation.Select(x => x.Step));
        for (int i = 0; i < separate.Validation.Count; i++)
            Assert.True(Math.Abs(separate.Validation[i].Loss - member.Validation[i].Loss) <= tolerance * separate.Validation[i].Loss, $"{label}: validation at {separate.Validation[i].Step}");
        if (!separate.Diverged) Assert.Equal(separate.FinalLoss, member.FinalLoss, 3);
        else Assert.True(double.IsNaN(member.FinalLoss));
    }

    [Fact]
    public void EachMemberEqualsItsSeparateRunAndADivergedMemberIsFrozen()
    {
        // K = 5 at width 32, 30 steps: two learning rates x z-loss on/off (with coupled and independent weight decay and
        // a warm-up mixed in), and one member at a learning rate that diverges within the first logged steps.
        ProxyTrainingOptions[] members =
        [
            Base with { LearningRate = 3e-3 },
            Base with { LearningRate = 3e-3, ZLoss = true, ZLossCoefficient = 1e-2 },
            Base with { LearningRate = 1e-2, WeightDecay = 0.1 },
            Base with { LearningRate = 1e-2, ZLoss = true, ZLossCoefficient = 1e-2, WeightDecay = 1e-3, WeightDecayMode = WeightDecayMode.Independent, WarmupSteps = 5 },
            Base with { LearningRate = 50, Schedule = ScheduleShape.Constant, MinLearningRate = 0 },
        ];
        var ensemble = ProxyTrainer.Train(members.Select(t => (Width32, t)).ToList(), Shakespeare.Value, CPU);
        Assert.Equal(members.Length, ensemble.Count);
        for (int i = 0; i < members.Length; i++)
            AssertSameRun(ProxyTrainer.Train(Width32, members[i], Shakespeare.Value, CPU), ensemble[i], 0);
        Assert.True(ensemble[4].Diverged, "lr 50 must diverge");
        Assert.True(ensemble[4].StepsCompleted < 30);
        Assert.All(ensemble.Take(4), r => Assert.False(r.Diverged));
        Assert.All(ensemble.Take(4), r => Assert.Equal(30, r.StepsCompleted));
    }

    [Fact]
    public void MembersWithTheirOwnSeedsReadTheirOwnBatchesAndMupQkLayerNormMatch()
    {
        // Different seeds: different initialisations and batch streams, one per member; muP (whose 1/m learning-rate
        // multiplier also scales coupled weight decay) and qk-layernorm on.
        var config = Width32 with { QkLayerNorm = true, MupBaseWidth = 16 };
        ProxyTrainingOptions[] members = [Base with { LearningRate = 1e-2, Seed = 0, WeightDecay = 0.1 }, Base with { LearningRate = 1e-2, Seed = 7 }];
        var ensemble = ProxyTrainer.Train(members.Select(t => (config, t)).ToList(), Shakespeare.Value, CPU);
        for (int i = 0; i < members.Length; i++)
            AssertSameRun(ProxyTrainer.Train(config, members[i], Shakespeare.Value, CPU), ensemble[i], 0);
        Assert.NotEqual(ensemble[0].Metrics[0].Loss, ensemble[1].Metrics[0].Loss);
    }

    [Fact]
    public void WorkersStopOnCancellationAndRejectABadCount()
    {
        var runs = new[] { 1e-3, 3e-3, 1e-2 }.Select(lr => (Width32, Base with { LearningRate = lr })).ToList();
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => ProxyTrainer.Train(runs, Shakespeare.Value, CPU, workers: 2, cancellationToken: cancelled.Token));
        var error = Assert.Throws<ArgumentException>(() => ProxyTrainer.Train(runs, Shakespeare.Value, CPU, workers: 0));
        Assert.Contains("workers", error.Message);
    }

    [Fact]
    public void MemberInitialisationEqualsTheSeparateModel()
    {
        using var ensemble = new ProxyTransformer(Width32, [3, 11], CPU);
        foreach (var (seed, member) in new[] { (3L, 0), (11L, 1) })
        {
            using var separate = new ProxyTransformer(Width32, CPU, seed);
            var weights = ensemble.MemberWeights(member);
            foreach (var (name, p) in separate.named_parameters())
                Assert.True(p.detach().allclose(weights[name], 0, 0), $"{name} of seed {seed}");
        }
    }

    [Fact]
    public void ShapeKeyGroupsOnlyRunsThatCanShareAModel()
    {
        var a = ProxyTrainer.ShapeKey(Width32, Base with { LearningRate = 1e-3, ZLoss = true, Seed = 4, WeightDecay = 0.1 });
        Assert.Equal(a, ProxyTrainer.ShapeKey(Width32, Base with { LearningRate = 1e-1 }));
        Assert.NotEqual(a, ProxyTrainer.ShapeKey(Width32 with { Width = 64, Heads = 4 }, Base));
        Assert.NotEqual(a, ProxyTrainer.ShapeKey(Width32, Base with { Steps = 31 }));
        Assert.NotEqual(a, ProxyTrainer.ShapeKey(Width32 with { QkLayerNorm = true }, Base));
    }
}

public class ProxyEnsembleSweepTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-ens-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void SweepRecordsDoNotDependOnTheGroupingAndMatchSeparateRuns()
    {
        var corpus = TextCorpus.Synthetic(60_000, seed: 3);
        var specs = new ProxySweepSpec
        {
            Widths = [16, 32], HeadDim = 8, LearningRates = [3e-3, 3e-2, 60.0],
            Settings = [new ProxySetting(), new ProxySetting { Name = "z-loss", ZLoss = true }],
            Training = new ProxyTrainingOptions { Steps = 12, BatchSize = 4, SequenceLength = 16, LogEvery = 4, ValidationBatches = 1 },
        }.Runs();
        var sequential = ProxySweep.Run(specs, corpus, CPU, ProxySweep.OpenStore(Path.Combine(_dir, "seq.jsonl"), corpus), maxEnsembleSize: 1);
        var ensembles = ProxySweep.Run(specs, corpus, CPU, ProxySweep.OpenStore(Path.Combine(_dir, "ens.jsonl"), corpus), workers: 1);
        // The same ensembles dealt to two sub-ensembles trained at once on two threads.
        var parallel = ProxySweep.Run(specs, corpus, CPU, ProxySweep.OpenStore(Path.Combine(_dir, "par.jsonl"), corpus), workers: 2);
        Assert.Equal(specs.Count, ensembles.Count);
        // Bit-identical whatever the grouping (one at a time vs ensembles of 6 vs two sub-ensembles of 3 on two threads):
        // only the timings differ.
        string[] timings = ["seconds", "tokensPerSecond"];
        foreach (var other in new[] { ensembles, parallel })
            for (int i = 0; i < specs.Count; i++)
            {
                var (a, b) = (sequential[i].DeepClone().AsObject(), other[i].DeepClone().AsObject());
                foreach (string field in timings) { a.Remove(field); b.Remove(field); }
                Assert.Equal(a.ToJsonString(ScalingInteractive.Runs.RunStore.JsonOptions), b.ToJsonString(ScalingInteractive.Runs.RunStore.JsonOptions));
            }
        // And within float rounding of ProxyTrainer's separate runs.
        foreach (int i in new[] { 0, 4, 7 })
        {
            var separate = ProxyTrainer.Train(specs[i].Model, specs[i].Training, corpus, CPU);
            double final = ensembles[i]["finalLoss"]!.GetValue<double>();
            Assert.Equal(separate.Diverged, ensembles[i]["diverged"]!.GetValue<bool>());
            Assert.True(double.IsNaN(separate.FinalLoss) ? double.IsNaN(final) : Math.Abs(separate.FinalLoss - final) < 1e-4 * final, $"run {i}: {separate.FinalLoss} vs {final}");
        }
        var store = ProxySweep.OpenStore(Path.Combine(_dir, "ens.jsonl"), corpus);
        var result = ProxySweepResult.FromStore(store);
        Assert.Equal(4, result.DivergedRuns.Count); // lr 60 at both widths and both settings
        // Typed records: a diverged member's record says where it stopped.
        var typed = store.Read<ProxyRunRecord>();
        Assert.All(typed.Where(r => r.Diverged), r => Assert.Equal(r.StepsCompleted, r.DivergedAtStep));
        Assert.All(typed.Where(r => !r.Diverged), r => Assert.Null(r.DivergedAtStep));
        Assert.All(typed, r => Assert.Equal(r.Curve.Step.Length, r.Curve.Loss.Length));
        Assert.Equal(specs.Select(s => s.Key).Order(), typed.Select(r => r.Key).Order());
    }
}
