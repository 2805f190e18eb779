using System.Collections;
using System.Collections.Immutable;
using ScalingInteractive.Commands;
using ScalingInteractive.Hosting;
using ScalingInteractive.Proxies;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;

/// <summary>
/// <c>#!lora-spectrum</c>: intruder dimensions and spectra of a fine-tuned model against its base. Each side is a C#
/// variable (a TorchSharp module or a dictionary of weight tensors) or a safetensors file or folder; with
/// <c>--adapter</c> the tuned side is base + a PEFT LoRA adapter.
/// </summary>
public sealed class LoraSpectrumCommand : MagicCommand
{
    /// <inheritdoc />
    public override string Name => "#!lora-spectrum";

    /// <inheritdoc />
    public override string Description =>
        "Compares a fine-tuned model with its base (Shuttleworth et al. 2024): intruder dimensions (top-k singular vectors of W with max |cos| < epsilon " +
        "against all singular vectors of W0), counts over an epsilon sweep, similarity heat maps and singular-value spectra. Models are C# variables " +
        "(TorchSharp module or dictionary of tensors) or safetensors files/folders; --adapter adds a PEFT LoRA adapter to the base.";

    /// <inheritdoc />
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        new("--base", typeof(string), "Pre-trained model: variable name, or path of a .safetensors file or a folder of them.") { Required = true, AllowImplicitName = true },
        new("--tuned", typeof(string), "Fine-tuned model (variable or path); omit with --adapter to compare base vs base + adapter."),
        new("--adapter", typeof(string), "PEFT LoRA adapter: folder with adapter_model.safetensors and adapter_config.json."),
        new("--top-k", typeof(int), "Top singular vectors of W examined (paper: 10).") { Default = 10, Minimum = 1, Maximum = 100000 },
        new("--epsilon", typeof(double[]), "Cosine thresholds of the sweep; the headline is 0.5 when listed, else the first.") { Default = new[] { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 }, Minimum = 1e-9, Maximum = 1 },
        new("--layers", typeof(string), "Regular expression selecting weight names (e.g. 'attn|mlp'); default: every 2-D weight."),
        new("--side", typeof(string), "Singular vectors compared: left (paper) or right.") { Default = "left", AllowedValues = ["left", "right"] },
        new("--device", typeof(string), "auto, cpu, cuda or cuda:N.") { Default = "auto" },
        new("--name", typeof(string), "Label of the comparison and name of a variable that receives the result."),
    ];

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        string baseSpec = arguments.Get<string>("--base");
        string? tunedSpec = arguments.Get<string>("--tuned");
        string? adapterPath = arguments.Get<string>("--adapter");
        if (tunedSpec is null && adapterPath is null)
            throw new CommandException("#!lora-spectrum needs --tuned (a variable or safetensors path) or --adapter (a PEFT adapter folder) to compare with --base.");
        var epsilons = arguments.Get<double[]>("--epsilon");
        if (epsilons.Length == 0) throw new CommandException("--epsilon must list at least one threshold in (0, 1], e.g. [0.5].");
        var options = new IntruderOptions
        {
            TopK = arguments.Get<int>("--top-k"),
            EpsilonSweep = epsilons,
            Epsilon = epsilons.Contains(0.5) ? 0.5 : epsilons[0],
            Side = arguments.Get<string>("--side").Equals("right", StringComparison.OrdinalIgnoreCase) ? SingularSide.Right : SingularSide.Left,
        };
        string? filter = arguments.Get<string>("--layers");
        string? name = arguments.Get<string>("--name");
        var device = TorchRuntime.ResolveDevice(arguments.Get<string>("--device"));
        var progress = host.CreateProgress("#!lora-spectrum");
        var result = await Task.Run(() =>
        {
            using var scope = NewDisposeScope();
            var baseWeights = Resolve(baseSpec, "--base", host, filter, device);
            Dictionary<string, Tensor> tuned;
            if (adapterPath is not null)
            {
                using var adapter = PeftAdapter.Open(adapterPath);
                var merged = adapter.MergeInto(baseWeights, device);
                tuned = tunedSpec is null ? merged : Resolve(tunedSpec, "--tuned", host, filter, device);
                if (tunedSpec is not null) foreach (var (k, v) in merged) tuned[k] = v;
                // Only the adapted matrices changed: compare those.
                tuned = tuned.Where(kv => merged.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            }
            else tuned = Resolve(tunedSpec!, "--tuned", host, filter, device);
            return SpectrumAnalysis.Compare(name ?? $"{Short(baseSpec)} vs {Short(tunedSpec ?? "adapter " + adapterPath)}", baseWeights, tuned, options, filter, device,
                (done, total, layer) => progress.Report(done, $"{done}/{total}: {layer}"), host.CancellationToken);
        }, host.CancellationToken);
        progress.Complete($"{result.Layers.Count} matrices, {result.TotalIntruders} intruder dimensions");
        host.Display(result);
        if (name is not null) await host.SetVariableAsync(name, result, typeof(ModelSpectrum));
    }

    private static string Short(string spec) => spec.Length > 40 ? "..." + spec[^37..] : spec;

    /// <summary>
    /// Resolves a model given as a variable name (TorchSharp module, dictionary of tensors, or a string holding a path)
    /// or a safetensors path; only 2-D tensors matching the filter are loaded.
    /// </summary>
    internal static Dictionary<string, Tensor> Resolve(string spec, string parameter, ICommandHost host, string? filter, Device device)
    {
        var regex = string.IsNullOrWhiteSpace(filter) ? null : new System.Text.RegularExpressions.Regex(filter);
        if (host.TryGetVariable(spec, out object? value) && value is not null)
        {
            switch (value)
            {
                case nn.Module module:
                    return SpectrumAnalysis.Weights(module);
                case IReadOnlyDictionary<string, Tensor> dict:
                    return dict.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
                case IDictionary dict:
                    var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                    foreach (DictionaryEntry e in dict)
                        if (e.Key is string k && e.Value is Tensor t) result[k] = t;
                        else throw new CommandException($"{parameter} '{spec}': the dictionary must map weight names (string) to TorchSharp tensors.");
                    return result;
                case string path:
                    return FromPath(path, parameter, regex, device);
                default:
                    throw new CommandException($"{parameter} '{spec}' is a {value.GetType().Name}; expected a TorchSharp module, a dictionary of name to tensor, or a safetensors path.");
            }
        }
        if (File.Exists(spec) || Directory.Exists(spec)) return FromPath(spec, parameter, regex, device);
        throw new CommandException($"{parameter} '{spec}' is neither a notebook variable nor an existing safetensors file or folder.");
    }

    private static Dictionary<string, Tensor> FromPath(string path, string parameter, System.Text.RegularExpressions.Regex? filter, Device device)
    {
        // A sharded Hugging Face checkpoint (model.safetensors.index.json + shards) is read through its index.
        bool indexed = Directory.Exists(path)
            ? Directory.GetFiles(path, "*.safetensors.index.json").Length > 0
            : path.EndsWith(".json", StringComparison.OrdinalIgnoreCase);
        if (indexed)
        {
            using var checkpoint = SafetensorsCheckpoint.Open(path);
            var sharded = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var name in checkpoint.Names.Where(n => checkpoint.Info(n).Shape.Length == 2 && (filter?.IsMatch(n) ?? true)))
                sharded[name] = checkpoint.ToTensor(name, device);
            return sharded;
        }
        var files = Directory.Exists(path)
            ? Directory.GetFiles(path, "*.safetensors").Where(f => !Path.GetFileName(f).StartsWith("adapter_", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray()
            : [path];
        if (files.Length == 0) throw new CommandException($"{parameter} folder '{path}' holds no .safetensors files.");
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            using var file = SafetensorsFile.Open(f);
            foreach (var t in file.Tensors.Where(t => t.Shape.Length == 2 && (filter?.IsMatch(t.Name) ?? true)))
                result[t.Name] = file.ToTensor(t.Name, device); // disposed with the caller's scope
        }
        return result;
    }
}

