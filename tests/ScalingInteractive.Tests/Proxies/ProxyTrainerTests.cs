using ScalingInteractive.Tests.Training;
using ScalingInteractive.Proxies;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.Proxies;

public class ProxyTrainerTests
{
    private static readonly Lazy<TextCorpus> Shakespeare = new(() => TextCorpus.FromFile(Path.Combine(RepoPaths.SharedData, "tinyshakespeare.txt")));
    private static readonly ProxyModelConfig Tiny = new() { Width = 32, Depth = 2, Heads = 4, ContextLength = 32 };
    private static readonly ProxyTrainingOptions Short = new() { Steps = 40, BatchSize = 8, SequenceLength = 32, LearningRate = 3e-3, LogEvery = 10, ValidationBatches = 2 };

    [Fact]
    public void SchedulesMatchHandComputedValues()
    {
        var o = new ProxyTrainingOptions { Steps = 11, LearningRate = 1.0, MinLearningRate = 0.0, WarmupSteps = 1 };
        // Warm-up: step 0 -> 1*(0+1)/1 = 1. Then p = (t-1)/9.
        Assert.Equal(1.0, LearningRateSchedules.At(o, 0), 12);
        Assert.Equal(0.5 * (1 + Math.Cos(Math.PI * 4 / 9.0)), LearningRateSchedules.At(o, 5), 12);
        Assert.Equal(0.0, LearningRateSchedules.At(o, 10), 12);
        var linear = o with { Schedule = ScheduleShape.Linear };
        Assert.Equal(1 - 4 / 9.0, LearningRateSchedules.At(linear, 5), 12);
        var constant = o with { Schedule = ScheduleShape.Constant, WarmupSteps = 4 };
        Assert.Equal(0.25, LearningRateSchedules.At(constant, 0), 12);
        Assert.Equal(0.75, LearningRateSchedules.At(constant, 2), 12);
        Assert.Equal(1.0, LearningRateSchedules.At(constant, 10), 12);
        // WSD, 10 steps, decay fraction 0.3: the last round(3) steps (7, 8, 9) fall linearly to 0.1, ending on it (law 7's schedule).
        var wsd = new ProxyTrainingOptions { Steps = 10, LearningRate = 1.0, MinLearningRate = 0.1, Schedule = ScheduleShape.WarmupStableDecay, DecayFraction = 0.3, WarmupSteps = 2 };
        double[] expected = [0.5, 1, 1, 1, 1, 1, 1, 0.7, 0.4, 0.1];
        for (int t = 0; t < 10; t++) Assert.Equal(expected[t], LearningRateSchedules.At(wsd, t), 12);
    }

    [Theory]
    [InlineData(WeightDecayMode.Coupled)]
    [InlineData(WeightDecayMode.Independent)]
    public void WeightDecayModesMatchClosedForm(WeightDecayMode mode)
    {
        // One Adam step from zero moments: m_hat = g, v_hat = g^2, so u = g/(|g|+eps) = sign(g) (up to eps).
        var options = new ProxyTrainingOptions { WeightDecay = 0.1, WeightDecayMode = mode };
        double eta = 0.01, lr = 0.004; // schedule factor s = 0.4
        using var theta = tensor(new float[] { 2f, -1f, 0.5f, 3f }, [2, 2]).requires_grad_(true);
        using var optimizer = new TensorParametrisation(("w", theta, 0.5)).Optimizer(options.ToAdamWOptions());
        theta.grad = tensor(new float[] { 1f, -2f, 0f, 0.25f }, [2, 2]);
        optimizer.Step([lr], [eta]);
        double c = 0.5; // muP-style multiplier
        double decay = mode == WeightDecayMode.Coupled ? c * lr * 0.1 : (lr / eta) * 0.1;
        double[] theta0 = [2, -1, 0.5, 3], g = [1, -2, 0, 0.25];
        var actual = theta.data<float>().ToArray();
        for (int i = 0; i < 4; i++)
        {
            double u = g[i] / (Math.Abs(g[i]) + 1e-8);
            Assert.Equal(theta0[i] * (1 - decay) - c * lr * u, actual[i], 5);
        }
    }

