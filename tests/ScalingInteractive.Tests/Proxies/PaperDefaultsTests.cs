using ScalingInteractive.Tests.Training;
using ScalingInteractive.Proxies;
using Xunit;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.Proxies;

/// <summary>
/// The paper-named defaults of the proxy capability: Wortsman et al. 2023 ("Small-scale proxies for large-scale
/// Transformer training instabilities"), PaLM (Chowdhery et al. 2022) for z-loss, Dehghani et al. 2023 for
/// qk-layernorm and Yang et al. 2022 (muP, Tensor Programs V) for the width scalings.
/// </summary>
public sealed class PaperDefaultsTests
{
    /// <summary>
    /// Wortsman et al. 2023, section 2 (experimental methodology): AdamW with beta1 = 0.9, beta2 = 0.95, epsilon = 1e-8,
    /// gradient clipping at global norm 1, z-loss coefficient 1e-4 (section 3.1.2) and cosine decay; section 3.2.2:
    /// independent weight decay 1e-4.
    /// </summary>
    [Fact]
    public void Training_defaults_are_Wortsman_et_al_settings()
    {
        var options = new ProxyTrainingOptions();
        Assert.Equal(0.9, options.Beta1);
        Assert.Equal(0.95, options.Beta2);
        Assert.Equal(1e-8, options.Epsilon);
        Assert.Equal(1.0, options.GradClip);
        Assert.Equal(1e-4, options.ZLossCoefficient);
        Assert.Equal(ScheduleShape.Cosine, options.Schedule);
        Assert.Equal(WeightDecayMode.Coupled, options.WeightDecayMode); // PyTorch's AdamW, the paper's "default"
        Assert.Equal(1e-4, ProxySettings.IndependentWeightDecay);
        var independent = ProxySettings.Create("independent-wd", options, [32]);
        Assert.Equal(WeightDecayMode.Independent, independent.WeightDecayMode);
        Assert.Equal(1e-4, independent.WeightDecay!.Value);
        Assert.True(ProxySettings.Create("z-loss", options, [32]).ZLoss == true);
        Assert.True(ProxySettings.Create("qk-layernorm", options, [32]).QkLayerNorm == true);
    }

    /// <summary>PaLM (Chowdhery et al. 2022), section 5: z_loss = 1e-4 * log^2 Z; Wortsman et al. 2023, section 3.1.2. Computed by hand from the logits.</summary>
    [Fact]
    public void Z_loss_is_coefficient_times_mean_log_Z_squared()
    {
        using var logits = tensor(new float[] { 1, 2, 3, 0, 0, 0, 5, -1, 2 }).reshape(3, 3);
        double expected = 0;
        foreach (var row in new[] { new[] { 1.0, 2, 3 }, new[] { 0.0, 0, 0 }, new[] { 5.0, -1, 2 } })
        {
            double logZ = Math.Log(row.Sum(Math.Exp));
            expected += logZ * logZ / 3;
        }
        using var logZs = logits.logsumexp(-1);
        using var z = ProxyTrainer.ZLoss(logZs, new ProxyTrainingOptions().ZLossCoefficient);
        Assert.Equal(1e-4 * expected, z.item<float>(), 1e-9);
    }

    private static (Tensor P, ScalingInteractive.Training.AdamW Optimizer) ZeroGradientStep(WeightDecayMode mode, double learningRate, double peak)
    {
        var p = ones(4, 4).requires_grad_(true);
        (p * 0).sum().backward(); // zero gradient: Adam's update is 0, so only the decay moves p
        var options = new ProxyTrainingOptions { WeightDecay = 1e-4, WeightDecayMode = mode, LearningRate = peak };
        var optimizer = new TensorParametrisation(("w", p, 1.0)).Optimizer(options.ToAdamWOptions());
        optimizer.Step([learningRate], [peak]);
        return (p, optimizer);
    }

