using System.Collections.Immutable;
using ScalingInteractive.Hosting;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Display;
using ScalingInteractive.Core;

using ScalingInteractive.Sweeps;

namespace ScalingInteractive.Commands;

/// <summary>Parameters and parsing shared by <c>#!proxy-train</c> and <c>#!proxy-sweep</c>.</summary>
internal static class ProxyCommandOptions
{
    public static readonly ImmutableArray<CommandParameter> Shared =
    [
        SharedParameters.Depth,
        new("--head-dim", typeof(int), "Head size; heads = width / head size.") { Default = 16, Minimum = 1 },
        new("--qk-layernorm", typeof(bool), "Layer-normalise queries and keys before the dot product."),
        new("--z-loss", typeof(bool), "Add 1e-4 * log(Z)^2 per token to the loss."),
        new("--warmup", typeof(int), "Linear warm-up steps.") { Default = 0, Minimum = 0 },
        new("--weight-decay", typeof(double), "Weight decay lambda (matrices and embeddings).") { Default = 0.0, Minimum = 0 },
        new("--independent-wd", typeof(bool), "Weight decay independent of the learning rate: theta -= s_t*(eta*u + lambda*theta)."),
        new("--mup-base-width", typeof(double), "Use muP with this base width (hidden init and LR scaled by width, attention 1/head_dim, output 1/m).") { Minimum = 1 },
        new("--schedule", typeof(string), "Learning-rate schedule.") { Default = "cosine", AllowedValues = ["cosine", "constant", "wsd", "linear"] },
        SharedParameters.Steps,
        SharedParameters.BatchSize,
        SharedParameters.SequenceLength,
        new("--log-every", typeof(int), "Record metrics every this many steps.") { Default = 10, Minimum = 1 },
        SharedParameters.Device,
        SharedParameters.Threads,
        SharedParameters.Corpus,
    ];

    public static ProxyModelConfig Model(CommandArguments a, int width) => new()
    {
        Width = width,
        Depth = a.Get<int>("--depth"),
        Heads = CheckedHeads(width, a.Get<int>("--head-dim")),
        QkLayerNorm = a.Get<bool>("--qk-layernorm"),
        MupBaseWidth = a["--mup-base-width"] is double b ? b : null,
        ContextLength = a.Get<int>("--seq-len"),
    };

    private static int CheckedHeads(int width, int headDim)
    {
        if (width <= 0) throw new CommandException($"Widths must be positive integers; got {width}.");
        if (width % headDim != 0) throw new CommandException($"Width {width} is not a multiple of --head-dim {headDim}: heads = width / head size must be an integer.");
        return width / headDim;
    }

    public static ProxyTrainingOptions Training(CommandArguments a, double learningRate, long seed) => new ProxyTrainingOptions
    {
        Steps = a.Get<int>("--steps"),
        BatchSize = a.Get<int>("--batch-size"),
        SequenceLength = a.Get<int>("--seq-len"),
        LearningRate = learningRate,
        MinLearningRate = Math.Min(1e-5, learningRate),
        WarmupSteps = a.Get<int>("--warmup"),
        WeightDecay = a.Get<double>("--weight-decay"),
        WeightDecayMode = a.Get<bool>("--independent-wd") ? WeightDecayMode.Independent : WeightDecayMode.Coupled,
        ZLoss = a.Get<bool>("--z-loss"),
        Schedule = ParseSchedule(a.Get<string>("--schedule")),
        LogEvery = a.Get<int>("--log-every"),
        Seed = seed,
    }.Validate();

    public static ScheduleShape ParseSchedule(string? name) => (name ?? "cosine").ToLowerInvariant() switch
    {
        "cosine" => ScheduleShape.Cosine,
        "constant" => ScheduleShape.Constant,
        "wsd" or "warmup-stable-decay" => ScheduleShape.WarmupStableDecay,
        "linear" => ScheduleShape.Linear,
        _ => throw new CommandException($"--schedule '{name}' is not known; use cosine, constant, wsd or linear."),
    };

    /// <summary>Applies --threads (process-wide LibTorch setting) when given.</summary>
    public static void ApplyThreads(CommandArguments a)
    {
        int threads = a.Get<int>("--threads");
        if (threads > 0) TorchSharp.torch.set_num_threads(threads);
    }

    /// <summary>The --corpus of the arguments (see <see cref="TextCorpus.Resolve"/>).</summary>
    public static TextCorpus Corpus(CommandArguments a) => TextCorpus.Resolve(a.Get<string>("--corpus"));
}

