using ScalingInteractive.Checkpoints;
using System.Collections;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;

/// <summary>
/// Loads the weight matrices of a model, by name, from whatever holds them: a TorchSharp module, a dictionary of
/// tensors, or a .safetensors file or folder; optionally merged with a PEFT LoRA adapter. This is what
/// <c>#!lora-spectrum</c> uses for <c>--base</c>, <c>--tuned</c> and <c>--adapter</c>; dispose the returned tensors
/// (a <c>torch.NewDisposeScope()</c> around the call does it).
/// </summary>
public static class ModelWeights
{
    /// <summary>
    /// The weights of <paramref name="source"/>: an <see cref="nn.Module"/> (detached views of its parameters), a dictionary of
    /// name to <see cref="Tensor"/> (<c>IReadOnlyDictionary</c> or any <c>IDictionary</c>), or a <see cref="string"/> path of a
    /// .safetensors file or of a folder of them (adapter_*.safetensors skipped). From files only 2-D tensors whose name matches
    /// <paramref name="filter"/> are read.
    /// </summary>
    /// <param name="source">Module, dictionary or path.</param>
    /// <param name="filter">Regular expression on weight names for files (null: all 2-D weights).</param>
    /// <param name="device">Device of tensors read from files (null: CPU).</param>
    /// <exception cref="ArgumentException">The source is of another type, or a dictionary holds something else than tensors.</exception>
    /// <exception cref="FileNotFoundException">A path that does not exist.</exception>
    public static Dictionary<string, Tensor> From(object source, string? filter = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        switch (source)
        {
            case nn.Module module:
                return SpectrumAnalysis.Weights(module);
            case IReadOnlyDictionary<string, Tensor> dict:
                return dict.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            case IDictionary dict:
                var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                foreach (DictionaryEntry e in dict)
                    if (e.Key is string k && e.Value is Tensor t) result[k] = t;
                    else throw new ArgumentException($"The dictionary must map weight names (string) to TorchSharp tensors; it holds {e.Key?.GetType().Name} -> {e.Value?.GetType().Name}.", nameof(source));
                return result;
            case string path:
                return Load(path, filter, device);
            default:
                throw new ArgumentException($"A {source.GetType().Name} holds no weights ModelWeights can read; use a TorchSharp module, a dictionary of name to tensor, or a .safetensors path.", nameof(source));
        }
    }

    /// <summary>
    /// Reads the 2-D tensors of a .safetensors file, of every .safetensors file of a folder (PEFT adapter_*.safetensors files
    /// are skipped), or of a Hugging Face sharded checkpoint (a folder with <c>model.safetensors.index.json</c>, or that
    /// index file) whose names match <paramref name="filter"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The path does not exist or the folder holds no .safetensors files.</exception>
    public static Dictionary<string, Tensor> Load(string path, string? filter = null, Device? device = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var regex = string.IsNullOrWhiteSpace(filter) ? null : new Regex(filter);
        // A sharded Hugging Face checkpoint (model.safetensors.index.json + shards) is read through its index, which is
        // checked against the shards.
        bool indexed = Directory.Exists(path)
            ? Directory.GetFiles(path, "*.safetensors.index.json").Length > 0
            : path.EndsWith(".json", StringComparison.OrdinalIgnoreCase);
        if (indexed)
        {
            using var checkpoint = SafetensorsCheckpoint.Open(path);
            var sharded = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var name in checkpoint.Names.Where(n => checkpoint.Info(n).Shape.Length == 2 && (regex?.IsMatch(n) ?? true)))
                sharded[name] = checkpoint.ToTensor(name, device ?? CPU);
            return sharded;
        }
        string[] files;
        if (Directory.Exists(path))
        {
            files = Directory.GetFiles(path, "*.safetensors").Where(f => !Path.GetFileName(f).StartsWith("adapter_", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
            if (files.Length == 0) throw new FileNotFoundException($"The folder '{path}' holds no .safetensors files.", path);
        }
        else if (File.Exists(path)) files = [path];
        else throw new FileNotFoundException($"'{path}' is neither a .safetensors file nor a folder of them.", path);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            using var file = SafetensorsFile.Open(f);
            foreach (var t in file.Tensors.Where(t => t.Shape.Length == 2 && (regex?.IsMatch(t.Name) ?? true)))
                result[t.Name] = file.ToTensor(t.Name, device ?? CPU);
        }
        return result;
    }

    /// <summary>
    /// base + adapter: the merged weights W0 + scaling * B A of the modules the adapter changes, keyed by the base weight
    /// name (only those; the other weights are unchanged). <paramref name="adapter"/> is a <see cref="PeftAdapter"/> or the
    /// path of a PEFT adapter folder (adapter_model.safetensors + adapter_config.json).
    /// </summary>
    /// <exception cref="InvalidDataException">An adapted module has no base weight or a different shape.</exception>
    public static Dictionary<string, Tensor> WithAdapter(IReadOnlyDictionary<string, Tensor> baseWeights, object adapter, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(baseWeights);
        switch (adapter)
        {
            case PeftAdapter open:
                return open.MergeInto(baseWeights, device);
            case string path:
                using (var opened = PeftAdapter.Open(path)) return opened.MergeInto(baseWeights, device);
            default:
                throw new ArgumentException($"A {adapter?.GetType().Name ?? "null"} is not an adapter; use a PeftAdapter or the path of a PEFT adapter folder.", nameof(adapter));
        }
    }

    /// <summary>
    /// The two sides of a base vs fine-tuned comparison. The base comes from <paramref name="baseModel"/>; the tuned side from
    /// <paramref name="tuned"/>, from base + <paramref name="adapter"/>, or from <paramref name="tuned"/> with the adapter merged
    /// on top of its matrices. With an adapter only the adapted matrices are returned on the tuned side (the others did not
    /// change). Sources are what <see cref="From"/> accepts; the adapter what <see cref="WithAdapter"/> accepts.
    /// </summary>
    /// <exception cref="ArgumentException">Neither <paramref name="tuned"/> nor <paramref name="adapter"/> is given.</exception>
    public static (Dictionary<string, Tensor> Base, Dictionary<string, Tensor> Tuned) Pair(object baseModel, object? tuned, object? adapter = null,
        string? filter = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        if (tuned is null && adapter is null) throw new ArgumentException("Give the fine-tuned model, a PEFT adapter, or both.", nameof(tuned));
        var baseWeights = From(baseModel, filter, device);
        if (adapter is null) return (baseWeights, From(tuned!, filter, device));
        var merged = WithAdapter(baseWeights, adapter, device);
        if (tuned is null) return (baseWeights, merged);
        var tunedWeights = From(tuned, filter, device);
        foreach (var (k, v) in merged) tunedWeights[k] = v;
        // Only the adapted matrices changed: compare those.
        return (baseWeights, tunedWeights.Where(kv => merged.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
    }
}
