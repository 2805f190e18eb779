using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Runs;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>What a sweep runs: the dimensions, projections, seeds and training settings.</summary>
/// <param name="Dimensions">Swept subspace dimensions d.</param>
/// <param name="Projections">Projections to compare (each gets its own curve).</param>
/// <param name="Seeds">Seeds 0 .. Seeds-1 (each: theta0, P and batch order); <see cref="SeedList"/> overrides it with explicit seeds.</param>
/// <param name="Training">Steps, learning rates, batch size.</param>
/// <param name="Said">One trainable scale per parameter tensor (Aghajanyan et al. 2020).</param>
/// <param name="PerTensor">One projection per parameter tensor instead of one global one.</param>
/// <param name="Fractions">Fractions of the baseline at which d is reported (null: 0.9, 0.5, 0.95, 0.99).</param>
/// <param name="Resamples">Bootstrap resamples over seeds.</param>
/// <param name="MemoryBudgetBytes">Largest dense or sparse projection; bigger ones are recorded as skipped.</param>
public sealed record IntrinsicSweepOptions(IReadOnlyList<long> Dimensions, IReadOnlyList<ProjectionKind> Projections, int Seeds,
    SubspaceTrainingOptions Training, bool Said = false, bool PerTensor = false, IReadOnlyList<double>? Fractions = null, int Resamples = 1000,
    long MemoryBudgetBytes = 2L << 30)
{
    /// <summary>Explicit seeds to run instead of 0 .. <see cref="Seeds"/>-1 (distinct, non-negative; null: the range).</summary>
    public IReadOnlyList<int>? SeedList { get; init; }

    /// <summary>The seeds the sweep runs: <see cref="SeedList"/> when given, else 0 .. <see cref="Seeds"/>-1.</summary>
    public IReadOnlyList<int> SeedValues => SeedList ?? Enumerable.Range(0, Math.Max(0, Seeds)).ToList();

    /// <summary>
    /// Runs trained at once, each on its own thread (null: on a CPU, cores / LibTorch threads, so one LibTorch thread per
    /// worker fills the cores; 1 on a GPU). A run's record does not depend on it (timings aside).
    /// </summary>
    public int? Workers { get; init; }
}

/// <summary>
/// Runs an intrinsic-dimension sweep: a full-parameter baseline per seed, then every (projection, d, seed), appending each
/// finished run to an optional <see cref="RunStore"/> and skipping runs the store already holds.
/// </summary>
public static class IntrinsicDimensionSweep
{
    /// <summary>Log-spaced integer dimensions from <paramref name="min"/> to <paramref name="max"/> (distinct, increasing).</summary>
    public static IReadOnlyList<long> LogRange(long min, long max, int points)
    {
        if (min < 1) throw new ArgumentException($"The smallest d must be at least 1 (got {min}).", nameof(min));
        if (max < min) throw new ArgumentException($"The largest d ({max}) must be at least the smallest ({min}).", nameof(max));
        if (points < 1) throw new ArgumentException($"points must be at least 1 (got {points}).", nameof(points));
        if (points == 1) return [min];
        return Enumerable.Range(0, points)
            .Select(i => (long)Math.Round(Math.Exp(Math.Log(min) + i * (Math.Log(max) - Math.Log(min)) / (points - 1))))
            .Distinct().ToList();
    }

