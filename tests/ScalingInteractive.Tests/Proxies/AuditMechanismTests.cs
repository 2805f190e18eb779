using ScalingInteractive.Proxies;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.Proxies;

/// <summary>
/// Issue 10, audit (a): the proxy mechanisms checked in isolation against independent computations: z-loss's gradient
/// and where it enters the optimised loss (separate and ensemble trainer), z-loss's effect on log Z at a high rate,
/// and the reported max attention logit against q.k * scale recomputed from the model's weights.
/// </summary>
public class AuditMechanismTests(ITestOutputHelper output)
{
    private static readonly Lazy<TextCorpus> Corpus = new(() => TextCorpus.Synthetic(200_000, 3));
    private static readonly ProxyModelConfig Tiny = new() { Width = 32, Depth = 2, Heads = 2, ContextLength = 32 };
    private static readonly ProxyTrainingOptions OneStep = new() { Steps = 1, BatchSize = 8, SequenceLength = 32, LogEvery = 1, ValidationBatches = 1, Seed = 11 };

    // --- z-loss (Wortsman et al. 2023, after PaLM): coeff * mean over tokens of log^2 Z ---------------------------------

    [Fact]
    public void ZLossGradientWithRespectToTheLogitsIsTheClosedForm()
    {
        // The trainer's loss path: crossEntropy(logits, target) + ProxyTrainer.ZLoss(logits.logsumexp(-1), c), through autograd.
        // Closed form per row (token) of N: d/dlogits = (softmax - onehot)/N + 2 c log Z softmax / N.
        const double c = 0.3;
        using var scope = NewDisposeScope();
        using var generator = new Generator(5);
        var logits = (randn(new long[] { 3, 7, 256 }, dtype: ScalarType.Float64, generator: generator) * 3 + 2).requires_grad_(); // log Z far from 0
        var target = randint(0, 256, new long[] { 3, 7 }, generator: generator);
        long n = 3 * 7;

        var zOnly = ProxyTrainer.ZLoss(logits.logsumexp(-1), c);
        var zGrad = autograd.grad([zOnly], [logits])[0];
        var logZ = logits.detach().logsumexp(-1, keepdim: true);
        var soft = logits.detach().softmax(-1);
        var zExpected = soft * logZ * (2 * c / n);
        double zError = (zGrad - zExpected).abs().max().item<double>(), zScale = zExpected.abs().max().item<double>();

        var total = ProxyTransformer.CrossEntropy(logits, target) + ProxyTrainer.ZLoss(logits.logsumexp(-1), c);
        var totalGrad = autograd.grad([total], [logits])[0];
        var onehot = nn.functional.one_hot(target, 256).to_type(ScalarType.Float64);
        var totalExpected = (soft - onehot) / n + zExpected;
        double totalError = (totalGrad - totalExpected).abs().max().item<double>();

        output.WriteLine($"z-loss gradient: max |autograd - closed form| {zError:E2} (largest entry {zScale:E2}); with cross-entropy {totalError:E2}; mean log Z {logZ.mean().item<double>():F3}");
        Assert.True(zError <= 1e-12 * Math.Max(1, zScale) + 1e-14, $"z-loss gradient differs from 2 c log Z softmax / N by {zError}");
        Assert.True(totalError <= 1e-12, $"cross-entropy + z-loss gradient differs from the closed form by {totalError}");
        // The value itself: c * mean(log^2 Z).
        Assert.Equal(c * logZ.square().mean().item<double>(), zOnly.item<double>(), 10);
    }

    // The global gradient norm at the initial weights for cross-entropy + coefficient * mean log^2 Z, computed here on
    // the batch the trainer draws first (Random(seed ^ 0x5eed)), independently of the trainer.
    private static double ReferenceGradNorm(ProxyModelConfig config, ProxyTrainingOptions options, TextCorpus corpus, double coefficient)
    {
        using var scope = NewDisposeScope();
        using var model = new ProxyTransformer(config, CPU, options.Seed);
        var random = new Random(unchecked((int)options.Seed) ^ 0x5eed);
        var (input, target) = corpus.SampleBatch(false, options.BatchSize, options.SequenceLength, random, CPU);
        var logits = model.forward(input);
        var loss = nn.functional.cross_entropy(logits.reshape(-1, 256), target.reshape(-1));
        if (coefficient > 0) loss = loss + logits.logsumexp(-1).pow(2).mean() * coefficient;
        loss.backward();
        return Math.Sqrt(model.parameters().Sum(p => p.grad!.square().sum().item<float>()));
    }

