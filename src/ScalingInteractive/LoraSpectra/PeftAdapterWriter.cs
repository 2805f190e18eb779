using ScalingInteractive.Checkpoints;
using System.Text.Json;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;

/// <summary>One LoRA pair to save: the module it adapts, A [r, in] and B [out, r] (nn.Linear layout).</summary>
/// <param name="Module">Module name as the Python base model names it, e.g. <c>model.layers.0.self_attn.q_proj</c>.</param>
/// <param name="A">lora_A, shape [r, in].</param>
/// <param name="B">lora_B, shape [out, r].</param>
/// <param name="Alpha">This module's alpha when it differs from the adapter's (written to <c>alpha_pattern</c>); null for the adapter's alpha.</param>
public sealed record PeftLoraPair(string Module, Tensor A, Tensor B, double? Alpha = null);

/// <summary>Settings of a saved PEFT adapter that are not in the weights.</summary>
public sealed record PeftSaveOptions
{
    /// <summary><c>base_model_name_or_path</c>: the Hugging Face id or folder of the base model (PEFT loads it from there).</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary><c>task_type</c>, e.g. <c>CAUSAL_LM</c>; null writes null (PEFT then wraps the base model in a plain PeftModel).</summary>
    public string? TaskType { get; init; }

    /// <summary>Element type of the saved tensors: float32 (PEFT's default, it upcasts adapters), float16 or bfloat16.</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>
    /// Maps this library's module names to the Python model's (for example <c>n =&gt; "model." + n</c>); null keeps them.
    /// The saved key is <c>base_model.model.&lt;module&gt;.lora_A.weight</c>.
    /// </summary>
    public Func<string, string>? ModuleName { get; init; }

    /// <summary><c>lora_dropout</c> recorded in the config (training-time only; it does not change the weights).</summary>
    public double Dropout { get; init; }
}

/// <summary>
/// Saves LoRA A/B pairs as a PEFT adapter folder — <c>adapter_model.safetensors</c> and <c>adapter_config.json</c> —
/// that Python loads with <c>PeftModel.from_pretrained(base, folder)</c>, the inverse of <see cref="PeftAdapter.Open"/>.
/// </summary>
/// <remarks>
/// Matches huggingface/peft: file names from <c>src/peft/utils/constants.py</c> (SAFETENSORS_WEIGHTS_NAME,
/// CONFIG_NAME); keys as <c>get_peft_model_state_dict</c> in <c>src/peft/utils/save_and_load.py</c> returns them, the
/// PeftModel state-dict key with the adapter name removed (<c>base_model.model.&lt;module&gt;.lora_A.weight</c>);
/// safetensors metadata <c>{"format": "pt"}</c> as <c>PeftModel.save_pretrained</c> (<c>src/peft/peft_model.py</c>)
/// writes it, which also sets <c>inference_mode</c> true in the saved config; the config written as
/// <c>PeftConfigMixin.save_pretrained</c> (<c>src/peft/config.py</c>) does, <c>json.dumps(indent=2, sort_keys=True)</c>,
/// with the <c>LoraConfig</c> fields of <c>src/peft/tuners/lora/config.py</c>. Ranks that differ from the most common
/// one go to <c>rank_pattern</c> and per-module alphas to <c>alpha_pattern</c> (keys are module names, which PEFT's
/// <c>get_pattern_key</c> matches as <c>(.*\.)?(key)$</c>).
/// </remarks>
public static class PeftAdapterWriter
{
    /// <summary>File name of the weights (PEFT's SAFETENSORS_WEIGHTS_NAME).</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>File name of the config (PEFT's CONFIG_NAME).</summary>
    public const string ConfigFileName = "adapter_config.json";

    /// <summary>The saved key of a module's lora_A or lora_B (<paramref name="ab"/> is 'A' or 'B').</summary>
    public static string KeyOf(string module, char ab) => $"base_model.model.{module}.lora_{ab}.weight";

    /// <summary>
    /// Saves the current A and B of every target of <paramref name="attachment"/> with its r, alpha and rsLoRA setting
    /// (target_modules = the adapted module names).
    /// </summary>
    public static void Save(string folder, LoraAttachment attachment, PeftSaveOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(attachment);
        var pairs = attachment.Targets.Select(t => new PeftLoraPair(t.Name, t.A, t.B)).ToList();
        Save(folder, pairs, attachment.Options.EffectiveAlpha, attachment.Options.RankStabilized, options);
    }