    /// <summary>
    /// Wortsman et al. 2023, section 3.2.2: AdamW's default decay is theta -= s_t eta lambda theta; independent decay
    /// is theta -= s_t lambda theta (s_t the schedule factor), so the decay no longer shrinks with the learning rate.
    /// </summary>
    [Fact]
    public void Independent_weight_decay_does_not_scale_with_the_learning_rate()
    {
        var (coupled, o1) = ZeroGradientStep(WeightDecayMode.Coupled, 1e-2, 1e-2);
        Assert.Equal(1 - 1e-2 * 1e-4, coupled[0, 0].item<float>(), 1e-7);
        var (independent, o2) = ZeroGradientStep(WeightDecayMode.Independent, 1e-2, 1e-2);
        Assert.Equal(1 - 1e-4, independent[0, 0].item<float>(), 1e-7);
        var (halfway, o3) = ZeroGradientStep(WeightDecayMode.Independent, 5e-3, 1e-2); // s_t = 0.5
        Assert.Equal(1 - 0.5e-4, halfway[0, 0].item<float>(), 1e-7);
        o1.Dispose(); o2.Dispose(); o3.Dispose();
    }

    /// <summary>
    /// Yang et al. 2022 (muP), Table 3 and section 4: attention logits scaled by 1/d_head instead of 1/sqrt(d_head);
    /// hidden matrices' Adam learning rate times 1/m and the output logits times 1/m, m = width / base width; input
    /// embeddings and the output head keep the base learning rate. Wortsman et al. 2023, section 3.2.4.
    /// </summary>
    [Fact]
    public void Mup_scales_attention_by_one_over_head_dim_and_hidden_learning_rates_by_one_over_m()
    {
        var sp = new ProxyModelConfig { Width = 64, Depth = 1, Heads = 4 };
        using var standard = new ProxyTransformer(sp, CPU, seed: 1);
        Assert.Equal(1 / Math.Sqrt(16), standard.AttentionScale, 12);
        Assert.All(standard.LearningRateScales().Values, s => Assert.Equal(1.0, s));

        using var mup = new ProxyTransformer(sp with { MupBaseWidth = 16 }, CPU, seed: 1);
        Assert.Equal(4.0, mup.Config.WidthMultiplier);
        Assert.Equal(1.0 / 16, mup.AttentionScale, 12);
        var scales = mup.LearningRateScales();
        foreach (string hidden in new[] { "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight", "blocks.0.mlp.fc.weight", "blocks.0.mlp.proj.weight" })
            Assert.Equal(0.25, scales[hidden], 12);
        Assert.Equal(1.0, scales["tok_emb.weight"]);
        Assert.Equal(1.0, scales["head.weight"]);

        // Same weights, output multiplier 1/m: the muP model's logits are the standard model's divided by m = 4.
        using (no_grad())
        {
            var sd = standard.state_dict();
            mup.load_state_dict(sd);
            using var tokens = randint(0, 256, new long[] { 2, 8 }, dtype: ScalarType.Int64, generator: new Generator(3));
            // Attention scale differs, so compare with a one-token sequence, where softmax over one key is 1 either way.
            using var one = tokens.narrow(1, 0, 1);
            using var a = standard.forward(one);
            using var b = mup.forward(one);
            Assert.True(allclose(a / 4, b, rtol: 1e-5, atol: 1e-6));
        }
    }

    /// <summary>Dehghani et al. 2023 / Wortsman et al. 2023, section 3.1.1: LayerNorm over the head dimension on queries and keys before the dot product.</summary>
    [Fact]
    public void Qk_layernorm_normalises_queries_and_keys_over_the_head_dimension()
    {
        using var model = new ProxyTransformer(new ProxyModelConfig { Width = 64, Depth = 1, Heads = 4, QkLayerNorm = true }, CPU, seed: 2);
        var named = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(new long[] { 16 }, named["blocks.0.attn.q_ln.weight"].shape);
        Assert.Equal(new long[] { 16 }, named["blocks.0.attn.k_ln.weight"].shape);
        // With unit gains, |LN(q) . LN(k)| <= d_head, so the scaled logit is at most sqrt(d_head) = 4 however large q and k grow.
        using (no_grad()) named["blocks.0.attn.qkv.weight"].mul_(1000);
        model.CaptureStatistics = true;
        using var tokens = randint(0, 256, new long[] { 2, 16 }, dtype: ScalarType.Int64, generator: new Generator(4));
        using var _ = model.forward(tokens);
        float max = model.LastMaxAttentionLogits[0].item<float>();
        Assert.InRange(max, 0, 4 + 1e-3);
    }
}
