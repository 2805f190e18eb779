using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Checkpoints;
using ScalingInteractive.Runs;
using static TorchSharp.torch;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>
/// A built-in intrinsic-dimension task as data (<see cref="IntrinsicDimensionTasks"/>): its name, the data folder (an
/// absolute path, readable where the workers run) and, for <c>lm</c>, the model and its pre-training.
/// </summary>
public sealed record IntrinsicTaskSpec
{
    /// <summary><c>mnist-mlp</c>, <c>mnist-cnn</c> or <c>lm</c>.</summary>
    public string Task { get; init; } = "mnist-mlp";

    /// <summary>Absolute path of the folder with the MNIST files and tinyshakespeare.txt.</summary>
    public string DataDirectory { get; init; } = "";

    /// <summary><c>lm</c>: model width.</summary>
    public int Width { get; init; } = 64;

    /// <summary><c>lm</c>: transformer blocks.</summary>
    public int Depth { get; init; } = 2;

    /// <summary><c>lm</c>: pre-training steps on the synthetic grammar (0: fine-tune from random initialisation).</summary>
    public int PretrainSteps { get; init; } = 400;

    /// <summary><c>lm</c>: tokens per window.</summary>
    public int SequenceLength { get; init; } = 64;

    /// <summary>The spec of task <paramref name="task"/> with <paramref name="options"/> (the data folder made absolute).</summary>
    public static IntrinsicTaskSpec For(string task, IntrinsicTaskOptions? options = null)
    {
        options ??= new IntrinsicTaskOptions();
        return new IntrinsicTaskSpec
        {
            Task = (task ?? "").Trim().ToLowerInvariant(),
            DataDirectory = Path.GetFullPath(options.ResolvedDataDirectory),
            Width = options.Width,
            Depth = options.Depth,
            PretrainSteps = options.PretrainSteps,
            SequenceLength = options.SequenceLength,
        };
    }

    /// <summary>The task's options on <paramref name="device"/>.</summary>
    public IntrinsicTaskOptions ToOptions(Device? device = null, CancellationToken cancellationToken = default) => new()
    {
        DataDirectory = DataDirectory,
        Device = device,
        Width = Width,
        Depth = Depth,
        PretrainSteps = PretrainSteps,
        SequenceLength = SequenceLength,
        CancellationToken = cancellationToken,
    };

    /// <summary>The name the task reports (part of every run's key), e.g. <c>lm-w64-d2-pretrained400</c>.</summary>
    public string TaskName => IntrinsicDimensionTasks.TaskName(Task, ToOptions());

    /// <summary>Whether the task starts from a pre-trained model (a pre-training run in stage 0).</summary>
    public bool HasPretraining => Task == "lm" && PretrainSteps > 0;

    /// <summary>Throws <see cref="InvalidDataException"/> naming the first invalid field.</summary>
    public IntrinsicTaskSpec Validate()
    {
        if (!IntrinsicDimensionTasks.Names.Contains(Task))
            throw new InvalidDataException($"The task '{Task}' is not known; accepted: {string.Join(", ", IntrinsicDimensionTasks.Names)}.");
        if (string.IsNullOrWhiteSpace(DataDirectory) || !Path.IsPathFullyQualified(DataDirectory))
            throw new InvalidDataException($"The task's dataDirectory must be an absolute path (readable where the workers run); got '{DataDirectory}'.");
        if (Task == "lm")
        {
            if (Width < 1 || Depth < 1) throw new InvalidDataException($"The lm task needs width and depth of at least 1; got width {Width}, depth {Depth}.");
            if (PretrainSteps < 0) throw new InvalidDataException($"The lm task's pretrainSteps must be 0 or more; got {PretrainSteps}.");
            if (SequenceLength < 1) throw new InvalidDataException($"The lm task's sequenceLength must be at least 1; got {SequenceLength}.");
        }
        return this;
    }
}

