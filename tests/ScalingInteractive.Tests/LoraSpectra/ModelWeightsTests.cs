using ScalingInteractive.Checkpoints;
using System.Collections;
using System.Text.Json;
using ScalingInteractive.LoraSpectra;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.LoraSpectra;

public sealed class ModelWeightsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-weights-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Reads_modules_dictionaries_and_safetensors_files_and_folders()
    {
        using var scope = NewDisposeScope();
        var module = nn.Linear(4, 3);
        Assert.Equal(["weight", "bias"], ModelWeights.From(module).Keys);
        var typed = new Dictionary<string, Tensor> { ["w"] = ones(2, 2) };
        Assert.Same(typed["w"], ModelWeights.From(typed)["w"]);
        Hashtable untyped = new() { ["w"] = ones(2, 2) };
        Assert.Equal(["w"], ModelWeights.From(untyped).Keys);
        Assert.Throws<ArgumentException>(() => ModelWeights.From(new Hashtable { ["w"] = 1.0 }));
        Assert.Throws<ArgumentException>(() => ModelWeights.From(42));

        string file = Path.Combine(_dir, "model-00001.safetensors");
        SafetensorsWriter.Write(file, new Dictionary<string, Tensor> { ["a.q.weight"] = randn(3, 4), ["a.k.weight"] = randn(3, 4), ["a.norm"] = randn(4) });
        SafetensorsWriter.Write(Path.Combine(_dir, "adapter_model.safetensors"), new Dictionary<string, Tensor> { ["x.lora_A.weight"] = randn(1, 4) });
        Assert.Equal(["a.k.weight", "a.q.weight"], ModelWeights.From(file).Keys.Order(StringComparer.Ordinal)); // 2-D only
        Assert.Equal(["a.q.weight"], ModelWeights.Load(_dir, filter: "q").Keys); // folder: adapter files skipped
        Assert.Throws<FileNotFoundException>(() => ModelWeights.Load(Path.Combine(_dir, "missing")));
    }

    [Fact]
    public void Pair_merges_a_peft_adapter_and_keeps_only_the_adapted_matrices()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        var baseWeights = new Dictionary<string, Tensor> { ["layers.0.q.weight"] = randn(5, 4), ["layers.0.k.weight"] = randn(5, 4) };
        string adapter = Path.Combine(_dir, "adapter");
        Directory.CreateDirectory(adapter);
        var a = randn(1, 4);
        var b = randn(5, 1);
        SafetensorsWriter.Write(Path.Combine(adapter, "adapter_model.safetensors"), new Dictionary<string, Tensor>
        {
            ["base_model.model.layers.0.q.lora_A.weight"] = a, ["base_model.model.layers.0.q.lora_B.weight"] = b,
        });
        File.WriteAllText(Path.Combine(adapter, "adapter_config.json"), JsonSerializer.Serialize(new { r = 1, lora_alpha = 2, target_modules = new[] { "q" } }));

        var (w0, tuned) = ModelWeights.Pair(baseWeights, tuned: null, adapter: adapter);
        Assert.Equal(2, w0.Count);
        var merged = Assert.Single(tuned);
        Assert.Equal("layers.0.q.weight", merged.Key);
        // scaling = alpha / r = 2
        Assert.True(merged.Value.allclose(baseWeights["layers.0.q.weight"] + 2 * b.matmul(a), rtol: 1e-5, atol: 1e-5));

        // An explicit tuned model plus an adapter: the adapter's matrices replace the tuned ones; only those are compared.
        var other = new Dictionary<string, Tensor> { ["layers.0.q.weight"] = zeros(5, 4), ["layers.0.k.weight"] = zeros(5, 4) };
        Assert.Equal(["layers.0.q.weight"], ModelWeights.Pair(baseWeights, other, adapter).Tuned.Keys);
        Assert.Throws<ArgumentException>(() => ModelWeights.Pair(baseWeights, null, null));
    }
}