    [Fact]
    public void ZLossIsInTheLossTheOptimiserSeesInTheSeparateTrainer()
    {
        // Step 1's logged gradient norm (before clipping: what AdamW then steps with) equals the reference's for the run's
        // own coefficient, and the flag off means no z-loss whatever the coefficient.
        var corpus = Corpus.Value;
        double ce = ReferenceGradNorm(Tiny, OneStep, corpus, 0), z1 = ReferenceGradNorm(Tiny, OneStep, corpus, 1.0), z01 = ReferenceGradNorm(Tiny, OneStep, corpus, 0.1);
        double off = ProxyTrainer.Train(Tiny, OneStep with { ZLoss = false, ZLossCoefficient = 1.0 }, corpus, CPU).Metrics[0].GradNorm;
        double on1 = ProxyTrainer.Train(Tiny, OneStep with { ZLoss = true, ZLossCoefficient = 1.0 }, corpus, CPU).Metrics[0].GradNorm;
        double on01 = ProxyTrainer.Train(Tiny, OneStep with { ZLoss = true, ZLossCoefficient = 0.1 }, corpus, CPU).Metrics[0].GradNorm;
        output.WriteLine($"separate trainer, step-1 grad norm: off {off:G6} (ref CE {ce:G6}), c=1 {on1:G6} (ref {z1:G6}), c=0.1 {on01:G6} (ref {z01:G6})");
        Assert.True(Math.Abs(z1 - ce) > 0.05 * ce, $"the check needs z-loss to move the gradient: {ce} vs {z1}");
        Assert.Equal(ce, off, ce * 1e-4);
        Assert.Equal(z1, on1, z1 * 1e-4);
        Assert.Equal(z01, on01, z01 * 1e-4);
    }

    [Fact]
    public void ZLossIsInTheLossTheOptimiserSeesInTheEnsembleTrainerWithEachMembersCoefficient()
    {
        var corpus = Corpus.Value;
        double[] coefficients = [0, 1.0, 0.1, 0.01];
        var members = coefficients.Select(c => (Tiny, c > 0 ? OneStep with { ZLoss = true, ZLossCoefficient = c } : OneStep with { ZLoss = false, ZLossCoefficient = 1.0 })).ToList();
        // A second ensemble with one batch per member (different seeds): the other data path of the ensemble trainer.
        var seeded = coefficients.Select((c, i) => (Tiny, members[i].Item2 with { Seed = 20 + i })).ToList();
        foreach (var grid in new[] { members, seeded })
        {
            var results = ProxyTrainer.Train(grid, corpus, CPU);
            for (int i = 0; i < grid.Count; i++)
            {
                var o = grid[i].Item2;
                double reference = ReferenceGradNorm(Tiny, o, corpus, o.ZLoss ? o.ZLossCoefficient : 0);
                double got = results[i].Metrics[0].GradNorm;
                output.WriteLine($"ensemble member {i} (seed {o.Seed}, z-loss {o.ZLoss}, c {o.ZLossCoefficient}): step-1 grad norm {got:G6}, reference {reference:G6}; reported z-loss {results[i].Metrics[0].ZLoss:G4}");
                Assert.Equal(reference, got, reference * 2e-4);
            }
        }
    }

    [Fact]
    public void ZLossKeepsMeanLogZCloserToZeroAtAHighLearningRate()
    {
        // Short, fixed seed, tiny model, a rate far above the optimum (constant, no warm-up): mean log Z of the last
        // logged step with and without z-loss (coefficient 1e-4 as in the paper, and 1e-2).
        var corpus = Corpus.Value;
        var options = new ProxyTrainingOptions
        {
            Steps = 150, BatchSize = 8, SequenceLength = 32, LogEvery = 10, ValidationBatches = 1, Seed = 3,
            LearningRate = 3e-2, Schedule = ScheduleShape.Constant, MinLearningRate = 0, DivergenceFactor = 100,
        };
        var runs = new[] { 0.0, 1e-4, 1e-2 }
            .Select(c => (c, run: ProxyTrainer.Train(Tiny, options with { ZLoss = c > 0, ZLossCoefficient = c > 0 ? c : 1e-4 }, corpus, CPU))).ToList();
        foreach (var (c, run) in runs)
            output.WriteLine($"z-loss c={c:G2}: mean log Z at steps {string.Join(", ", run.Metrics.Select(m => $"{m.Step}:{m.MeanLogZ:F2}"))}; final train loss {run.FinalTrainLoss:F3}; diverged {run.Diverged}");
        double Late(ProxyRunResult r) => r.Metrics.Skip(r.Metrics.Count / 2).Average(m => Math.Abs(m.MeanLogZ));
        double without = Late(runs[0].run), paper = Late(runs[1].run), strong = Late(runs[2].run);
        output.WriteLine($"mean |log Z| over the second half of the logged steps: without {without:F3}, c=1e-4 {paper:F3}, c=1e-2 {strong:F3}");
        Assert.True(paper < without, $"z-loss 1e-4 must keep log Z closer to 0: {paper} vs {without}");
        Assert.True(strong < paper, $"a larger z-loss coefficient must pull log Z closer to 0: {strong} vs {paper}");
    }

