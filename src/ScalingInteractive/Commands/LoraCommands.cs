using System.Collections.Immutable;
using ScalingInteractive.Hosting;
using ScalingInteractive.Proxies;
using static TorchSharp.torch;
using ScalingInteractive.Runs;
using ScalingInteractive.Display;
using ScalingInteractive.Core;
using ScalingInteractive.LoraSpectra;
using ScalingInteractive.Sweeps;

namespace ScalingInteractive.Commands;

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
        new("--base", typeof(string), "Pre-trained model: the bare name of a C# variable (TorchSharp module or Dictionary<string, Tensor>) or the path of a .safetensors file or a folder of them.")
            { Required = true, AllowImplicitName = true, AcceptsVariable = true },
        new("--tuned", typeof(string), "Fine-tuned model, as --base; omit with --adapter to compare base vs base + adapter.") { AcceptsVariable = true },
        new("--adapter", typeof(string), "PEFT LoRA adapter: the bare name of a C# variable (PeftAdapter or a path) or a folder with adapter_model.safetensors and adapter_config.json.") { AcceptsVariable = true },
        SharedParameters.TopK,
        SharedParameters.Epsilon,
        SharedParameters.EpsilonSweep,
        new("--layers", typeof(string), "Regular expression selecting weight names (e.g. 'attn|mlp'); default: every 2-D weight."),
        new("--side", typeof(string), "Singular vectors compared: left (paper) or right.") { Default = "left", AllowedValues = ["left", "right"] },
        SharedParameters.Device,
        SharedParameters.Name("ModelSpectrum (also the comparison's label)"),
    ];

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        const string model = "a TorchSharp module, a Dictionary<string, Tensor> or a .safetensors file or folder";
        object baseModel = arguments.GetVariableOrPath("--base", host, model)!;
        object? tunedModel = arguments.GetVariableOrPath("--tuned", host, model);
        object? adapter = arguments.GetVariableOrPath("--adapter", host, "a PeftAdapter or a PEFT adapter folder");
        if (tunedModel is null && adapter is null)
            throw new CommandException("#!lora-spectrum needs --tuned (a variable or safetensors path) or --adapter (a PEFT adapter folder) to compare with --base.");
        var options = new IntruderOptions
        {
            TopK = arguments.Get<int>("--top-k"),
            Epsilon = arguments.Get<double>("--epsilon"),
            EpsilonSweep = arguments.Get<double[]>("--epsilon-sweep"),
            Side = arguments.Get<string>("--side").Equals("right", StringComparison.OrdinalIgnoreCase) ? SingularSide.Right : SingularSide.Left,
        };
        string? filter = arguments.Get<string>("--layers");
        string label = arguments.Get<string>("--name")
            ?? $"{Short(arguments.Get<string>("--base"))} vs {Short(arguments.Get<string>("--tuned") ?? "adapter " + arguments.Get<string>("--adapter"))}";
        var device = TorchRuntime.ResolveDevice(arguments.Get<string>("--device"));
        var progress = host.CreateProgress("#!lora-spectrum");
        var result = await Task.Run(() =>
        {
            using var scope = NewDisposeScope();
            var (baseWeights, tuned) = ModelWeights.Pair(baseModel, tunedModel, adapter, filter, device);
            return SpectrumAnalysis.Compare(label, baseWeights, tuned, options, filter, device,
                (done, total, layer) => progress.Report(done, $"{done}/{total}: {layer}"), host.CancellationToken);
        }, host.CancellationToken);
        progress.Complete($"{result.Layers.Count} matrices, {result.TotalIntruders} intruder dimensions");
        host.Display(result);
        if (arguments.Get<string>("--name") is { } name) await host.SetVariableAsync(name, result, typeof(ModelSpectrum));
    }

    private static string Short(string spec) => spec.Length > 40 ? "..." + spec[^37..] : spec;
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
        SharedParameters.Store with { Description = "Run-store file (JSON Lines): finished runs are appended and skipped when the command runs again; the pre-trained weights are kept beside it (STORE.checkpoints). Omit to keep results in memory only. As data for other processes or Slurm: a LoraExperimentSpec variable given to #!sweep-submit." },
        SharedParameters.DataDir with { Description = "Data folder with tinyshakespeare.txt (default: the notebook data folder, SCALING_INTERACTIVE_DATA)." },
        new("--ranks", typeof(int[]), "LoRA ranks.") { Default = new[] { 1, 4, 8, 16, 64 }, Minimum = 1, Maximum = 4096 },
        new("--no-rslora", typeof(bool), "Skip the rank-stabilised runs."),
        SharedParameters.Width,
        SharedParameters.Depth,
        SharedParameters.PretrainSteps with { Description = "Pre-training steps on the synthetic grammar (A).", Default = 1500, Minimum = 1 },
        SharedParameters.Steps with { Description = "Fine-tuning steps on B per run.", Default = 400 },
        new("--sequential-steps", typeof(int), "Steps per task of B -> C -> D (0 skips the sequence).") { Default = 300, Minimum = 0 },
        new("--sequential-ranks", typeof(int[]), "LoRA ranks trained on the sequence (full fine-tuning always is).") { Default = new[] { 1, 8, 64 }, Minimum = 1 },
        new("--full-lrs", typeof(double[]), "Learning rates for full fine-tuning.") { Default = new[] { 1e-4, 3e-4 }, Minimum = 1e-8, Maximum = 10 },
        new("--lora-lrs", typeof(double[]), "Learning rates for LoRA.") { Default = new[] { 3e-4, 1e-3, 3e-3 }, Minimum = 1e-8, Maximum = 10 },
        new("--alpha", typeof(double), "LoRA alpha (default 2r, as Shuttleworth et al.).") { Minimum = 1e-6 },
        SharedParameters.BatchSize with { Default = 16 },
        SharedParameters.TopK,
        SharedParameters.Epsilon,
        new("--lambda", typeof(double), "Mitigation: fraction of each intruder's singular value kept.") { Default = 0.75, Minimum = 0, Maximum = 1 },
        SharedParameters.Seed with { Description = "Seed of initialisation, LoRA A matrices and batch order." },
        SharedParameters.Device,
        SharedParameters.Name("LoraExperimentResult"),
    ];

    /// <summary>
    /// The sweep spec of a <c>#!lora-experiment</c> command line (the same settings, runs and keys as the command run
    /// locally), for <c>#!sweep-submit</c>, <see cref="SlurmSweeps.Submit"/> or the worker, e.g.
    /// <c>LoraExperimentCommand.ToSweepSpec("#!lora-experiment --ranks [1,8] --steps 100")</c>: pre-training is stage 0,
    /// the fine-tuning runs stage 1 and the task sequences at the selected rates stage 2. The spec names tiny
    /// Shakespeare by its path in --data-dir (default: the notebook data folder), which the cluster's nodes must see.
    /// </summary>
    public static SweepSpec ToSweepSpec(string commandLine)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(commandLine);
        var parsed = CommandLineParser.Parse(commandLine.TrimStart().StartsWith("#!", StringComparison.Ordinal) ? commandLine : "#!lora-experiment " + commandLine, _ => null);
        var command = CommandCatalog.Get(parsed.CommandName);
        if (command is not LoraExperimentCommand)
            throw new CommandException($"LoraExperimentCommand.ToSweepSpec takes a #!lora-experiment command line; got {command.Name}.");
        var arguments = CommandBinder.BindText(command, parsed.Arguments);
        var (options, data) = Bind(arguments);
        var experiment = new LoraExperimentSpec(arguments.Get<string>("--name") ?? "loraExperiment", options, LoraExperimentSources.Default(data));
        return SweepSpec.For(experiment, arguments.Get<string>("--device") ?? "cpu");
    }

    // The settings and the tiny Shakespeare path a command line asks for (the same for a local run and a spec).
    private static (LoraExperimentOptions Options, string ShakespearePath) Bind(CommandArguments arguments)
    {
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
            BatchSize = arguments.Get<int>("--batch-size"),
            Alpha = arguments.IsGiven("--alpha") ? arguments.Get<double>("--alpha") : null,
            Intruders = new IntruderOptions { TopK = arguments.Get<int>("--top-k"), Epsilon = arguments.Get<double>("--epsilon") },
            MitigationLambda = arguments.Get<double>("--lambda"),
            Seed = arguments.Get<int>("--seed"),
        };
        try { options.Validate(); }
        catch (ArgumentException e) { throw new CommandException("#!lora-experiment: " + e.Message); }
        string folder = arguments.Get<string>("--data-dir") ?? NotebookSession.DataDirectory;
        string data = Path.Combine(folder, TextCorpus.TinyShakespeareFile);
        if (!File.Exists(data))
            throw new FileNotFoundException($"#!lora-experiment: --data-dir '{folder}' holds no {TextCorpus.TinyShakespeareFile}; give the folder that holds it (or set SCALING_INTERACTIVE_DATA).", data);
        return (options, data);
    }

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        var device = TorchRuntime.ResolveDevice(arguments.Get<string>("--device"));
        var (options, data) = Bind(arguments);
        var corpora = LoraExperimentCorpora.Default(data);
        var sink = host.CreateProgress("#!lora-experiment", LoraExperiment.RunCount(options, corpora));
        var result = await Task.Run(() => LoraExperiment.Run(options, corpora, device, arguments.Get<string>("--store"), sink, host.CancellationToken), host.CancellationToken);
        sink.Complete($"{result.Runs.Count} runs");
        host.Display(result);
        if (arguments.Get<string>("--name") is { } name) await host.SetVariableAsync(name, result, typeof(LoraExperimentResult));
    }
}