    /// <summary>
    /// Saves any set of LoRA pairs with scaling <paramref name="alpha"/> / r (or / sqrt(r) with
    /// <paramref name="useRsLora"/>). Creates <paramref name="folder"/> if needed and overwrites the two files.
    /// Throws <see cref="ArgumentException"/> naming the module when a pair's shapes or name are unusable.
    /// </summary>
    public static void Save(string folder, IReadOnlyList<PeftLoraPair> pairs, double alpha, bool useRsLora, PeftSaveOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(pairs);
        options ??= new PeftSaveOptions();
        if (!(alpha > 0) || double.IsInfinity(alpha)) throw new ArgumentException($"LoRA alpha is {alpha}; it must be a positive finite number.", nameof(alpha));
        if (pairs.Count == 0) throw new ArgumentException("No LoRA pairs to save.", nameof(pairs));
        if (options.DType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new ArgumentException($"Adapter dtype {options.DType} is not one PEFT saves; use Float32, Float16 or BFloat16.", nameof(options));
        if (!(options.Dropout is >= 0 and < 1)) throw new ArgumentException($"LoRA dropout is {options.Dropout}; it must lie in [0, 1).", nameof(options));

        var modules = new List<(string Module, PeftLoraPair Pair, int Rank)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            string module = options.ModuleName?.Invoke(pair.Module) ?? pair.Module;
            if (string.IsNullOrWhiteSpace(module) || module.StartsWith('.') || module.EndsWith('.') || module.Any(char.IsWhiteSpace))
                throw new ArgumentException($"LoRA module name '{module}' is not a dotted module path.", nameof(pairs));
            if (!seen.Add(module)) throw new ArgumentException($"LoRA module '{module}' appears twice.", nameof(pairs));
            var (a, b) = (pair.A, pair.B);
            if (a.Dimensions != 2 || b.Dimensions != 2 || a.shape[0] != b.shape[1] || a.shape[0] < 1)
                throw new ArgumentException($"LoRA module '{module}': A is [{string.Join(", ", a.shape)}] and B [{string.Join(", ", b.shape)}]; expected A [r, in] and B [out, r] with the same r >= 1.", nameof(pairs));
            if (pair.Alpha is { } pa && (!(pa > 0) || double.IsInfinity(pa)))
                throw new ArgumentException($"LoRA module '{module}': alpha {pa} must be a positive finite number.", nameof(pairs));
            modules.Add((module, pair, checked((int)a.shape[0])));
        }

        // r: the most common rank (ties: the smallest); the others go to rank_pattern, as PEFT reads it.
        int r = modules.GroupBy(m => m.Rank).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        var rankPattern = modules.Where(m => m.Rank != r).ToDictionary(m => m.Module, m => m.Rank, StringComparer.Ordinal);
        var alphaPattern = modules.Where(m => m.Pair.Alpha is { } pa && pa != alpha).ToDictionary(m => m.Module, m => m.Pair.Alpha!.Value, StringComparer.Ordinal);

        Directory.CreateDirectory(folder);
        using (var scope = NewDisposeScope())
        {
            var tensors = new List<KeyValuePair<string, Tensor>>();
            foreach (var (module, pair, _) in modules)
            {
                // Same order as a PeftModel state dict: lora_A then lora_B of each module.
                tensors.Add(new(KeyOf(module, 'A'), pair.A.detach().to_type(options.DType).cpu().contiguous()));
                tensors.Add(new(KeyOf(module, 'B'), pair.B.detach().to_type(options.DType).cpu().contiguous()));
            }
            SafetensorsWriter.Write(Path.Combine(folder, WeightsFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }
        WriteConfig(Path.Combine(folder, ConfigFileName), modules.Select(m => m.Module).ToList(), r, alpha, useRsLora, rankPattern, alphaPattern, options);
    }

    private static void WriteConfig(string path, List<string> targets, int r, double alpha, bool useRsLora,
        Dictionary<string, int> rankPattern, Dictionary<string, double> alphaPattern, PeftSaveOptions options)
    {
        // Keys in ordinal order, as Python's sort_keys writes them; LoraConfig defaults for what this library has no notion of.
        var fields = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal)
        {
            ["alpha_pattern"] = w => { w.WriteStartObject(); foreach (var (k, v) in alphaPattern.OrderBy(p => p.Key, StringComparer.Ordinal)) WriteNumber(w, k, v); w.WriteEndObject(); },
            ["base_model_name_or_path"] = w => WriteStringOrNull(w, options.BaseModelNameOrPath),
            ["bias"] = w => w.WriteStringValue("none"),
            ["exclude_modules"] = w => w.WriteNullValue(),
            ["fan_in_fan_out"] = w => w.WriteBooleanValue(false), // A and B are saved in nn.Linear layout
            ["inference_mode"] = w => w.WriteBooleanValue(true), // PeftModel.save_pretrained sets it when saving
            ["init_lora_weights"] = w => w.WriteBooleanValue(true),
            ["layers_pattern"] = w => w.WriteNullValue(),
            ["layers_to_transform"] = w => w.WriteNullValue(),
            ["lora_alpha"] = w => WriteNumberValue(w, alpha),
            ["lora_dropout"] = w => w.WriteNumberValue(options.Dropout),
            ["modules_to_save"] = w => w.WriteNullValue(),
            ["peft_type"] = w => w.WriteStringValue("LORA"),
            ["r"] = w => w.WriteNumberValue(r),
            ["rank_pattern"] = w => { w.WriteStartObject(); foreach (var (k, v) in rankPattern.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteNumber(k, v); w.WriteEndObject(); },
            ["revision"] = w => w.WriteNullValue(),
            ["target_modules"] = w => { w.WriteStartArray(); foreach (var t in targets.Order(StringComparer.Ordinal)) w.WriteStringValue(t); w.WriteEndArray(); },
            ["task_type"] = w => WriteStringOrNull(w, options.TaskType),
            ["use_dora"] = w => w.WriteBooleanValue(false),
            ["use_rslora"] = w => w.WriteBooleanValue(useRsLora),
        };
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        foreach (var (name, write) in fields)
        {
            json.WritePropertyName(name);
            write(json);
        }
        json.WriteEndObject();
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string? value)
    {
        if (value is null) w.WriteNullValue();
        else w.WriteStringValue(value);
    }

    // Integral alphas are written as integers, as Python writes lora_alpha = 16.
    private static void WriteNumberValue(Utf8JsonWriter w, double value)
    {
        if (value == Math.Floor(value) && Math.Abs(value) < 1e15) w.WriteNumberValue((long)value);
        else w.WriteNumberValue(value);
    }

    private static void WriteNumber(Utf8JsonWriter w, string name, double value)
    {
        w.WritePropertyName(name);
        WriteNumberValue(w, value);
    }
}