/// <summary><c>#!lora-experiment</c>: the full-vs-LoRA experiment at proxy scale (see <see cref="LoraExperiment"/>), resumable through --store.</summary>
public sealed class LoraExperimentCommand : MagicCommand
{
    /// <inheritdoc />
    public override string Name => "#!lora-experiment";

    /// <inheritdoc />
    public override string Description =>
        "Pre-trains a proxy transformer on the synthetic grammar (A), fine-tunes it on tiny Shakespeare (B) with full fine-tuning and LoRA of several ranks " +
        "(with and without rsLoRA) at learning rates matched on target loss, and reports target loss, forgetting on A, intruder dimensions, the lambda " +
        "mitigation and the task sequence B -> C (reversed lines) -> D (upper case). Runs are appended to --store and skipped when it is reopened.";

    /// <inheritdoc />
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        new("--store", typeof(string), "Run store (JSON Lines); the pre-trained weights are kept next to it. Omit to keep results in memory only."),
        new("--data", typeof(string), "Path of tinyshakespeare.txt (default: the notebook data folder)."),
        new("--ranks", typeof(int[]), "LoRA ranks.") { Default = new[] { 1, 4, 8, 16, 64 }, Minimum = 1, Maximum = 4096 },
        new("--no-rslora", typeof(bool), "Skip the rank-stabilised runs."),
        new("--width", typeof(int), "Model width.") { Default = 64, Minimum = 8, Maximum = 4096 },
        new("--depth", typeof(int), "Transformer blocks.") { Default = 2, Minimum = 1, Maximum = 64 },
        new("--pretrain-steps", typeof(int), "Pre-training steps on A.") { Default = 1500, Minimum = 1 },
        new("--steps", typeof(int), "Fine-tuning steps on B.") { Default = 400, Minimum = 1 },
        new("--sequential-steps", typeof(int), "Steps per task of B -> C -> D (0 skips the sequence).") { Default = 300, Minimum = 0 },
        new("--sequential-ranks", typeof(int[]), "LoRA ranks trained on the sequence (full fine-tuning always is).") { Default = new[] { 1, 8, 64 }, Minimum = 1 },
        new("--full-lrs", typeof(double[]), "Learning rates for full fine-tuning.") { Default = new[] { 1e-4, 3e-4 }, Minimum = 1e-8, Maximum = 10 },
        new("--lora-lrs", typeof(double[]), "Learning rates for LoRA.") { Default = new[] { 3e-4, 1e-3, 3e-3 }, Minimum = 1e-8, Maximum = 10 },
        new("--alpha", typeof(double), "LoRA alpha (default 2r, as Shuttleworth et al.).") { Minimum = 1e-6 },
        new("--batch", typeof(int), "Sequences per batch.") { Default = 16, Minimum = 1 },
        new("--top-k", typeof(int), "Top singular vectors examined.") { Default = 10, Minimum = 1 },
        new("--epsilon", typeof(double), "Headline cosine threshold.") { Default = 0.5, Minimum = 1e-9, Maximum = 1 },
        new("--lambda", typeof(double), "Mitigation: fraction of each intruder's singular value kept.") { Default = 0.75, Minimum = 0, Maximum = 1 },
        new("--seed", typeof(long), "Seed.") { Default = 0L },
        new("--device", typeof(string), "auto, cpu, cuda or cuda:N.") { Default = "auto" },
        new("--name", typeof(string), "Variable that receives the result."),
    ];

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        var device = TorchRuntime.ResolveDevice(arguments.Get<string>("--device"));
        int width = arguments.Get<int>("--width");
        var options = new LoraExperimentOptions
        {
            Model = new ProxyModelConfig { Width = width, Depth = arguments.Get<int>("--depth"), Heads = Math.Max(1, width / 16), ContextLength = 64 },
            Ranks = arguments.Get<int[]>("--ranks"),
            IncludeRsLora = !arguments.Get<bool>("--no-rslora"),
            PretrainSteps = arguments.Get<int>("--pretrain-steps"),
            FineTuneSteps = arguments.Get<int>("--steps"),
            SequentialSteps = arguments.Get<int>("--sequential-steps"),
            SequentialRanks = arguments.Get<int[]>("--sequential-ranks"),
            FullLearningRates = arguments.Get<double[]>("--full-lrs"),
            LoraLearningRates = arguments.Get<double[]>("--lora-lrs"),
            BatchSize = arguments.Get<int>("--batch"),
            Alpha = arguments.IsGiven("--alpha") ? arguments.Get<double>("--alpha") : null,
            Intruders = new IntruderOptions { TopK = arguments.Get<int>("--top-k"), Epsilon = arguments.Get<double>("--epsilon") },
            MitigationLambda = arguments.Get<double>("--lambda"),
            Seed = arguments.Get<long>("--seed"),
        };
        try { options.Validate(); }
        catch (ArgumentException e) { throw new CommandException("#!lora-experiment: " + e.Message); }
        string data = arguments.Get<string>("--data") ?? NotebookSession.DataFile("tinyshakespeare.txt");
        if (!File.Exists(data)) throw new FileNotFoundException($"--data '{data}' does not exist; give the path of tinyshakespeare.txt.", data);
        var corpora = LoraExperimentCorpora.Default(data);
        IProgressSink? sink = null;
        var result = await Task.Run(() => LoraExperiment.Run(options, corpora, device, arguments.Get<string>("--store"),
            (done, total, status) => (sink ??= host.CreateProgress("#!lora-experiment", total)).Report(done, status), host.CancellationToken), host.CancellationToken);
        sink?.Complete($"{result.Runs.Count} runs");
        host.Display(result);
        if (arguments.Get<string>("--name") is { } name) await host.SetVariableAsync(name, result, typeof(LoraExperimentResult));
    }
}
