using ScalingInteractive.Checkpoints;
using System.Text.Json;
using ScalingInteractive.LoraSpectra;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.LoraSpectra;

public sealed class LoraTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-lora-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class TwoLayer : nn.Module<Tensor, Tensor>
    {
        private readonly Linear fc;
        private readonly Linear proj;
        private readonly Linear head;

        public TwoLayer() : base("TwoLayer")
        {
            fc = nn.Linear(6, 8);
            proj = nn.Linear(8, 5);
            head = nn.Linear(5, 3);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => head.forward(proj.forward(nn.functional.gelu(fc.forward(x))));
    }

    [Fact]
    public void Scaling_is_alpha_over_r_or_alpha_over_sqrt_r_for_rslora()
    {
        Assert.Equal(2.0, new LoraOptions { Rank = 16, Alpha = 32 }.Scaling);
        Assert.Equal(8.0, new LoraOptions { Rank = 16, Alpha = 32, RankStabilized = true }.Scaling);
        Assert.Equal(2.0, new LoraOptions { Rank = 4 }.Scaling); // default alpha = 2r
        Assert.Equal(4.0, new LoraOptions { Rank = 4, RankStabilized = true }.Scaling); // 8 / sqrt(4)
        Assert.Throws<ArgumentException>(() => new LoraOptions { Rank = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new LoraOptions { TargetPatterns = ["("] }.Validate());
    }

    [Fact]
    public void LoraLinear_starts_as_the_base_layer_and_merged_weights_equal_its_forward()
    {
        manual_seed(7);
        var baseLayer = nn.Linear(10, 6);
        var lora = new LoraLinear(baseLayer, new LoraOptions { Rank = 3, Alpha = 5 });
        var x = randn(4, 10);
        Assert.True(lora.forward(x).allclose(baseLayer.forward(x))); // B = 0
        // Kaiming-uniform with a = sqrt(5): bound = sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(10).
        Assert.True(lora.A.abs().max().item<float>() <= 1 / Math.Sqrt(10) + 1e-6);
        Assert.Equal(0f, lora.B.abs().sum().item<float>());
        Assert.False(baseLayer.weight!.requires_grad);
        Assert.Equal(3 * (10 + 6), lora.TrainableParameterCount);
        Assert.Equal(2, lora.parameters().Count(p => p.requires_grad));

        using (no_grad()) lora.B.copy_(randn(6, 3));
        var w0 = baseLayer.weight!.detach().clone();
        // Independent: y = x W0ᵀ + b + (alpha/r) x Aᵀ Bᵀ.
        var expected = x.matmul(w0.mT) + baseLayer.bias! + x.matmul(lora.A.mT).matmul(lora.B.mT) * (5.0 / 3);
        var unmerged = lora.forward(x).detach();
        Assert.True(unmerged.allclose(expected, rtol: 1e-5, atol: 1e-5));
        lora.Merge();
        Assert.True(lora.Merged);
        Assert.True(lora.forward(x).allclose(unmerged, rtol: 1e-5, atol: 1e-5));
        Assert.True(baseLayer.weight!.allclose(w0 + lora.B.matmul(lora.A) * (5.0 / 3), rtol: 1e-5, atol: 1e-6));
        lora.Unmerge();
        Assert.True(baseLayer.weight!.allclose(w0, atol: 1e-6));
    }

    [Fact]
    public void Weight_space_attachment_gives_the_same_gradients_as_the_LoRA_forward()
    {
        manual_seed(11);
        var model = new TwoLayer();
        var options = new LoraOptions { Rank = 2, Alpha = 3, TargetPatterns = ["^(fc|proj)$"] };
        using var attachment = LoraAttachment.Attach(model, options);
        Assert.Equal(["fc", "proj"], attachment.Targets.Select(t => t.Name));
        Assert.Equal(2 * (6 + 8) + 2 * (8 + 5), attachment.TrainableParameterCount);
        using (no_grad()) foreach (var t in attachment.Targets) t.B.copy_(randn(t.B.shape));

        var x = randn(5, 6);
        attachment.Sync();
        model.forward(x).pow(2).sum().backward();
        attachment.PullGradients();

        // Reference: the same function written with explicit LoRA branches, differentiated by autograd.
        var fc = attachment.Targets[0];
        var proj = attachment.Targets[1];
        var a1 = fc.A.detach().clone().requires_grad_(); var b1 = fc.B.detach().clone().requires_grad_();
        var a2 = proj.A.detach().clone().requires_grad_(); var b2 = proj.B.detach().clone().requires_grad_();
        double s = options.Scaling;
        var h = nn.functional.linear(x, fc.BaseWeight, Bias(model, "fc")) + x.matmul(a1.mT).matmul(b1.mT) * s;
        h = nn.functional.gelu(h);
        var p = nn.functional.linear(h, proj.BaseWeight, Bias(model, "proj")) + h.matmul(a2.mT).matmul(b2.mT) * s;
        var head = model.named_modules().First(m => m.name == "head").module as Linear;
        var y = nn.functional.linear(p, head!.weight!.detach(), head.bias!.detach());
        y.pow(2).sum().backward();
        Assert.True(fc.A.grad!.allclose(a1.grad!, rtol: 1e-4, atol: 1e-5));
        Assert.True(fc.B.grad!.allclose(b1.grad!, rtol: 1e-4, atol: 1e-5));
        Assert.True(proj.A.grad!.allclose(a2.grad!, rtol: 1e-4, atol: 1e-5));
        Assert.True(proj.B.grad!.allclose(b2.grad!, rtol: 1e-4, atol: 1e-5));
        // Everything but the LoRA factors is frozen: the head got no gradient.
        Assert.Null(head.weight!.grad);

        var w0 = fc.BaseWeight.clone();
        Assert.False(fc.Weight.allclose(w0)); // merged while attached
        attachment.Detach(keepMerged: false);
        Assert.True(fc.Weight.eq(w0).all().item<bool>());
        Assert.True(head.weight!.requires_grad);
    }

    [Fact]
    public void Attachment_explains_a_pattern_that_matches_nothing()
    {
        var e = Assert.Throws<ArgumentException>(() => LoraAttachment.Attach(new TwoLayer(), new LoraOptions { TargetPatterns = ["attn"] }));
        Assert.Contains("Layers: fc, proj, head", e.Message);
        Assert.Throws<ArgumentException>(() => LoraAttachment.Attach(new TwoLayer(), new LoraOptions { Dropout = 0.1 }));
        // The default pattern skips the output head.
        using var all = LoraAttachment.Attach(new TwoLayer(), new LoraOptions());
        Assert.Equal(["fc", "proj"], all.Targets.Select(t => t.Name));
    }

    private void WriteAdapter(string folder, Dictionary<string, Tensor> tensors, object config)
    {
        Directory.CreateDirectory(folder);
        SafetensorsWriter.Write(Path.Combine(folder, "adapter_model.safetensors"), tensors);
        File.WriteAllText(Path.Combine(folder, "adapter_config.json"), JsonSerializer.Serialize(config));
    }

    /// <summary>Plain loops, independent of torch: W0 + scale * B A.</summary>
    private static float[,] MergeByHand(float[] w0, float[] a, float[] b, int outF, int inF, int r, double scale)
    {
        var result = new float[outF, inF];
        for (int i = 0; i < outF; i++)
            for (int j = 0; j < inF; j++)
            {
                double sum = 0;
                for (int k = 0; k < r; k++) sum += b[i * r + k] * a[k * inF + j];
                result[i, j] = (float)(w0[i * inF + j] + scale * sum);
            }
        return result;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Peft_adapter_merges_into_the_base_checkpoint(bool rsLora)
    {
        manual_seed(5);
        var q = randn(6, 5);
        var v = randn(6, 5);
        string basePath = Path.Combine(_dir, "model.safetensors");
        SafetensorsWriter.Write(basePath, new Dictionary<string, Tensor>
        {
            ["model.layers.0.self_attn.q_proj.weight"] = q, ["model.layers.0.self_attn.v_proj.weight"] = v, ["model.norm.weight"] = ones(5),
        });
        var aq = randn(4, 5); var bq = randn(6, 4);
        var av = randn(4, 5); var bv = randn(6, 4);
        string folder = Path.Combine(_dir, "adapter" + rsLora);
        WriteAdapter(folder, new Dictionary<string, Tensor>
        {
            ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = aq.to_type(ScalarType.BFloat16),
            ["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"] = bq.to_type(ScalarType.BFloat16),
            ["base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight"] = av,
            ["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"] = bv,
        }, new { r = 4, lora_alpha = 8, target_modules = new[] { "q_proj", "v_proj" }, use_rslora = rsLora, peft_type = "LORA" });

        using var adapter = PeftAdapter.Open(folder);
        double scale = rsLora ? 8 / Math.Sqrt(4) : 8.0 / 4;
        Assert.Equal(2, adapter.Modules.Count);
        Assert.All(adapter.Modules, m => Assert.Equal(scale, m.Scaling));
        Assert.Equal(["q_proj", "v_proj"], adapter.Config.TargetModules);
        using var baseFile = SafetensorsFile.Open(basePath);
        var baseWeights = baseFile.ToTensors();
        var merged = adapter.MergeInto(baseWeights);
        Assert.Equal(2, merged.Count);
        // bf16 factors are read as stored (rounded); the reference uses the same rounded values.
        var expectedQ = MergeByHand(q.data<float>().ToArray(), aq.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32).data<float>().ToArray(),
            bq.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32).data<float>().ToArray(), 6, 5, 4, scale);
        var gotQ = merged["model.layers.0.self_attn.q_proj.weight"];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 5; j++)
                Assert.Equal(expectedQ[i, j], gotQ[i, j].item<float>(), 1e-3);
        var expectedV = MergeByHand(v.data<float>().ToArray(), av.data<float>().ToArray(), bv.data<float>().ToArray(), 6, 5, 4, scale);
        Assert.Equal(expectedV[5, 4], merged["model.layers.0.self_attn.v_proj.weight"][5, 4].item<float>(), 1e-4);

        // The full pipeline: base vs base + adapter through the model comparison.
        var tuned = new Dictionary<string, Tensor>(baseWeights);
        foreach (var (k, t) in merged) tuned[k] = t;
        var spectrum = SpectrumAnalysis.Compare("adapter", baseWeights, tuned, new IntruderOptions { TopK = 3 }, layerFilter: "proj");
        Assert.Equal(2, spectrum.Layers.Count);
    }

    [Fact]
    public void Peft_adapter_reports_missing_halves_bad_configs_and_missing_base_weights()
    {
        string folder = Path.Combine(_dir, "broken");
        WriteAdapter(folder, new Dictionary<string, Tensor> { ["base_model.model.x.lora_A.weight"] = randn(2, 3) }, new { r = 2, lora_alpha = 4 });
        Assert.Contains("has lora_A but no lora_B", Assert.Throws<InvalidDataException>(() => PeftAdapter.Open(folder)).Message);

        string badConfig = Path.Combine(_dir, "badconfig");
        WriteAdapter(badConfig, new Dictionary<string, Tensor> { ["a"] = randn(1) }, new { r = 2 });
        Assert.Contains("'lora_alpha' must be a positive number", Assert.Throws<InvalidDataException>(() => PeftAdapter.Open(badConfig)).Message);
        File.WriteAllText(Path.Combine(badConfig, "adapter_config.json"), "{ r: ");
        Assert.Contains("not valid JSON", Assert.Throws<InvalidDataException>(() => PeftAdapter.Open(badConfig)).Message);

        string ranks = Path.Combine(_dir, "ranks");
        WriteAdapter(ranks, new Dictionary<string, Tensor>
        {
            ["base_model.model.x.lora_A.weight"] = randn(2, 3), ["base_model.model.x.lora_B.weight"] = randn(4, 3),
        }, new { r = 2, lora_alpha = 4 });
        Assert.Contains("same r", Assert.Throws<InvalidDataException>(() => PeftAdapter.Open(ranks)).Message);

        string ok = Path.Combine(_dir, "ok");
        WriteAdapter(ok, new Dictionary<string, Tensor>
        {
            ["base_model.model.x.lora_A.weight"] = randn(2, 3), ["base_model.model.x.lora_B.weight"] = randn(4, 2),
        }, new { r = 2, lora_alpha = 4 });
        using var adapter = PeftAdapter.Open(Path.Combine(ok, "adapter_model.safetensors"));
        Assert.Contains("no weight for adapter module 'x'", Assert.Throws<InvalidDataException>(() => adapter.MergeInto(new Dictionary<string, Tensor> { ["y.weight"] = randn(4, 3) })).Message);
        Assert.Contains("update of shape [4, 3]", Assert.Throws<InvalidDataException>(() => adapter.MergeInto(new Dictionary<string, Tensor> { ["x.weight"] = randn(3, 3) })).Message);
        Assert.Throws<FileNotFoundException>(() => PeftAdapter.Open(Path.Combine(_dir, "nowhere")));
    }

    private static Tensor Bias(nn.Module model, string layer) => model.named_parameters().First(p => p.name == layer + ".bias").parameter.detach();
}