    [Fact]
    public void ZLossGradientMatchesClosedForm()
    {
        // d/dx_j [c * mean_n (logsumexp x_n)^2] = c * 2 * logZ_n * softmax(x_n)_j / N.
        double[] values = [0.3, -1.2, 2.0, 0.5, 1.5, -0.7, 0.0, 3.0];
        using var logits = tensor(values, [2, 4], dtype: ScalarType.Float64).requires_grad_(true);
        var loss = ProxyTrainer.ZLoss(logits.logsumexp(-1), 1e-4);
        loss.backward();
        var grad = logits.grad!.data<double>().ToArray();
        double expectedLoss = 0;
        for (int n = 0; n < 2; n++)
        {
            var row = values.Skip(4 * n).Take(4).ToArray();
            double logZ = Math.Log(row.Sum(Math.Exp));
            expectedLoss += 1e-4 * logZ * logZ / 2;
            for (int j = 0; j < 4; j++) Assert.Equal(1e-4 * 2 * logZ * Math.Exp(row[j] - logZ) / 2, grad[4 * n + j], 12);
        }
        Assert.Equal(expectedLoss, loss.item<double>(), 12);
    }

    [Fact]
    public void QkLayerNormBoundsAttentionLogitsWhenWeightsGrow()
    {
        // With unit-gain layer norm on q and k (no bias), |q.k|/sqrt(d) <= ||q|| ||k|| / sqrt(d) = d/sqrt(d) = sqrt(d).
        var config = Tiny with { Depth = 1, QkLayerNorm = true };
        using var tokens = tensor(Enumerable.Range(0, 16).Select(i => (long)(i * 13 % 256)).ToArray(), [1, 16]);
        foreach (bool qkLn in new[] { true, false })
        {
            using var model = new ProxyTransformer(config with { QkLayerNorm = qkLn }, CPU, 1);
            using (no_grad())
                model.named_parameters().First(p => p.name == "blocks.0.attn.qkv.weight").parameter.mul_(100);
            model.CaptureStatistics = true;
            using var _ = no_grad();
            model.forward(tokens);
            double max = model.LastMaxAttentionLogits[0].item<float>();
            if (qkLn) Assert.InRange(max, 0, Math.Sqrt(8) + 1e-4);
            else Assert.True(max > 100, $"without qk-layernorm the logit should grow with the weights; got {max}");
        }
    }

    [SharedDataFact]
    public void SameSeedGivesSameLossesAndTrainingLowersTheLoss()
    {
        var a = ProxyTrainer.Train(Tiny, Short, Shakespeare.Value, CPU);
        var b = ProxyTrainer.Train(Tiny, Short, Shakespeare.Value, CPU);
        var c = ProxyTrainer.Train(Tiny, Short with { Seed = 1 }, Shakespeare.Value, CPU);
        Assert.Equal(a.Metrics.Select(m => m.Loss), b.Metrics.Select(m => m.Loss));
        Assert.Equal(a.FinalLoss, b.FinalLoss);
        Assert.NotEqual(a.Metrics[^1].Loss, c.Metrics[^1].Loss);
        Assert.False(a.Diverged);
        Assert.InRange(a.InitialLoss, Math.Log(256) - 0.1, Math.Log(256) + 0.1); // near-uniform predictions at initialisation
        Assert.True(a.FinalLoss < a.InitialLoss - 1.0, $"loss {a.InitialLoss} -> {a.FinalLoss}");
        Assert.Equal([1, 10, 20, 30, 40], a.Metrics.Select(m => m.Step));
        Assert.Equal(40L * 8 * 32, a.Tokens);
        Assert.All(a.Metrics, m => Assert.Equal(2, m.MaxAttentionLogit.Length));
        Assert.All(a.Metrics, m => Assert.True(m.GradNorm > 0 && m.UpdateRms > 0 && m.ParameterRms > 0));
        Assert.Equal(LearningRateSchedules.At(Short, 39), a.Metrics[^1].LearningRate);
    }

