using System.Collections.Immutable;
using ScalingInteractive.Hosting;
using ScalingInteractive.Runs;
using ScalingInteractive.Proxies;
using ScalingInteractive.Display;
using ScalingInteractive.Core;
using ScalingInteractive.IntrinsicDimension;
using ScalingInteractive.Sweeps;

namespace ScalingInteractive.Commands;

/// <summary>
/// <c>#!intrinsic-dim</c>: trains a model in random subspaces of growing dimension d and reports d90, the smallest d
/// reaching 90% of full-parameter training (Li et al. 2018; Aghajanyan et al. 2020 for language-model fine-tuning).
/// </summary>
public sealed class IntrinsicDimCommand : MagicCommand
{
    /// <inheritdoc />
    public override string Name => "#!intrinsic-dim";

    /// <inheritdoc />
    public override string Description =>
        "Intrinsic-dimension probe: trains in random d-dimensional subspaces (theta = theta0 + P z) for a sweep of d, next to full-parameter " +
        "training, and reports d90 with a bootstrap over seeds. Tasks: mnist-mlp, mnist-cnn (8k/2k split of the MNIST 10k file), lm (proxy transformer " +
        "pretrained on the synthetic grammar, fine-tuned on tiny Shakespeare).";

    /// <inheritdoc />
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        new("--task", typeof(string), "What to train (see IntrinsicDimensionTasks).") { AllowImplicitName = true, Default = "mnist-mlp", AllowedValues = IntrinsicDimensionTasks.Names },
        new("--dims", typeof(int[]), "Subspace dimensions d to sweep, e.g. [10,100,1000]; without it a log range from --d-min to --d-max.") { Minimum = 1 },
        new("--d-min", typeof(int), "Smallest d of the log range.") { Default = 10, Minimum = 1 },
        new("--d-max", typeof(int), "Largest d of the log range.") { Default = 3000, Minimum = 1 },
        new("--d-points", typeof(int), "Points of the log range.") { Default = 6, Minimum = 1, Maximum = 100 },
        new("--projection", typeof(string), "dense, sparse or fastfood; several comma-separated (e.g. dense,fastfood) to compare.") { Default = "fastfood" },
        new("--said", typeof(bool), "Structure-aware: one trainable scale per parameter tensor, counted in d (Aghajanyan et al. 2020)."),
        new("--per-tensor", typeof(bool), "One projection per parameter tensor instead of one over all parameters."),
        SharedParameters.Seeds with { Description = "Seeds run at every d (each: theta0, P and batch order), a JSON list; the bootstrap resamples them.", Default = new[] { 0, 1 } },
        SharedParameters.Steps with { Default = 1000 },
        new("--lr", typeof(double), "Adam learning rate of z.") { Default = 0.03, Minimum = 0 },
        new("--full-lr", typeof(double), "Adam learning rate of the full-parameter baseline.") { Default = 1e-3, Minimum = 0 },
        SharedParameters.BatchSize with { Default = 128 },
        SharedParameters.Bootstrap with { Description = "Bootstrap resamples over seeds (0: none)." },
        SharedParameters.Device,
        SharedParameters.Store,
        SharedParameters.Name("IntrinsicDimensionReport"),
        SharedParameters.DataDir with { Description = "Data folder with the MNIST files and tinyshakespeare.txt (default: the notebook data folder, SCALING_INTERACTIVE_DATA)." },
        new("--memory-mib", typeof(int), "Largest dense or sparse projection, in MiB.") { Default = 2048, Minimum = 1 },
        SharedParameters.Width with { Description = "lm: model width d_model." },
        SharedParameters.Depth with { Description = "lm: transformer blocks." },
        SharedParameters.PretrainSteps with { Description = "lm: pre-training steps on the synthetic grammar (0: fine-tune from random initialisation)." },
        SharedParameters.SequenceLength with { Description = "lm: tokens per training sequence." },
    ];

    /// <summary>
    /// The sweep spec of an <c>#!intrinsic-dim</c> command line (the same task, runs and keys as the command run
    /// locally), for <c>#!sweep-submit</c>, <see cref="SlurmSweeps.Submit"/> or the worker, e.g.
    /// <c>IntrinsicDimCommand.ToSweepSpec("#!intrinsic-dim lm --dims [100,1000] --seeds [0,1]")</c>. The <c>lm</c> task's
    /// pre-training becomes stage 0, whose checkpoint every subspace run of stage 1 reads.
    /// </summary>
    public static SweepSpec ToSweepSpec(string commandLine)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(commandLine);
        var parsed = CommandLineParser.Parse(commandLine.TrimStart().StartsWith("#!", StringComparison.Ordinal) ? commandLine : "#!intrinsic-dim " + commandLine, _ => null);
        var command = CommandCatalog.Get(parsed.CommandName);
        if (command is not IntrinsicDimCommand intrinsic)
            throw new CommandException($"IntrinsicDimCommand.ToSweepSpec takes a #!intrinsic-dim command line; got {command.Name}.");
        var arguments = CommandBinder.BindText(command, parsed.Arguments);
        var (task, taskOptions, options) = intrinsic.Bind(arguments, CancellationToken.None);
        return SweepSpec.For(IntrinsicDimensionExperiment.Create(arguments.Get<string>("--name") ?? "intrinsicDim", IntrinsicTaskSpec.For(task, taskOptions), options),
            arguments.Get<string>("--device") ?? "cpu");
    }

    // The task, its options and the sweep options a command line asks for (the same for a local run and a spec).
    private (string Task, IntrinsicTaskOptions TaskOptions, IntrinsicSweepOptions Options) Bind(CommandArguments arguments, CancellationToken token)
    {
        var kinds = ParseProjections(arguments.Get<string>("--projection"));
        if (arguments.Get<int>("--d-max") < arguments.Get<int>("--d-min") && !arguments.IsGiven("--dims"))
            throw new CommandException($"{Name}: --d-max ({arguments.Get<int>("--d-max")}) must be at least --d-min ({arguments.Get<int>("--d-min")}).");
        IReadOnlyList<long> dims = arguments.Get<int[]>("--dims") is { } list
            ? list.Select(v => (long)v).Distinct().Order().ToList()
            : IntrinsicDimensionSweep.LogRange(arguments.Get<int>("--d-min"), arguments.Get<int>("--d-max"), arguments.Get<int>("--d-points"));
        var training = new SubspaceTrainingOptions(arguments.Get<int>("--steps"), arguments.Get<double>("--lr"), arguments.Get<double>("--full-lr"), arguments.Get<int>("--batch-size"));
        if (training.LearningRate <= 0 || training.FullLearningRate <= 0) throw new CommandException($"{Name}: --lr and --full-lr must be positive.");
        int[] seeds = arguments.Get<int[]>("--seeds");
        if (seeds.Distinct().Count() != seeds.Length) throw new CommandException($"{Name}: --seeds {CommandBinder.FormatValue(seeds)} is not accepted: the seeds must be distinct.");
        var options = new IntrinsicSweepOptions(dims, kinds, seeds.Length, training, arguments.Get<bool>("--said"), arguments.Get<bool>("--per-tensor"),
            Resamples: arguments.Get<int>("--bootstrap"), MemoryBudgetBytes: arguments.Get<int>("--memory-mib") * 1048576L) { SeedList = seeds };
        var taskOptions = new IntrinsicTaskOptions
        {
            DataDirectory = arguments.Get<string>("--data-dir"),
            Width = arguments.Get<int>("--width"),
            Depth = arguments.Get<int>("--depth"),
            PretrainSteps = arguments.Get<int>("--pretrain-steps"),
            SequenceLength = arguments.Get<int>("--seq-len"),
            CancellationToken = token,
        };
        return (arguments.Get<string>("--task"), taskOptions, options);
    }

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        var token = host.CancellationToken;
        var (task, taskOptions, options) = Bind(arguments, token);
        taskOptions = taskOptions with { Device = TorchRuntime.ResolveDevice(arguments.Get<string>("--device")) };
        var training = options.Training;
        var report = await Task.Run(() =>
        {
            using var probe = IntrinsicDimensionTasks.Create(task, taskOptions);
            RunStore? store = arguments.Get<string>("--store") is { } path
                ? RunStore.Open(path, "intrinsic-dimension", IntrinsicDimensionSweep.StoreIdentity(probe, training, IntrinsicDimensionTasks.DataDescription(task, taskOptions)))
                : null;
            var progress = host.CreateProgress($"{Name} {probe.Name}: {string.Join(", ", options.Projections).ToLowerInvariant()}, {options.Dimensions.Count} values of d x {options.SeedValues.Count} seed(s)",
                options.SeedValues.Count * (1 + options.Dimensions.Count * options.Projections.Count));
            return IntrinsicDimensionSweep.Run(probe, options, store, progress, token);
        }, token);
        host.Display(report);
        if (arguments.Get<string>("--name") is { Length: > 0 } variable)
            await host.SetVariableAsync(variable, report, typeof(IntrinsicDimensionReport));
    }

    /// <summary>Parses <c>dense,fastfood</c> into projection kinds; a clear message names what is accepted.</summary>
    public static IReadOnlyList<ProjectionKind> ParseProjections(string text)
    {
        var parts = (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new CommandException("#!intrinsic-dim: --projection is empty; use dense, sparse or fastfood (comma-separated to compare).");
        return parts.Select(p => p.ToLowerInvariant() switch
        {
            "dense" => ProjectionKind.Dense,
            "sparse" => ProjectionKind.Sparse,
            "fastfood" => ProjectionKind.Fastfood,
            _ => throw new CommandException($"#!intrinsic-dim: --projection '{p}' is not accepted; use dense, sparse or fastfood (comma-separated to compare)."),
        }).Distinct().ToList();
    }
}