/// <summary>The sweep settings of an intrinsic-dimension experiment as they are written into its spec.</summary>
/// <param name="Dimensions">Swept subspace dimensions d.</param>
/// <param name="Projections">Projection names (dense, sparse, fastfood, identity).</param>
/// <param name="Seeds">The seeds.</param>
/// <param name="Training">Steps, learning rates, batch size.</param>
/// <param name="Said">One trainable scale per parameter tensor.</param>
/// <param name="PerTensor">One projection per parameter tensor.</param>
/// <param name="Fractions">Fractions of the baseline at which d is reported (null: the defaults).</param>
/// <param name="Resamples">Bootstrap resamples over seeds.</param>
/// <param name="MemoryBudgetBytes">Largest dense or sparse projection.</param>
public sealed record IntrinsicSweepSettings(IReadOnlyList<long> Dimensions, IReadOnlyList<string> Projections, IReadOnlyList<int> Seeds,
    SubspaceTrainingOptions Training, bool Said, bool PerTensor, IReadOnlyList<double>? Fractions, int Resamples, long MemoryBudgetBytes)
{
    /// <summary>The settings of <paramref name="options"/> (the worker count is a property of where it runs, not of the spec).</summary>
    public static IntrinsicSweepSettings From(IntrinsicSweepOptions options) =>
        new(options.Dimensions.ToList(), options.Projections.Select(p => p.ToString().ToLowerInvariant()).ToList(), options.SeedValues.ToList(),
            options.Training, options.Said, options.PerTensor, options.Fractions?.ToList(), options.Resamples, options.MemoryBudgetBytes);

    /// <summary>Back to sweep options; an unknown projection name is an <see cref="InvalidDataException"/>.</summary>
    public IntrinsicSweepOptions ToOptions()
    {
        var kinds = (Projections ?? []).Select(p => Enum.TryParse<ProjectionKind>(p, ignoreCase: true, out var kind) && !int.TryParse(p, out _) ? kind
            : throw new InvalidDataException($"The projection '{p}' is not known; accepted: {string.Join(", ", Enum.GetNames<ProjectionKind>().Select(n => n.ToLowerInvariant()))}.")).ToList();
        return new IntrinsicSweepOptions(Dimensions ?? [], kinds, (Seeds ?? []).Count, Training, Said, PerTensor, Fractions, Resamples, MemoryBudgetBytes) { SeedList = Seeds ?? [] };
    }
}

/// <summary>What a pre-training run's key hashes.</summary>
/// <param name="Kind">Always <c>pretrain</c>.</param>
/// <param name="Task">Task name (e.g. <c>lm-w64-d2-pretrained400</c>).</param>
/// <param name="Width">Model width.</param>
/// <param name="Depth">Transformer blocks.</param>
/// <param name="PretrainSteps">Pre-training steps.</param>
/// <param name="SequenceLength">Tokens per window.</param>
public sealed record IntrinsicPretrainKey(string Kind, string Task, int Width, int Depth, int PretrainSteps, int SequenceLength);

/// <summary>The record of a pre-training run; its weights are the checkpoint <see cref="ExperimentContext.CheckpointPath"/> names.</summary>
/// <param name="Key">Run key.</param>
/// <param name="Task">Task name.</param>
/// <param name="Steps">Pre-training steps taken.</param>
/// <param name="TrainLoss">Training loss at the end (mean of the last 10% of steps).</param>
/// <param name="ValidationLoss">Loss on fixed held-out windows of the pre-training corpus.</param>
/// <param name="Checkpoint">The checkpoint's file name in the store's <c>checkpoints</c> folder.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record IntrinsicPretrainRecord(string Key, string Task, int Steps, double? TrainLoss, double? ValidationLoss, string Checkpoint, double Seconds);

/// <summary>
/// An intrinsic-dimension sweep as an experiment (data), run by the same worker as proxy sweeps, in this process or as
/// Slurm job arrays. Stage 0 (the <c>lm</c> task with pre-training only) pre-trains once and writes the weights as a
/// checkpoint named by the run's key; stage 1 trains the full-parameter baseline per seed and every
/// (projection, d, seed), each worker reading theta0 from that checkpoint instead of pre-training again. Keys are those
/// of <see cref="IntrinsicDimensionSweep.Run"/> (<see cref="SubspaceRunConfig.Key"/>), and the records are the same
/// <see cref="SubspaceRun"/>s; <see cref="Collect"/> gives the <see cref="IntrinsicDimensionReport"/> a local
/// <c>#!intrinsic-dim</c> shows.
/// </summary>
/// <param name="Name">The experiment's name.</param>
/// <param name="Task">The task.</param>
/// <param name="Settings">Dimensions, projections, seeds, training.</param>
public sealed record IntrinsicDimensionExperiment(string Name, IntrinsicTaskSpec Task, IntrinsicSweepSettings Settings) : IExperiment
{
    /// <summary>The kind, also the store's kind.</summary>
    public const string StoreKind = "intrinsic-dimension";

    /// <summary>The stage of the subspace and baseline runs (stage 0 is the pre-training, when there is one).</summary>
    public const int SweepStage = 1;

