using ScalingInteractive.IntrinsicDimension;
using ScalingInteractive.LoraSpectra;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Tests.Runs;

/// <summary>
/// Keys are now hashed through source-generated metadata (issue 16: file-based apps turn reflection off). A key that
/// changed would orphan every stored run, so each one is compared with the key of the anonymous type the library used
/// before, serialised here by reflection: an independent computation of the same JSON.
/// </summary>
public class RunKeyCompatibilityTests
{
    private static readonly ProxyRunSpec[] ProxyRuns =
    [
        new("lr-sweep", "baseline", new ProxyModelConfig(), new ProxyTrainingOptions()),
        new("nd-grid", "qk-layernorm", new ProxyModelConfig { Width = 96, HeadDim = 16, QkLayerNorm = true, MupBaseWidth = 32 },
            new ProxyTrainingOptions { LearningRate = 0.178, Seed = 2, ZLoss = true, ZLossCoefficient = 0.0333, WeightDecay = 1e-3,
                WeightDecayMode = WeightDecayMode.Independent, Schedule = ScheduleShape.WarmupStableDecay, ValidationSteps = [10, 20] }),
    ];

    [Fact]
    public void Proxy_run_and_ensemble_shape_keys_equal_the_earlier_reflection_keys()
    {
        foreach (var r in ProxyRuns)
        {
            Assert.Equal(RunKeys.Of(new { r.Experiment, r.Setting, r.Model, r.Training }), r.Key);
            var shared = r.Training with
            {
                LearningRate = 1, MinLearningRate = 0, Schedule = ScheduleShape.Cosine, WarmupSteps = 0, DecayFraction = 0.2,
                WeightDecay = 0, WeightDecayMode = WeightDecayMode.Coupled, ZLoss = false, ZLossCoefficient = 1e-4, Seed = 0,
            };
            Assert.Equal(RunKeys.Of(new { model = r.Model, shared }), ProxyTrainer.ShapeKey(r.Model, r.Training));
        }
    }

    [Theory]
    [InlineData("mnist-mlp", "fastfood", 670L, false, false, 0)]
    [InlineData("shakespeare-lm", "dense", 1877L, true, true, 2)]
    [InlineData("mnist-cnn", "full", 0L, false, false, 1)]
    public void Subspace_run_keys_equal_the_earlier_reflection_keys(string task, string projection, long d, bool said, bool perTensor, int seed) =>
        Assert.Equal(RunKeys.Of(new { task, projection, d, said, perTensor, seed }), SubspaceTraining.Key(task, projection, d, said, perTensor, seed));

    [Fact]
    public void Lora_keys_and_store_identity_equal_the_earlier_reflection_json()
    {
        int rank = 8;
        bool rs = true;
        double lr = 3e-3;
        double[] levels = [2.748, 2.9];
        int evaluateEvery = 5;
        Assert.Equal(RunKeys.Of(new { kind = "target", rank, rs, lr }), RunKeys.Of(new LoraTargetKey("target", rank, rs, lr), LoraJson.Default.LoraTargetKey));
        Assert.Equal(RunKeys.Of(new { kind = "sequence", rank, lr }), RunKeys.Of(new LoraSequenceKey("sequence", rank, lr), LoraJson.Default.LoraSequenceKey));
        Assert.Equal(RunKeys.Of(new { kind = "trajectory", rank, rs, lr, levels, evaluateEvery }),
            RunKeys.Of(new LoraTrajectoryKey("trajectory", rank, rs, lr, levels, evaluateEvery), LoraJson.Default.LoraTrajectoryKey));
        Assert.Equal(RunKeys.Of(new { kind = "sequence-to-losses", rank, lr, levels, evaluateEvery }),
            RunKeys.Of(new LoraSequenceToLossesKey("sequence-to-losses", rank, lr, levels, evaluateEvery), LoraJson.Default.LoraSequenceToLossesKey));

        var o = new LoraExperimentOptions();
        string[] corpora = ["A", "B", "C"];
        var before = new
        {
            o.Model, o.PretrainSteps, o.PretrainLearningRate, o.FineTuneSteps, o.SequentialSteps, o.BatchSize,
            o.SequenceLength, o.Alpha, o.TargetPatterns, o.MitigationLambda, o.EvaluationBatches, o.Seed,
            intruders = new { o.Intruders.TopK, o.Intruders.Epsilon, o.Intruders.EpsilonSweep, o.Intruders.Side },
            corpora,
        };
        var now = new LoraStoreIdentity(o.Model, o.PretrainSteps, o.PretrainLearningRate, o.FineTuneSteps, o.SequentialSteps, o.BatchSize, o.SequenceLength,
            o.Alpha, o.TargetPatterns, o.MitigationLambda, o.EvaluationBatches, o.Seed,
            new LoraIntruderIdentity(o.Intruders.TopK, o.Intruders.Epsilon, o.Intruders.EpsilonSweep, o.Intruders.Side), corpora);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(before, RunStore.JsonOptions),
            System.Text.Json.JsonSerializer.Serialize(now, LoraJson.Default.LoraStoreIdentity));
    }
}
