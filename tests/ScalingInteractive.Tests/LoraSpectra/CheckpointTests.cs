using ScalingInteractive.Checkpoints;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using ScalingInteractive.Commands;
using ScalingInteractive.LoraSpectra;
using ScalingInteractive.Tests.Commands;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.LoraSpectra;

/// <summary>Zero-copy safetensors views, PEFT adapters written in PEFT's format, and sharded checkpoints.</summary>
public sealed class CheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-checkpoint-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    // ---- views ----------------------------------------------------------------------------------------------------

    [Fact]
    public void ToTensor_views_the_file_and_the_view_outlives_Dispose_and_deletion_without_changing_the_file()
    {
        manual_seed(11);
        using var w = randn(64, 32);
        using var b = randn(32).to_type(ScalarType.BFloat16);
        string p = PathOf("views.safetensors");
        SafetensorsWriter.Write(p, new Dictionary<string, Tensor> { ["w"] = w, ["b"] = b });

        Tensor view, again;
        using (var file = SafetensorsFile.Open(p))
        {
            Assert.True(file.CanView("w"));
            view = file.ToTensor("w");
            again = file.ToTensor("w");
            Assert.True(Same(w, view));
            // Two views of one tensor share memory: a write through one shows in the other (a copy would not).
            view.add_(1);
            Assert.True(Same(w + 1, again));
            // A conversion (bf16 -> float32) is a fresh tensor with the right values.
            using var converted = file.ToTensor("b");
            Assert.Equal(ScalarType.Float32, converted.dtype);
            Assert.True(Same(b.to_type(ScalarType.Float32), converted));
        }
        // Dispose released the file's objects: using it again is a clear error, never a dangling pointer.
        var disposed = SafetensorsFile.Open(p);
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => disposed.ToTensor("w"));
        Assert.Throws<ObjectDisposedException>(() => disposed.CanView("w"));
        Assert.Throws<ObjectDisposedException>(() => disposed.Bytes("w").Length);

        // The in-place write stayed private (copy-on-write): the file still holds the original values.
        using (var reopened = SafetensorsFile.Open(p))
        using (var fresh = reopened.ToTensor("w"))
            Assert.True(Same(w, fresh));

        // The views own their mapping: valid after their file object is disposed and the file is deleted.
        File.Delete(p);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.True(Same(w + 1, view));
        Assert.True(Same(w + 1, again));
        view.Dispose();
        Assert.True(Same(w + 1, again)); // one view's disposal leaves the mapping to the other
        again.Dispose();
    }

    [Fact]
    public void Unaligned_offsets_other_devices_and_positional_reads_copy_with_the_same_values()
    {
        // A header whose length puts the data at an odd offset: no float32 view is possible, the copy path is used.
        var data = new byte[16];
        for (int i = 0; i < 4; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * i), i + 0.5f);
        var json = Encoding.UTF8.GetBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}} ");
        Assert.NotEqual(0, (8 + json.Length) % 4);
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        string p = PathOf("odd.safetensors");
        File.WriteAllBytes(p, bytes);
        using var file = SafetensorsFile.Open(p);
        Assert.False(file.CanView("w"));
        using var t = file.ToTensor("w");
        Assert.Equal([0.5f, 1.5f, 2.5f, 3.5f], t.reshape(-1).data<float>().ToArray());
        using var pread = file.ToTensor("w", positionalRead: true);
        Assert.True(Same(t, pread));
        using var f64 = file.ToTensor("w", dtype: ScalarType.Float64);
        Assert.Equal(ScalarType.Float64, f64.dtype);
    }

    [Fact]
    public void A_file_truncated_after_opening_is_a_clear_error_not_a_crash()
    {
        string p = PathOf("shrinks.safetensors");
        SafetensorsWriter.Write(p, new Dictionary<string, Tensor> { ["w"] = ones(128, 128) });
        using var file = SafetensorsFile.Open(p);
        using (var s = new FileStream(p, FileMode.Open, FileAccess.Write, FileShare.ReadWrite)) s.SetLength(s.Length / 2);
        var e = Assert.Throws<InvalidDataException>(() => file.ToTensor("w"));
        Assert.Contains("truncated", e.Message);
        Assert.Contains("shrinks.safetensors", e.Message);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => file.ToTensor("w", dtype: ScalarType.Float64)).Message); // copy path
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => file.ReadFloats("w")).Message);
    }

    [Fact]
    public void A_file_deleted_while_open_is_still_read_from_the_opened_file()
    {
        string p = PathOf("deleted.safetensors");
        using var w = arange(12f).reshape(3, 4);
        SafetensorsWriter.Write(p, new Dictionary<string, Tensor> { ["w"] = w });
        using var file = SafetensorsFile.Open(p);
        File.Delete(p);
        File.WriteAllText(p, "a different file at the same path"); // the open file keeps reading the original
        using var view = file.ToTensor("w");
        Assert.True(Same(w, view));
        using var copy = file.ToTensor("w", dtype: ScalarType.Float64);
        Assert.True(Same(w.to_type(ScalarType.Float64), copy));
        using var pread = file.ToTensor("w", positionalRead: true);
        Assert.True(Same(w, pread));
    }

    // ---- PEFT writer ----------------------------------------------------------------------------------------------

    private sealed class Block : nn.Module<Tensor, Tensor>
    {
        private readonly Linear q_proj;
        private readonly Linear v_proj;
        private readonly Linear lm_head;

        public Block() : base("Block")
        {
            q_proj = nn.Linear(6, 8);
            v_proj = nn.Linear(8, 6);
            lm_head = nn.Linear(6, 3);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => lm_head.forward(v_proj.forward(q_proj.forward(x)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_saved_attachment_reads_back_as_the_same_merged_weights_in_PEFT_format(bool rsLora)
    {
        manual_seed(5);
        var model = new Block();
        var w0 = model.named_parameters().Where(p => p.name.EndsWith(".weight")).ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using var lora = LoraAttachment.Attach(model, new LoraOptions { Rank = 4, Alpha = 12, RankStabilized = rsLora, TargetPatterns = ["proj$"] });
        using (no_grad())
            foreach (var t in lora.Targets) t.B.copy_(randn(t.B.shape)); // B = 0 would make the test vacuous
        string folder = PathOf(rsLora ? "rs-adapter" : "adapter");
        PeftAdapterWriter.Save(folder, lora, new PeftSaveOptions { BaseModelNameOrPath = "org/base", TaskType = "CAUSAL_LM", ModuleName = n => "model." + n });

        // Keys and metadata as PeftModel.save_pretrained writes them: no adapter name, lora_A before lora_B.
        using (var file = SafetensorsFile.Open(Path.Combine(folder, "adapter_model.safetensors")))
        {
            Assert.Equal(["base_model.model.model.q_proj.lora_A.weight", "base_model.model.model.q_proj.lora_B.weight",
                          "base_model.model.model.v_proj.lora_A.weight", "base_model.model.model.v_proj.lora_B.weight"], file.Names);
            Assert.Equal("pt", file.Metadata["format"]);
            Assert.All(file.Tensors, t => Assert.Equal(SafetensorDType.F32, t.DType));
            Assert.Equal([4L, 6L], file.Info("base_model.model.model.q_proj.lora_A.weight").Shape);
            Assert.Equal([8L, 4L], file.Info("base_model.model.model.q_proj.lora_B.weight").Shape);
        }

        // Config fields and values of LoraConfig, keys sorted as json.dumps(sort_keys=True) writes them.
        string configText = File.ReadAllText(Path.Combine(folder, "adapter_config.json"));
        using var config = JsonDocument.Parse(configText);
        var root = config.RootElement;
        var keys = root.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys);
        Assert.Equal("LORA", root.GetProperty("peft_type").GetString());
        Assert.Equal(4, root.GetProperty("r").GetInt32());
        Assert.Equal(12, root.GetProperty("lora_alpha").GetInt32());
        Assert.Equal(rsLora, root.GetProperty("use_rslora").GetBoolean());
        Assert.False(root.GetProperty("fan_in_fan_out").GetBoolean());
        Assert.True(root.GetProperty("inference_mode").GetBoolean());
        Assert.Equal("none", root.GetProperty("bias").GetString());
        Assert.Equal("org/base", root.GetProperty("base_model_name_or_path").GetString());
        Assert.Equal("CAUSAL_LM", root.GetProperty("task_type").GetString());
        Assert.Equal(["model.q_proj", "model.v_proj"], root.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()));
        Assert.Empty(root.GetProperty("rank_pattern").EnumerateObject());
        Assert.Empty(root.GetProperty("alpha_pattern").EnumerateObject());

        // Read back with the reader and merge; compare with W0 + s B A computed here from the attachment's tensors.
        using var adapter = PeftAdapter.Open(folder);
        var baseWeights = w0.ToDictionary(kv => "model." + kv.Key, kv => kv.Value);
        var merged = adapter.MergeInto(baseWeights);
        Assert.Equal(2, merged.Count);
        double scaling = rsLora ? 12 / Math.Sqrt(4) : 12 / 4.0;
        foreach (var t in lora.Targets)
        {
            using var expected = w0[t.Name + ".weight"] + scaling * t.B.detach().matmul(t.A.detach());
            Assert.True(expected.allclose(merged["model." + t.Name + ".weight"], rtol: 1e-5, atol: 1e-6), t.Name);
        }
        Assert.DoesNotContain("model.lm_head.weight", merged.Keys);
    }

    [Fact]
    public void Mixed_ranks_and_alphas_go_to_rank_pattern_and_alpha_pattern_and_keep_each_scaling()
    {
        manual_seed(9);
        var pairs = new List<PeftLoraPair>
        {
            new("layers.0.q", randn(2, 5), randn(7, 2)),
            new("layers.1.q", randn(2, 5), randn(7, 2)),
            new("layers.1.v", randn(3, 5), randn(4, 3), Alpha: 9),
        };
        string folder = PathOf("mixed");
        PeftAdapterWriter.Save(folder, pairs, alpha: 4, useRsLora: false, new PeftSaveOptions { DType = ScalarType.BFloat16 });
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "adapter_config.json")));
        Assert.Equal(2, config.RootElement.GetProperty("r").GetInt32());
        Assert.Equal(3, config.RootElement.GetProperty("rank_pattern").GetProperty("layers.1.v").GetInt32());
        Assert.Equal(9, config.RootElement.GetProperty("alpha_pattern").GetProperty("layers.1.v").GetDouble());
        Assert.Equal(JsonValueKind.Null, config.RootElement.GetProperty("base_model_name_or_path").ValueKind);

        using var adapter = PeftAdapter.Open(folder);
        Assert.All(adapter.File.Tensors, t => Assert.Equal(SafetensorDType.BF16, t.DType));
        foreach (var pair in pairs)
        {
            var module = adapter.Modules.Single(m => m.Module == pair.Module);
            double expectedScaling = (pair.Alpha ?? 4) / pair.A.shape[0];
            Assert.Equal(expectedScaling, module.Scaling, 12);
            using var delta = adapter.Delta(module);
            // Independent merge from the bf16-rounded factors the file holds.
            using var a = pair.A.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32);
            using var b = pair.B.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32);
            using var expected = b.matmul(a) * expectedScaling;
            Assert.True(expected.allclose(delta, rtol: 1e-5, atol: 1e-5), pair.Module);
        }
    }

    [Fact]
    public void Writer_rejects_bad_pairs_naming_the_module()
    {
        string folder = PathOf("bad");
        Assert.Contains("'m.q'", Assert.Throws<ArgumentException>(() =>
            PeftAdapterWriter.Save(folder, [new PeftLoraPair("m.q", randn(2, 5), randn(7, 3))], 4, false)).Message);
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() =>
            PeftAdapterWriter.Save(folder, [new PeftLoraPair("m.q", randn(2, 5), randn(7, 2)), new PeftLoraPair("m.q", randn(2, 5), randn(7, 2))], 4, false)).Message);
        Assert.Equal("alpha", Assert.Throws<ArgumentException>(() =>
            PeftAdapterWriter.Save(folder, [new PeftLoraPair("m.q", randn(2, 5), randn(7, 2))], 0, false)).ParamName);
        Assert.Contains("not a dotted module path", Assert.Throws<ArgumentException>(() =>
            PeftAdapterWriter.Save(folder, [new PeftLoraPair("m q", randn(2, 5), randn(7, 2))], 4, false)).Message);
        Assert.Throws<ArgumentException>(() => PeftAdapterWriter.Save(folder, [new PeftLoraPair("m.q", randn(2, 5), randn(7, 2))], 4, false,
            new PeftSaveOptions { DType = ScalarType.Int32 }));
        Assert.False(Directory.Exists(folder)); // nothing written on bad input
    }

    // ---- sharded checkpoints --------------------------------------------------------------------------------------

    /// <summary>Two shards and an index laid out as transformers' save_pretrained(max_shard_size=...) writes them.</summary>
    private (string Folder, Dictionary<string, Tensor> Tensors) Sharded(string name, Action<Dictionary<string, string>>? editMap = null,
        Dictionary<string, Tensor>? extraInShard2 = null)
    {
        manual_seed(3);
        string folder = PathOf(name);
        Directory.CreateDirectory(folder);
        var shard1 = new Dictionary<string, Tensor> { ["model.embed.weight"] = randn(10, 4), ["model.layers.0.q.weight"] = randn(4, 4) };
        var shard2 = new Dictionary<string, Tensor> { ["model.layers.1.q.weight"] = randn(4, 4), ["lm_head.weight"] = randn(10, 4).to_type(ScalarType.BFloat16) };
        var written2 = new Dictionary<string, Tensor>(shard2);
        foreach (var (k, v) in extraInShard2 ?? []) written2[k] = v;
        SafetensorsWriter.Write(Path.Combine(folder, "model-00001-of-00002.safetensors"), shard1, new Dictionary<string, string> { ["format"] = "pt" });
        SafetensorsWriter.Write(Path.Combine(folder, "model-00002-of-00002.safetensors"), written2, new Dictionary<string, string> { ["format"] = "pt" });
        var map = shard1.Keys.ToDictionary(k => k, _ => "model-00001-of-00002.safetensors");
        foreach (var k in shard2.Keys) map[k] = "model-00002-of-00002.safetensors";
        editMap?.Invoke(map);
        long total = shard1.Values.Concat(shard2.Values).Sum(t => t.numel() * t.ElementSize);
        File.WriteAllText(Path.Combine(folder, SafetensorsCheckpoint.IndexFileName),
            JsonSerializer.Serialize(new { metadata = new { total_size = total }, weight_map = map.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary() }));
        return (folder, shard1.Concat(shard2).ToDictionary());
    }

    [Fact]
    public void Reads_a_sharded_checkpoint_through_its_index()
    {
        var (folder, tensors) = Sharded("sharded");
        using var checkpoint = SafetensorsCheckpoint.Open(folder);
        Assert.Equal(2, checkpoint.Shards.Count);
        Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), checkpoint.Names);
        foreach (var (name, expected) in tensors)
        {
            using var stored = checkpoint.ToTensor(name, dtype: null);
            Assert.True(Same(expected, stored), name);
        }
        Assert.EndsWith("model-00002-of-00002.safetensors", checkpoint.ShardOf("lm_head.weight").Path);
        Assert.Equal(SafetensorDType.BF16, checkpoint.Info("lm_head.weight").DType);
        var all = checkpoint.ToTensors(include: n => n.StartsWith("model.layers", StringComparison.Ordinal));
        Assert.Equal(2, all.Count);
        Assert.Contains("has no tensor 'nope'", Assert.Throws<KeyNotFoundException>(() => checkpoint.ToTensor("nope")).Message);
        // The index file itself and a single file open too.
        using (var viaIndex = SafetensorsCheckpoint.Open(Path.Combine(folder, SafetensorsCheckpoint.IndexFileName)))
            Assert.Equal(4, viaIndex.Names.Count);
        using (var single = SafetensorsCheckpoint.Open(Path.Combine(folder, "model-00001-of-00002.safetensors")))
            Assert.Null(single.IndexPath);
    }

    [Fact]
    public void Bad_sharded_checkpoints_fail_with_a_message_naming_the_file_and_tensor()
    {
        var (missing, _) = Sharded("missing-shard", map => map["model.layers.1.q.weight"] = "model-00003-of-00003.safetensors");
        var e1 = Assert.Throws<FileNotFoundException>(() => SafetensorsCheckpoint.Open(missing));
        Assert.Contains("model-00003-of-00003.safetensors", e1.Message);
        Assert.Contains("model.layers.1.q.weight", e1.Message);

        var (absent, _) = Sharded("absent-tensor", map => map["model.layers.2.q.weight"] = "model-00002-of-00002.safetensors");
        var e2 = Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(absent));
        Assert.Contains("'model.layers.2.q.weight'", e2.Message);
        Assert.Contains("model-00002-of-00002.safetensors", e2.Message);

        var (duplicate, _) = Sharded("duplicate", extraInShard2: new() { ["model.embed.weight"] = zeros(10, 4) });
        var e3 = Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(duplicate));
        Assert.True(e3.Message.Contains("'model.embed.weight' is stored in two shards"), e3.Message);
        Assert.Contains("model-00001-of-00002.safetensors", e3.Message);
        Assert.Contains("model-00002-of-00002.safetensors", e3.Message);

        var (unlisted, _) = Sharded("unlisted", extraInShard2: new() { ["stray.weight"] = zeros(2) });
        Assert.Contains("'stray.weight', which", Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(unlisted)).Message);

        var (escape, _) = Sharded("escape", map => map["lm_head.weight"] = "../model-00002-of-00002.safetensors");
        Assert.Contains("not a file name in the index's folder", Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(escape)).Message);

        string badJson = PathOf("bad-json");
        Directory.CreateDirectory(badJson);
        File.WriteAllText(Path.Combine(badJson, SafetensorsCheckpoint.IndexFileName), "{\"weight_map\": [1]}");
        Assert.Contains("no 'weight_map' object", Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(badJson)).Message);
        File.WriteAllText(Path.Combine(badJson, SafetensorsCheckpoint.IndexFileName), "{\"weight_map\": {\"a\": 3}}");
        Assert.Contains("weight_map entry 'a'", Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(badJson)).Message);
        File.WriteAllText(Path.Combine(badJson, SafetensorsCheckpoint.IndexFileName), "{\"weight_map\": ");
        Assert.Contains("not valid JSON", Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(badJson)).Message);

        Assert.Throws<FileNotFoundException>(() => SafetensorsCheckpoint.Open(PathOf("nowhere")));
    }

    [Fact]
    public async Task Spectrum_command_reads_a_sharded_base_with_an_adapter_saved_by_the_writer()
    {
        var (folder, tensors) = Sharded("cmd-sharded");
        manual_seed(8);
        string adapter = PathOf("cmd-adapter");
        PeftAdapterWriter.Save(adapter, [new PeftLoraPair("model.layers.1.q", randn(1, 4), 30 * randn(4, 1))], alpha: 2, useRsLora: false);
        var host = new TestHost();
        await CommandCatalog.InvokeAsync($"#!lora-spectrum --base {folder} --adapter {adapter} --name sh", host);
        var result = Assert.IsType<ModelSpectrum>(host.Variables["sh"]);
        var layer = Assert.Single(result.Layers);
        Assert.Equal("model.layers.1.q.weight", layer.Name);
        Assert.Contains("model.layers.1.q.weight", tensors.Keys);
    }
}
