using ScalingInteractive.Checkpoints;
using ScalingInteractive.Core;
using System.Text.Json;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;

/// <summary>The fields of a PEFT <c>adapter_config.json</c> that define the merged update.</summary>
/// <param name="Rank">r.</param>
/// <param name="Alpha">lora_alpha.</param>
/// <param name="UseRsLora">use_rslora: scale alpha / sqrt(r) instead of alpha / r.</param>
/// <param name="TargetModules">target_modules (names or one regular expression).</param>
/// <param name="FanInFanOut">fan_in_fan_out (GPT-2 Conv1D layers store the weight transposed).</param>
/// <param name="RankPattern">rank_pattern: per-module ranks (the tensors' shapes are authoritative anyway).</param>
/// <param name="AlphaPattern">alpha_pattern: per-module alphas, matched against the end of module names.</param>
public sealed record PeftAdapterConfig(int Rank, double Alpha, bool UseRsLora, IReadOnlyList<string> TargetModules, bool FanInFanOut,
    IReadOnlyDictionary<string, int> RankPattern, IReadOnlyDictionary<string, double> AlphaPattern)
{
    /// <summary>Reads and validates <c>adapter_config.json</c>; throws <see cref="InvalidDataException"/> naming the bad field.</summary>
    public static PeftAdapterConfig Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"PEFT adapter config '{path}' does not exist (expected adapter_config.json next to adapter_model.safetensors).", path);
        var info = new FileInfo(path);
        if (info.Length > 10_000_000) throw new InvalidDataException($"'{path}' is {info.Length} bytes; an adapter config is a small JSON file.");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new InvalidDataException($"'{path}' is not valid JSON ({e.Message.Split(" Path:")[0]}).", e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"'{path}' must hold a JSON object.");
            if (!root.TryGetProperty("r", out var r) || r.ValueKind != JsonValueKind.Number || !r.TryGetInt32(out int rank) || rank < 1)
                throw new InvalidDataException($"'{path}': 'r' must be a positive integer.");
            if (!root.TryGetProperty("lora_alpha", out var a) || a.ValueKind != JsonValueKind.Number || !(a.GetDouble() > 0))
                throw new InvalidDataException($"'{path}': 'lora_alpha' must be a positive number.");
            bool rs = root.TryGetProperty("use_rslora", out var rsElement) && rsElement.ValueKind == JsonValueKind.True;
            bool fan = root.TryGetProperty("fan_in_fan_out", out var fanElement) && fanElement.ValueKind == JsonValueKind.True;
            var targets = new List<string>();
            if (root.TryGetProperty("target_modules", out var t))
            {
                if (t.ValueKind == JsonValueKind.String) targets.Add(t.GetString()!);
                else if (t.ValueKind == JsonValueKind.Array) targets.AddRange(t.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!));
            }
            var rankPattern = new Dictionary<string, int>(StringComparer.Ordinal);
            if (root.TryGetProperty("rank_pattern", out var rp) && rp.ValueKind == JsonValueKind.Object)
                foreach (var p in rp.EnumerateObject())
                    if (p.Value.TryGetInt32(out int v)) rankPattern[p.Name] = v;
            var alphaPattern = new Dictionary<string, double>(StringComparer.Ordinal);
            if (root.TryGetProperty("alpha_pattern", out var ap) && ap.ValueKind == JsonValueKind.Object)
                foreach (var p in ap.EnumerateObject())
                    if (p.Value.ValueKind == JsonValueKind.Number) alphaPattern[p.Name] = p.Value.GetDouble();
            return new PeftAdapterConfig(rank, a.GetDouble(), rs, targets, fan, rankPattern, alphaPattern);
        }
    }

    /// <summary>The scaling of one module with rank <paramref name="rank"/>: alpha / r or alpha / sqrt(r).</summary>
    public double ScalingFor(string module, int rank)
    {
        double alpha = Alpha;
        foreach (var (pattern, value) in AlphaPattern)
            if (module == pattern || module.EndsWith("." + pattern, StringComparison.Ordinal) || SafeRegexMatch(module, pattern)) { alpha = value; break; }
        return UseRsLora ? alpha / Math.Sqrt(rank) : alpha / rank;
    }

    private static bool SafeRegexMatch(string input, string pattern)
    {
        try { return Regex.IsMatch(input, "(^|\\.)" + pattern + "$", RegexOptions.None, TimeSpan.FromMilliseconds(100)); }
        catch (ArgumentException) { return false; }
        catch (RegexMatchTimeoutException) { return false; }
    }
}

/// <summary>One adapted module of a PEFT adapter.</summary>
/// <param name="Module">Module path as in the base model, e.g. <c>model.layers.0.self_attn.q_proj</c>.</param>
/// <param name="ATensor">Name of lora_A in the adapter file ([r, in]).</param>
/// <param name="BTensor">Name of lora_B in the adapter file ([out, r]).</param>
/// <param name="Rank">r of this module.</param>
/// <param name="Scaling">The factor applied to B A.</param>
public sealed record PeftLoraModule(string Module, string ATensor, string BTensor, int Rank, double Scaling)
{
    /// <summary>The base model's weight name for this module.</summary>
    public string WeightName => Module + ".weight";
}

/// <summary>
/// A PEFT LoRA adapter (<c>adapter_model.safetensors</c> + <c>adapter_config.json</c>) read without Python: it yields
/// the merged updates scaling * B A per target matrix, to compare a base checkpoint with base + adapter.
/// </summary>
public sealed class PeftAdapter : IDisposable
{
    private static readonly Regex LoraName = new(@"^(?:base_model\.model\.)?(?<module>.+)\.lora_(?<ab>[AB])(?:\.(?<adapter>[^.]+))?\.weight$", RegexOptions.Compiled);