/// <summary><c>#!proxy-train</c>: trains one small transformer and shows its losses, attention logits and log Z.</summary>
public sealed class ProxyTrainCommand : MagicCommand
{
    /// <inheritdoc />
    public override string Name => "#!proxy-train";

    /// <inheritdoc />
    public override string Description => "Trains one small-scale proxy transformer (Wortsman et al. 2023) and shows its loss, max attention logit and log Z curves.";

    /// <inheritdoc />
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        SharedParameters.Width,
        new CommandParameter("--lr", typeof(double), "Peak learning rate.") { Default = 1e-3 },
        SharedParameters.Seed with { Description = "Seed of initialisation and batches." },
        SharedParameters.Name("ProxyRunResult", "proxyRun"),
        .. ProxyCommandOptions.Shared,
    ];

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        double lr = arguments.Get<double>("--lr");
        if (!double.IsFinite(lr) || lr <= 0) throw new CommandException($"--lr must be a positive learning rate; got {lr}.");
        var model = ProxyCommandOptions.Model(arguments, arguments.Get<int>("--width"));
        var training = ProxyCommandOptions.Training(arguments, lr, arguments.Get<int>("--seed"));
        var corpus = ProxyCommandOptions.Corpus(arguments);
        var device = TorchRuntime.ResolveDevice(arguments.Get<string>("--device"));
        ProxyCommandOptions.ApplyThreads(arguments);
        var progress = host.CreateProgress($"#!proxy-train width {model.Width}, lr {lr:G3}", training.Steps);
        var result = await Task.Run(() => ProxyTrainer.Train(model, training, corpus, device, progress, host.CancellationToken), host.CancellationToken).ConfigureAwait(false);
        progress.Complete(result.Diverged ? "diverged: " + result.DivergenceReason : $"final validation loss {result.FinalLoss:F3}");
        host.Display(result);
        await host.SetVariableAsync(arguments.Get<string>("--name") ?? "proxyRun", result, typeof(ProxyRunResult)).ConfigureAwait(false);
    }
}