    // --- attention-logit growth: the reported max attention logit -------------------------------------------------------

    private static Tensor LayerNormRef(Tensor x, Tensor weight, Tensor? bias)
    {
        var mean = x.mean([-1], keepdim: true);
        var variance = (x - mean).square().mean([-1], keepdim: true);
        var y = (x - mean) / (variance + 1e-5).sqrt() * weight;
        return bias is null ? y : y + bias;
    }

    private static Tensor LinearRef(Tensor x, Dictionary<string, Tensor> p, string name) =>
        p.TryGetValue(name + ".bias", out var b) ? x.matmul(p[name + ".weight"].t()) + b : x.matmul(p[name + ".weight"].t());

    /// <summary>
    /// The model recomputed from its weights with explicit attention (softmax of masked q.k * scale, scale 1/sqrt(d_head),
    /// 1/d_head under muP): the output logits and the max attention logit per layer over batch, heads and causal positions.
    /// </summary>
    private static (Tensor Logits, double[] MaxLogit) Reference(ProxyTransformer model, Tensor tokens)
    {
        var c = model.Config;
        var p = model.named_parameters().ToDictionary(x => x.name, x => (Tensor)x.parameter.detach());
        long b = tokens.shape[0], t = tokens.shape[1];
        int h = c.Heads, hd = c.EffectiveHeadDim;
        double scale = c.MupBaseWidth is null ? 1.0 / Math.Sqrt(hd) : 1.0 / hd;
        var x = p["tok_emb.weight"].index_select(0, tokens.reshape(-1)).view(b, t, -1) + p["pos_emb.weight"].narrow(0, 0, t);
        var future = ones(t, t, dtype: ScalarType.Bool).triu(1);
        var max = new double[c.Depth];
        Tensor? Opt(string name) => p.TryGetValue(name, out var v) ? v : null;
        for (int l = 0; l < c.Depth; l++)
        {
            string pre = $"blocks.{l}.";
            var hIn = LayerNormRef(x, p[pre + "ln_1.weight"], Opt(pre + "ln_1.bias"));
            var qkv = LinearRef(hIn, p, pre + "attn.qkv").view(b, t, 3, h, hd);
            var q = qkv.select(2, 0).transpose(1, 2); // (B, H, T, hd)
            var k = qkv.select(2, 1).transpose(1, 2);
            var v = qkv.select(2, 2).transpose(1, 2);
            if (c.QkLayerNorm)
            {
                q = LayerNormRef(q, p[pre + "attn.q_ln.weight"], Opt(pre + "attn.q_ln.bias"));
                k = LayerNormRef(k, p[pre + "attn.k_ln.weight"], Opt(pre + "attn.k_ln.bias"));
            }
            var scores = q.matmul(k.transpose(-2, -1)) * scale;
            // max over every batch row, head and causal pair (i >= j), by explicit loops on the host
            var s = scores.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
            double best = double.NegativeInfinity;
            for (long bh = 0; bh < b * h; bh++)
                for (long i = 0; i < t; i++)
                    for (long j = 0; j <= i; j++)
                        best = Math.Max(best, s[bh * t * t + i * t + j]);
            max[l] = best;
            var attention = scores.masked_fill(future, double.NegativeInfinity).softmax(-1);
            var y = attention.matmul(v).transpose(1, 2).reshape(b, t, h * hd);
            x = x + LinearRef(y, p, pre + "attn.proj");
            var h2 = LayerNormRef(x, p[pre + "ln_2.weight"], Opt(pre + "ln_2.bias"));
            x = x + LinearRef(nn.functional.gelu(LinearRef(h2, p, pre + "mlp.fc")), p, pre + "mlp.proj");
        }
        var logits = LinearRef(LayerNormRef(x, p["ln_f.weight"], Opt("ln_f.bias")), p, "head") * (1.0 / c.WidthMultiplier);
        return (logits, max);
    }