    /// <summary>An experiment of <paramref name="task"/> swept as <paramref name="options"/> say.</summary>
    public static IntrinsicDimensionExperiment Create(string name, IntrinsicTaskSpec task, IntrinsicSweepOptions options)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(options);
        IntrinsicDimensionSweep.Validate(options);
        return new IntrinsicDimensionExperiment(name, task, IntrinsicSweepSettings.From(options));
    }

    /// <inheritdoc />
    public string Kind => StoreKind;

    /// <summary>The key of the pre-training run (null when the task has none).</summary>
    public string? PretrainKey => Task.HasPretraining
        ? RunKeys.Of(new IntrinsicPretrainKey("pretrain", Task.TaskName, Task.Width, Task.Depth, Task.PretrainSteps, Task.SequenceLength), IntrinsicJson.Default.IntrinsicPretrainKey)
        : null;

    /// <inheritdoc />
    public IReadOnlyList<PlannedRun> Runs
    {
        get
        {
            var runs = new List<PlannedRun>();
            if (PretrainKey is { } pretrain)
            {
                var config = JsonSerializer.SerializeToNode(new IntrinsicPretrainKey("pretrain", Task.TaskName, Task.Width, Task.Depth, Task.PretrainSteps, Task.SequenceLength),
                    IntrinsicJson.Default.IntrinsicPretrainKey)!.AsObject();
                runs.Add(new PlannedRun(pretrain, 0, WithKey(config, pretrain, 0)));
            }
            foreach (var run in IntrinsicDimensionSweep.Plan(Task.TaskName, Settings.ToOptions()))
            {
                var config = JsonSerializer.SerializeToNode(new SubspaceKeyFields(run.Task, run.Projection, run.Dimension, run.Said, run.PerTensor, run.Seed),
                    IntrinsicJson.Default.SubspaceKeyFields)!.AsObject();
                runs.Add(new PlannedRun(run.Key, SweepStage, WithKey(config, run.Key, SweepStage)));
            }
            return runs;
        }
    }

    /// <inheritdoc />
    public void Validate()
    {
        if (Task is null) throw new InvalidDataException("The experiment has no \"task\".");
        if (Settings is null) throw new InvalidDataException("The experiment has no \"settings\".");
        Task.Validate();
        try { IntrinsicDimensionSweep.Validate(Settings.ToOptions()); }
        catch (ArgumentException e) { throw new InvalidDataException($"The settings are not valid: {e.Message}"); }
    }

    /// <inheritdoc />
    public JsonObject ToJson() => new()
    {
        ["task"] = JsonSerializer.SerializeToNode(Task, IntrinsicJson.Default.IntrinsicTaskSpec),
        ["settings"] = JsonSerializer.SerializeToNode(Settings, IntrinsicJson.Default.IntrinsicSweepSettings),
        ["runs"] = new JsonArray(Runs.Select(r => (JsonNode)r.Config.DeepClone()).ToArray()),
    };

    /// <inheritdoc />
    public JsonObject StoreIdentity() =>
        IntrinsicDimensionSweep.StoreIdentity(Task.TaskName, Settings.Training, IntrinsicDimensionTasks.DataDescription(Task.Task, Task.ToOptions()));

    /// <inheritdoc />
    public void Run(IReadOnlyList<PlannedRun> runs, ExperimentContext context)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(context);
        if (runs.Count == 0) return;
        if (runs.Any(r => r.Stage != runs[0].Stage)) throw new ArgumentException("Run takes the runs of one stage.", nameof(runs));
        if (runs[0].Stage == 0)
        {
            Pretrain(context);
            return;
        }
        var options = Settings.ToOptions() with { Workers = context.Workers };
        using var task = CreateTask(context);
        IntrinsicDimensionSweep.CheckFeasible(task, options);
        IntrinsicDimensionSweep.RunJobs(task, options, runs.Select(r => r.Key).ToHashSet(StringComparer.Ordinal), context.Store, context.Progress, context.CancellationToken);
    }

    /// <inheritdoc />
    public object Collect(RunStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        var planned = Runs.Where(r => r.Stage == SweepStage).ToList();
        var found = planned.Select(r => store.Find(r.Key)?.Deserialize(IntrinsicJson.Default.SubspaceRun)).ToList();
        int missing = found.Count(r => r is null);
        if (missing > 0)
            throw new InvalidDataException($"{missing} of {planned.Count} runs of '{Name}' are not in the store yet; collect once every run has finished (#!sweep-status shows which).");
        return new IntrinsicDimensionReport(Task.TaskName, IntrinsicDimensionTasks.MetricName(Task.Task), found.Select(r => r!).ToList(), Settings.Fractions, Settings.Resamples);
    }

    /// <summary>The pre-training record from <paramref name="store"/> (null when the task has none or it has not run).</summary>
    public IntrinsicPretrainRecord? PretrainRecord(RunStore store) =>
        PretrainKey is { } key ? store.Find(key)?.Deserialize(IntrinsicJson.Default.IntrinsicPretrainRecord) : null;

    /// <summary>
    /// Reads the body of a spec (<c>task</c>, <c>settings</c>, <c>runs</c>); <paramref name="read"/> turns deserialisation
    /// errors into messages. The runs follow from the task and settings, so a listed run that differs from them (edited
    /// by hand) is refused: edit the settings instead.
    /// </summary>
    public static IntrinsicDimensionExperiment FromJson(string name, JsonObject body, Func<Func<object?>, string, object?> read)
    {
        var task = (IntrinsicTaskSpec?)read(() => body["task"]?.Deserialize(IntrinsicJson.Default.IntrinsicTaskSpec), "task")
                   ?? throw new InvalidDataException("The spec has no \"task\".");
        var settings = (IntrinsicSweepSettings?)read(() => body["settings"]?.Deserialize(IntrinsicJson.Default.IntrinsicSweepSettings), "settings")
                       ?? throw new InvalidDataException("The spec has no \"settings\".");
        var experiment = new IntrinsicDimensionExperiment(name, task, settings);
        experiment.Validate();
        if (body["runs"] is JsonArray listed)
        {
            var planned = experiment.Runs;
            for (int i = 0; i < Math.Min(listed.Count, planned.Count); i++)
                if (!JsonNode.DeepEquals(listed[i], planned[i].Config))
                    throw new InvalidDataException($"run {i} is {listed[i]?.ToJsonString()} but the task and settings give {planned[i].Config.ToJsonString()}; " +
                                                   "the runs of an intrinsic-dimension spec follow from its task and settings (edit those, or write the spec again).");
        }
        return experiment;
    }

    // Stage 0: pre-trains once (as IntrinsicDimensionTasks.Create would in every process) and writes the weights, aside
    // and renamed into place, before the record: a record in the store means its checkpoint is complete.
    private void Pretrain(ExperimentContext context)
    {
        string key = PretrainKey!;
        if (context.Store.Contains(key))
        {
            context.Progress?.Report(1, "pre-training (from store)");
            return;
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        context.Progress?.Report(0, $"pre-training {Task.TaskName}");
        using var task = (LanguageModelTask)IntrinsicDimensionTasks.Create(Task.Task, Task.ToOptions(context.Device, context.CancellationToken));
        string path = context.CheckpointPath(key);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string partial = $"{path}.{Environment.ProcessId}.partial";
        SafetensorsWriter.Write(partial, task.PretrainedWeights!, new Dictionary<string, string>
        {
            ["task"] = Task.TaskName,
            ["steps"] = task.PretrainStepsDone.ToString(CultureInfo.InvariantCulture),
        });
        File.Move(partial, path, overwrite: true);
        context.Store.Append(new IntrinsicPretrainRecord(key, Task.TaskName, task.PretrainStepsDone, task.PretrainLoss, task.PretrainValidationLoss,
            Path.GetFileName(path), clock.Elapsed.TotalSeconds), IntrinsicJson.Default.IntrinsicPretrainRecord);
        context.Progress?.Report(1, $"pre-trained {Task.TaskName}: validation loss {task.PretrainValidationLoss:F4}");
    }

    // The task of stage 1: theta0 read from the pre-training run's checkpoint (never pre-trained again here).
    private IIntrinsicTask CreateTask(ExperimentContext context)
    {
        var options = Task.ToOptions(context.Device, context.CancellationToken);
        if (PretrainKey is not { } key) return IntrinsicDimensionTasks.Create(Task.Task, options);
        string path = context.CheckpointPath(key);
        if (!context.Store.Contains(key) || !File.Exists(path))
            throw new InvalidDataException($"The pre-training checkpoint of '{Name}' ({path}) is not there: stage 0 (the pre-training run {key}) must finish " +
                                           "before stage 1 starts (run every stage, or the worker with --stage 0 first).");
        using var file = SafetensorsFile.Open(path);
        var weights = file.ToTensors(context.Device);
        try
        {
            return IntrinsicDimensionTasks.Create(Task.Task, options with { PretrainedWeights = weights });
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    private static JsonObject WithKey(JsonObject config, string key, int stage)
    {
        config["key"] = key;
        config["stage"] = stage;
        return config;
    }
}