    private PeftAdapter(SafetensorsFile file, PeftAdapterConfig config, IReadOnlyList<PeftLoraModule> modules)
    {
        File = file;
        Config = config;
        Modules = modules;
    }

    /// <summary>The adapter weights.</summary>
    public SafetensorsFile File { get; }

    /// <summary>The adapter configuration.</summary>
    public PeftAdapterConfig Config { get; }

    /// <summary>The adapted modules, in file order.</summary>
    public IReadOnlyList<PeftLoraModule> Modules { get; }

    /// <summary>
    /// Opens an adapter from its folder (holding adapter_model.safetensors and adapter_config.json) or from the path of
    /// its .safetensors file (the config is read from the same folder). Every lora_A needs its lora_B with a matching rank.
    /// </summary>
    public static PeftAdapter Open(string path)
    {
        string weights = Directory.Exists(path) ? Path.Combine(path, "adapter_model.safetensors") : path;
        string folder = Path.GetDirectoryName(Path.GetFullPath(weights))!;
        var config = PeftAdapterConfig.Read(Path.Combine(folder, "adapter_config.json"));
        var file = SafetensorsFile.Open(weights);
        try
        {
            var pairs = new Dictionary<string, (string? A, string? B)>(StringComparer.Ordinal);
            var order = new List<string>();
            foreach (var t in file.Tensors)
            {
                var m = LoraName.Match(t.Name);
                if (!m.Success) continue;
                string module = m.Groups["module"].Value;
                if (!pairs.TryGetValue(module, out var pair)) { pair = (null, null); order.Add(module); }
                pairs[module] = m.Groups["ab"].Value == "A" ? (t.Name, pair.B) : (pair.A, t.Name);
            }
            if (order.Count == 0)
                throw new InvalidDataException($"'{weights}' holds no LoRA tensors (names like base_model.model.<module>.lora_A.weight); it holds {string.Join(", ", file.Names.Take(5))}.");
            var modules = new List<PeftLoraModule>();
            foreach (string module in order)
            {
                var (a, b) = pairs[module];
                if (a is null || b is null)
                    throw new InvalidDataException($"'{weights}': module '{module}' has lora_{(a is null ? "B" : "A")} but no lora_{(a is null ? "A" : "B")}.");
                var ia = file.Info(a);
                var ib = file.Info(b);
                if (ia.Shape.Length != 2 || ib.Shape.Length != 2 || ia.Shape[0] != ib.Shape[1])
                    throw new InvalidDataException($"'{weights}': module '{module}' has lora_A [{string.Join(", ", ia.Shape)}] and lora_B [{string.Join(", ", ib.Shape)}]; expected A [r, in] and B [out, r] with the same r.");
                int rank = (int)ia.Shape[0];
                modules.Add(new PeftLoraModule(module, a, b, rank, config.ScalingFor(module, rank)));
            }
            return new PeftAdapter(file, config, modules);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The merged update scaling * B A of one module (transposed back when fan_in_fan_out).</summary>
    public Tensor Delta(PeftLoraModule module, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var a = File.ToTensor(module.ATensor, device);
        var b = File.ToTensor(module.BTensor, device);
        var delta = b.matmul(a).Times(module.Scaling);
        if (Config.FanInFanOut) delta = delta.mT.contiguous();
        return delta.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Finds the base weight of a module among <paramref name="baseNames"/>: the exact name <c>module.weight</c>, else the
    /// one name ending with it (checkpoints differ in prefixes such as <c>model.</c>). Null when none or several match.
    /// </summary>
    public static string? MatchBaseWeight(PeftLoraModule module, IReadOnlyCollection<string> baseNames)
    {
        if (baseNames.Contains(module.WeightName)) return module.WeightName;
        var candidates = baseNames.Where(n => n.EndsWith("." + module.WeightName, StringComparison.Ordinal) || module.WeightName.EndsWith("." + n, StringComparison.Ordinal)).ToList();
        return candidates.Count == 1 ? candidates[0] : null;
    }

    /// <summary>
    /// base + adapter: a dictionary with the merged weight W0 + scaling * B A for every adapted module, keyed by the
    /// base weight name. Throws <see cref="InvalidDataException"/> when a module has no base weight or the shapes differ.
    /// </summary>
    public Dictionary<string, Tensor> MergeInto(IReadOnlyDictionary<string, Tensor> baseWeights, Device? device = null)
    {
        var names = baseWeights.Keys.ToList();
        var merged = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var module in Modules)
        {
            string name = MatchBaseWeight(module, names)
                ?? throw new InvalidDataException($"The base model has no weight for adapter module '{module.Module}' (looked for '{module.WeightName}').");
            var w0 = baseWeights[name];
            using var delta = Delta(module, device ?? w0.device);
            if (!delta.shape.SequenceEqual(w0.shape))
                throw new InvalidDataException($"Adapter module '{module.Module}' gives an update of shape [{string.Join(", ", delta.shape)}] but the base weight '{name}' is [{string.Join(", ", w0.shape)}].");
            merged[name] = w0.to_type(ScalarType.Float32).to(delta.device).Plus(delta);
        }
        return merged;
    }

    /// <summary>Releases the mapped adapter file.</summary>
    public void Dispose() => File.Dispose();
}