    [SharedDataFact]
    public void HugeLearningRateIsRecordedAsDiverged()
    {
        var run = ProxyTrainer.Train(Tiny, Short with { LearningRate = 50, Schedule = ScheduleShape.Constant, MinLearningRate = 0, LogEvery = 5 }, Shakespeare.Value, CPU);
        Assert.True(run.Diverged, $"final {run.FinalTrainLoss}");
        Assert.True(run.StepsCompleted < 40);
        Assert.True(double.IsNaN(run.FinalLoss));
        var record = run.ToRecord("k", "test", "sp");
        Assert.True(record["diverged"]!.GetValue<bool>());
        Assert.NotNull(record["divergenceReason"]);
    }

    [SharedDataFact]
    public void ZLossKeepsLogZNearerZero()
    {
        var without = ProxyTrainer.Train(Tiny, Short, Shakespeare.Value, CPU);
        var with = ProxyTrainer.Train(Tiny, Short with { ZLoss = true, ZLossCoefficient = 1e-2 }, Shakespeare.Value, CPU);
        Assert.True(Math.Abs(with.Metrics[^1].MeanLogZ) < Math.Abs(without.Metrics[^1].MeanLogZ),
            $"|log Z| with z-loss {with.Metrics[^1].MeanLogZ}, without {without.Metrics[^1].MeanLogZ}");
    }

    [SharedDataFact]
    public void BadTrainingInputsAreRejected()
    {
        Assert.Contains("LearningRate", Assert.Throws<ArgumentException>(() => new ProxyTrainingOptions { LearningRate = 0 }.Validate()).Message);
        Assert.Contains("Steps", Assert.Throws<ArgumentException>(() => new ProxyTrainingOptions { Steps = -3 }.Validate()).Message);
        Assert.Contains("BatchSize", Assert.Throws<ArgumentException>(() => new ProxyTrainingOptions { BatchSize = 0 }.Validate()).Message);
        Assert.Contains("exceeds the model's ContextLength", Assert.Throws<ArgumentException>(() =>
            ProxyTrainer.Train(Tiny, Short with { SequenceLength = 64 }, Shakespeare.Value, CPU)).Message);
        Assert.Contains("too short", Assert.Throws<ArgumentException>(() =>
            ProxyTrainer.Train(Tiny, Short, TextCorpus.FromText("short", new string('a', 200)), CPU)).Message);
        if (!cuda.is_available())
            Assert.Contains("CUDA is not available", Assert.Throws<ScalingInteractive.Hosting.TorchUnavailableException>(() =>
                ScalingInteractive.Hosting.TorchRuntime.ResolveDevice("cuda")).Message);
    }

    [SharedDataFact]
    public void CancellationStopsTheRun()
    {
        using var cts = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() => ProxyTrainer.Train(Tiny, Short, Shakespeare.Value, CPU, new CancelAt(10, cts), cts.Token));
    }

    [Fact]
    public void ValidationRunsAtInitialisationChosenStepsAndTheEnd()
    {
        var run = ProxyTrainer.Train(Tiny, Short with { ValidationSteps = [20] }, TextCorpus.Synthetic(50_000, seed: 2), CPU);
        Assert.Equal([0, 20, 40], run.Validation.Select(v => v.Step));
        Assert.Equal(run.FinalLoss, run.Validation[^1].Loss);
        // The synthetic grammar is learnable: 40 steps already cut the loss well below uniform.
        Assert.True(run.Validation[^1].Loss < run.Validation[0].Loss - 1.0, $"{run.Validation[0].Loss} -> {run.Validation[^1].Loss}");
        Assert.Contains("ValidationSteps must lie in [1, 40]", Assert.Throws<ArgumentException>(() => (Short with { ValidationSteps = [99] }).Validate()).Message);
    }

    // Cancels once the trainer reports the given step.
    private sealed class CancelAt(int step, CancellationTokenSource cts) : IProgressSink
    {
        public void Report(int done, string? status = null, string? best = null) { if (done >= step) cts.Cancel(); }

        public void Complete(string? status = null) { }
    }
}