    [Theory]
    [InlineData(false, false, null)]
    [InlineData(true, false, null)]
    [InlineData(false, true, null)]
    [InlineData(true, true, 16.0)]
    public void ReportedMaxAttentionLogitEqualsQDotKTimesScaleFromTheWeights(bool bias, bool qkLayerNorm, double? mupBase)
    {
        var config = new ProxyModelConfig { Width = 32, Depth = 2, Heads = 2, ContextLength = 16, Bias = bias, QkLayerNorm = qkLayerNorm, MupBaseWidth = mupBase };
        using var scope = NewDisposeScope();
        using var model = new ProxyTransformer(config, CPU, 4);
        using (no_grad())
        {
            // Grow q and k far beyond the initialisation (logits of order 10), and give the norms and biases non-trivial values.
            using var generator = new Generator(9);
            foreach (var (name, parameter) in model.named_parameters())
            {
                if (name.Contains(".attn.qkv.weight", StringComparison.Ordinal)) parameter.mul_(15);
                else if (name.Contains("ln", StringComparison.Ordinal) || name.EndsWith(".bias", StringComparison.Ordinal))
                    parameter.add_(randn(parameter.shape, generator: generator) * 0.3);
            }
        }
        var tokens = Corpus.Value.SampleBatch(false, 3, 16, new Random(2), CPU).Input;
        model.CaptureStatistics = true;
        Tensor logits;
        using (no_grad()) logits = model.forward(tokens);
        var reported = model.LastMaxAttentionLogits.Select(x => (double)x.item<float>()).ToArray();
        var (referenceLogits, reference) = Reference(model, tokens);
        double logitError = (logits - referenceLogits).abs().max().item<float>();
        output.WriteLine($"bias {bias}, qk-ln {qkLayerNorm}, muP {mupBase?.ToString() ?? "-"}: reported max attention logit [{string.Join(", ", reported.Select(x => x.ToString("F4")))}], " +
                         $"recomputed [{string.Join(", ", reference.Select(x => x.ToString("F4")))}]; output logits max |diff| {logitError:E2}; scale {model.AttentionScale:G4}");
        Assert.True(logitError < 1e-3, $"the reference forward must match the model's (attention uses the same scale the statistic reports): {logitError}");
        Assert.Equal(config.Depth, reported.Length);
        for (int l = 0; l < config.Depth; l++)
            Assert.True(Math.Abs(reported[l] - reference[l]) <= 1e-4 * Math.Max(1, Math.Abs(reference[l])), $"layer {l}: reported {reported[l]}, recomputed {reference[l]}");
        Assert.True(reference.Max() > (mupBase is null ? 2 : 0.4), "the check needs large attention logits (muP's 1/d_head with qk-layernorm keeps them near 1)");
    }

    [Fact]
    public void TrainerLogsTheMaxAttentionLogitOfItsStepBatch()
    {
        // The trainer's step-1 metric (measured on its first batch, before the update) equals the recomputation on that batch.
        var result = ProxyTrainer.Train(Tiny, OneStep, Corpus.Value, CPU);
        using var scope = NewDisposeScope();
        using var model = new ProxyTransformer(Tiny, CPU, OneStep.Seed);
        var (input, _) = Corpus.Value.SampleBatch(false, OneStep.BatchSize, OneStep.SequenceLength, new Random(unchecked((int)OneStep.Seed) ^ 0x5eed), CPU);
        var (_, reference) = Reference(model, input);
        var logged = result.Metrics[0].MaxAttentionLogit;
        output.WriteLine($"trainer step 1: logged [{string.Join(", ", logged.Select(x => x.ToString("G5")))}], recomputed [{string.Join(", ", reference.Select(x => x.ToString("G5")))}]");
        for (int l = 0; l < reference.Length; l++)
            Assert.Equal(reference[l], logged[l], Math.Abs(reference[l]) * 1e-3 + 1e-7);
    }
}