/// <summary>
/// <c>#!proxy-sweep</c>: a resumable grid of widths x learning rates x settings x seeds, stored run by run; shows LR
/// vs final loss per size, the LR sensitivity table, attention logits and log Z of chosen runs, and diverged runs.
/// </summary>
public sealed class ProxySweepCommand : MagicCommand
{
    /// <summary>
    /// The sweep spec of a <c>#!proxy-sweep</c> command line (the same parameters, runs and keys as the command run
    /// locally), to run as a Slurm array or by the worker, e.g.
    /// <c>ProxySweepCommand.ToSweepSpec("#!proxy-sweep --widths [16,32] --learning-rates [1e-3,1e-2] --steps 30")</c>.
    /// </summary>
    public static SweepSpec ToSweepSpec(string commandLine)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(commandLine);
        var parsed = CommandLineParser.Parse(commandLine.TrimStart().StartsWith("#!", StringComparison.Ordinal) ? commandLine : "#!proxy-sweep " + commandLine, _ => null);
        var command = CommandCatalog.Get(parsed.CommandName);
        if (command is not ProxySweepCommand)
            throw new CommandException($"ProxySweepCommand.ToSweepSpec takes a #!proxy-sweep command line; got {command.Name}.");
        var arguments = CommandBinder.BindText(command, parsed.Arguments);
        var runs = BuildSpec(arguments).Runs();
        int threads = arguments.Get<int>("--threads");
        return SweepSpec.ForProxyRuns(arguments.Get<string>("--name") ?? "proxySweep", runs, CorpusSource.FromName(arguments.Get<string>("--corpus")),
            arguments.Get<string>("--device") ?? "cpu", threads == 0 ? 1 : threads);
    }

    /// <inheritdoc />
    public override string Name => "#!proxy-sweep";

    /// <inheritdoc />
    public override string Description => "Sweeps model widths x learning rates x settings x seeds of small-scale proxy transformers; resumable with --store; reports LR sensitivity.";

    /// <inheritdoc />
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        new CommandParameter("--widths", typeof(int[]), "Model widths (JSON list).") { Default = new[] { 32, 64 } },
        new CommandParameter("--learning-rates", typeof(double[]), "Peak learning rates (JSON list); or use --lr-min/--lr-max/--lr-count."),
        new CommandParameter("--lr-min", typeof(double), "Smallest learning rate of a log-spaced range."),
        new CommandParameter("--lr-max", typeof(double), "Largest learning rate of a log-spaced range."),
        new CommandParameter("--lr-count", typeof(int), "Number of log-spaced learning rates.") { Default = 5, Minimum = 1 },
        SharedParameters.Seeds,
        new CommandParameter("--compare", typeof(string[]), $"Settings to compare, each applied on top of the switches: {string.Join(", ", ProxySettings.Names)} (combine with '+'; see ProxySettings).") { Default = new[] { "baseline" } },
        SharedParameters.Store with { Description = SharedParameters.Store.Description + " Default: a file in the temp folder named after --name." },
        SharedParameters.Name("ProxySweepResult (also the sweep's name in the store)", "proxySweep"),
        .. ProxyCommandOptions.Shared,
    ];

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        var spec = BuildSpec(arguments);
        var runs = spec.Runs();
        var corpus = ProxyCommandOptions.Corpus(arguments);
        var device = TorchRuntime.ResolveDevice(arguments.Get<string>("--device"));
        ProxyCommandOptions.ApplyThreads(arguments);
        string name = arguments.Get<string>("--name") ?? "proxySweep";
        string storePath = arguments.Get<string>("--store") ?? Path.Combine(Path.GetTempPath(), "scaling-interactive", name + ".jsonl");
        var store = ProxySweep.OpenStore(storePath, corpus, name);
        var progress = host.CreateProgress($"#!proxy-sweep {name}: {runs.Count} runs", runs.Count);
        await Task.Run(() => ProxySweep.Run(runs, corpus, device, store, progress, host.CancellationToken), host.CancellationToken).ConfigureAwait(false);
        var keys = runs.Select(r => r.Key).ToHashSet(StringComparer.Ordinal);
        var result = new ProxySweepResult(store.Records.Where(r => keys.Contains(r["key"]!.GetValue<string>())), store.Path, store.BadLines);
        host.Display(result);
        await host.SetVariableAsync(name, result, typeof(ProxySweepResult)).ConfigureAwait(false);
    }

    /// <summary>The sweep the arguments describe (validated).</summary>
    internal static ProxySweepSpec BuildSpec(CommandArguments a)
    {
        double[] rates;
        if (a["--learning-rates"] is double[] list && list.Length > 0)
        {
            if (a.IsGiven("--lr-min") || a.IsGiven("--lr-max")) throw new CommandException("Give either --learning-rates or --lr-min/--lr-max, not both.");
            rates = list;
        }
        else if (a["--lr-min"] is double min && a["--lr-max"] is double max)
        {
            try { rates = ProxySweepSpec.LogSpaced(min, max, a.Get<int>("--lr-count")); }
            catch (ArgumentException e) { throw new CommandException("--lr-min/--lr-max/--lr-count: " + e.Message); }
        }
        else throw new CommandException("Give the learning rates: --learning-rates [1e-3,3e-3,1e-2] or --lr-min 1e-4 --lr-max 1e-1 --lr-count 7.");
        foreach (double lr in rates)
            if (!double.IsFinite(lr) || lr <= 0) throw new CommandException($"--learning-rates must all be positive; got {lr}.");
        var widths = a.Get<int[]>("--widths") ?? [];
        if (widths.Length == 0 || widths.Any(w => w <= 0)) throw new CommandException("--widths must be a non-empty list of positive integers.");
        var seeds = a.Get<int[]>("--seeds") ?? [0];
        var baseTraining = ProxyCommandOptions.Training(a, rates[0], 0);
        var baseModel = ProxyCommandOptions.Model(a, widths[0]);
        var settings = (a.Get<string[]>("--compare") ?? ["baseline"]).Select(s => Setting(s, a, baseTraining, widths)).ToArray();
        return new ProxySweepSpec
        {
            Experiment = "lr-sweep",
            Widths = widths,
            Depth = a.Get<int>("--depth"),
            HeadDim = a.Get<int>("--head-dim"),
            BaseModel = baseModel,
            LearningRates = rates,
            Seeds = seeds.Select(s => (long)s).ToArray(),
            Settings = settings,
            Training = baseTraining,
        };
    }

    /// <summary>A --compare setting, from the proxies API's catalogue (<see cref="ProxySettings"/>).</summary>
    internal static ProxySetting Setting(string name, CommandArguments a, ProxyTrainingOptions training, int[] widths)
    {
        try { return ProxySettings.Create(name, training, widths, a["--mup-base-width"] is double b ? b : null); }
        catch (ArgumentException e) { throw new CommandException($"#!proxy-sweep: --compare '{name}': {e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal)}"); }
    }
}