    /// <summary>Runs the sweep; <paramref name="progress"/> gets one report per finished or skipped run.</summary>
    public static IntrinsicDimensionReport Run(IIntrinsicTask task, IntrinsicSweepOptions options, RunStore? store = null,
        IProgressSink? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);
        CheckFeasible(task, options);
        var runs = RunJobs(task, options, null, store, progress, cancellationToken);
        return new IntrinsicDimensionReport(task.Name, task.MetricName, runs, options.Fractions, options.Resamples);
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting of <paramref name="options"/>.</summary>
    public static void Validate(IntrinsicSweepOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Training is null) throw new ArgumentException("Training must be given (steps, learning rates, batch size).", nameof(options));
        options.Training.Validate();
        if (options.Dimensions is null || options.Dimensions.Count == 0 || options.Dimensions.Any(d => d < 1))
            throw new ArgumentException("Dimensions must list at least one d, each at least 1.", nameof(options));
        if (options.Dimensions.Distinct().Count() != options.Dimensions.Count)
            throw new ArgumentException($"Dimensions [{string.Join(", ", options.Dimensions)}] must be distinct.", nameof(options));
        if (options.Projections is null || options.Projections.Count == 0) throw new ArgumentException("Projections must list at least one projection.", nameof(options));
        if (options.Projections.Distinct().Count() != options.Projections.Count)
            throw new ArgumentException($"Projections [{string.Join(", ", options.Projections)}] must be distinct.", nameof(options));
        var seeds = options.SeedValues;
        if (options.SeedList is null && options.Seeds < 1) throw new ArgumentException($"Seeds must be at least 1 (got {options.Seeds}).", nameof(options));
        if (seeds.Count == 0 || seeds.Any(s => s < 0) || seeds.Distinct().Count() != seeds.Count)
            throw new ArgumentException($"SeedList [{string.Join(", ", seeds)}] must list at least one seed, each distinct and non-negative.", nameof(options));
        if (options.Workers is < 1) throw new ArgumentException($"Workers must be at least 1 (got {options.Workers}).", nameof(options));
        if (options.Resamples < 0) throw new ArgumentException($"Resamples must be 0 or more (got {options.Resamples}).", nameof(options));
        if (options.MemoryBudgetBytes < 1) throw new ArgumentException($"MemoryBudgetBytes must be positive (got {options.MemoryBudgetBytes}).", nameof(options));
    }

    /// <summary>Every run of a sweep of task <paramref name="taskName"/> in its fixed order: the full baseline per seed, then each (projection, d, seed).</summary>
    public static IReadOnlyList<SubspaceRunConfig> Plan(string taskName, IntrinsicSweepOptions options)
    {
        var configs = new List<SubspaceRunConfig>();
        foreach (int seed in options.SeedValues) configs.Add(SubspaceRunConfig.Full(taskName, seed));
        foreach (var kind in options.Projections)
            foreach (long d in options.Dimensions)
                foreach (int seed in options.SeedValues)
                    configs.Add(new SubspaceRunConfig(taskName, kind.ToString().ToLowerInvariant(), d, options.Said, options.PerTensor, seed));
        return configs;
    }

    /// <summary>
    /// Trains the planned runs (all of them, or those whose key is in <paramref name="only"/>) on
    /// <see cref="IntrinsicSweepOptions.Workers"/> threads; each finished run is appended to the store as it ends and runs
    /// the store holds are read back. Returns the runs in plan order. The one loop behind <see cref="Run"/> and the
    /// intrinsic-dimension experiment's worker stage.
    /// </summary>
    internal static List<SubspaceRun> RunJobs(IIntrinsicTask task, IntrinsicSweepOptions options, IReadOnlySet<string>? only, RunStore? store,
        IProgressSink? progress, CancellationToken cancellationToken)
    {
        var projection = new ProjectionOptions(PerTensor: options.PerTensor, MemoryBudgetBytes: options.MemoryBudgetBytes);
        var jobs = new List<(string Key, Func<SubspaceRun> Train)>();
        foreach (var config in Plan(task.Name, options))
        {
            if (only is not null && !only.Contains(config.Key)) continue;
            int seed = config.Seed;
            if (config.Projection == "full")
                jobs.Add((config.Key, () => SubspaceTraining.TrainFull(task, seed, options.Training, cancellationToken)));
            else
            {
                var kind = options.Projections.First(k => k.ToString().ToLowerInvariant() == config.Projection);
                long d = config.Dimension;
                jobs.Add((config.Key, () => SubspaceTraining.TrainSubspace(task, d, projection with { Kind = kind }, options.Said, seed, options.Training, cancellationToken)));
            }
        }
        var runs = new SubspaceRun?[jobs.Count];
        int done = 0;
        string? best = null;
        var gate = new object();
        void Record(int index, SubspaceRun run, bool fromStore)
        {
            lock (gate)
            {
                runs[index] = run;
                done++;
                if (run.Projection == "full") best = $"baseline {run.Metric:F4}";
                progress?.Report(done, $"{run.SeriesName} d={run.Dimension:N0} seed {run.Seed}: {run.Metric:F4}{(fromStore ? " (from store)" : "")}", best);
            }
        }
        // Each worker takes the next job; every finished run is appended to the store (GetOrRun) as it ends.
        Workers.Run(jobs.Count, options.Workers ?? Workers.DefaultFor(task.Device), (i, _) =>
        {
            var run = store.GetOrRun(jobs[i].Key, jobs[i].Train, IntrinsicJson.Default.SubspaceRun, out bool fromStore);
            Record(i, run, fromStore);
        }, cancellationToken);
        progress?.Complete($"{runs.Length} runs");
        return runs.Select(r => r!).ToList();
    }

    // Fails before any training when a requested (projection, d) cannot be built, rather than midway through the sweep.
    internal static void CheckFeasible(IIntrinsicTask task, IntrinsicSweepOptions options)
    {
        long full;
        int tensors;
        using (var model = task.CreateModel(0))
        {
            full = SubspaceTraining.ParameterCount(model);
            tensors = model.parameters().Count(p => p.requires_grad);
        }
        if (full < 1) throw new ArgumentException($"The {task.Name} model has no trainable parameters.", nameof(task));
        foreach (var kind in options.Projections)
            foreach (long d in options.Dimensions)
            {
                string name = kind.ToString().ToLowerInvariant();
                if (kind is ProjectionKind.Dense or ProjectionKind.Sparse && d > full)
                    throw new ArgumentException($"d = {d} exceeds the {full:N0} parameters of {task.Name}: a {name} projection needs d <= D. Use fastfood or a smaller d.", nameof(options));
                if (kind == ProjectionKind.Identity && d != full)
                    throw new ArgumentException($"The identity projection needs d = D = {full} (got {d}).", nameof(options));
                long bytes = kind switch
                {
                    ProjectionKind.Dense => DenseProjection.MatrixBytes(full, d),
                    ProjectionKind.Sparse => d * (long)Math.Ceiling(Math.Sqrt(full)) * 12,
                    _ => 0,
                };
                if (bytes > options.MemoryBudgetBytes)
                    throw new ArgumentException($"A {name} projection with d = {d:N0} over D = {full:N0} parameters needs {bytes / 1048576.0:N0} MiB, above the " +
                                                $"memory budget of {options.MemoryBudgetBytes / 1048576.0:N0} MiB. Use fastfood for large d (O(D) memory), or smaller d.", nameof(options));
                if (options.Said && d <= tensors)
                    throw new ArgumentException($"With --said, d counts one scale per parameter tensor: d = {d} must exceed the {tensors} tensors of {task.Name}.", nameof(options));
            }
    }

    /// <summary>The identity of a run store for this task and training: runs are comparable only under the same settings.</summary>
    public static JsonObject StoreIdentity(IIntrinsicTask task, SubspaceTrainingOptions training, string? dataDescription = null) =>
        StoreIdentity(task.Name, training, dataDescription);

    /// <summary>The identity of a run store for task <paramref name="taskName"/> and training (see <see cref="IntrinsicDimensionTasks.TaskName"/>).</summary>
    public static JsonObject StoreIdentity(string taskName, SubspaceTrainingOptions training, string? dataDescription = null) => new()
    {
        ["task"] = taskName,
        ["steps"] = training.Steps,
        ["learningRate"] = training.LearningRate,
        ["fullLearningRate"] = training.FullLearningRate,
        ["batchSize"] = training.BatchSize,
        ["data"] = dataDescription ?? "",
    };
}
