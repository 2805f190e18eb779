using System.Diagnostics;
using System.Text.Json.Nodes;
using ScalingInteractive.Commands;
using ScalingInteractive.Runs;
using static TorchSharp.torch;

namespace ScalingInteractive.Proxies;

/// <summary>
/// One named intervention of a sweep (Wortsman et al.'s settings): switches applied on top of the sweep's base model
/// and training options. Null fields leave the base value.
/// </summary>
public sealed record ProxySetting
{
    /// <summary>Label shown in tables and stored in each record's <c>setting</c> field.</summary>
    public string Name { get; init; } = "baseline";

    /// <summary>qk-layernorm on or off (null: base).</summary>
    public bool? QkLayerNorm { get; init; }

    /// <summary>z-loss on or off (null: base).</summary>
    public bool? ZLoss { get; init; }

    /// <summary>Warm-up steps (null: base).</summary>
    public int? WarmupSteps { get; init; }

    /// <summary>Weight decay lambda (null: base).</summary>
    public double? WeightDecay { get; init; }

    /// <summary>Weight decay mode (null: base).</summary>
    public WeightDecayMode? WeightDecayMode { get; init; }

    /// <summary>muP base width (null: base; use <see cref="StandardParametrisation"/> to force SP).</summary>
    public double? MupBaseWidth { get; init; }

    /// <summary>Force the standard parametrisation even when the base uses muP.</summary>
    public bool StandardParametrisation { get; init; }

    /// <summary>Schedule (null: base).</summary>
    public ScheduleShape? Schedule { get; init; }

    /// <summary>The model and training options of this setting applied to a base.</summary>
    public (ProxyModelConfig Model, ProxyTrainingOptions Training) Apply(ProxyModelConfig model, ProxyTrainingOptions training)
    {
        var m = model with
        {
            QkLayerNorm = QkLayerNorm ?? model.QkLayerNorm,
            MupBaseWidth = StandardParametrisation ? null : MupBaseWidth ?? model.MupBaseWidth,
        };
        var t = training with
        {
            ZLoss = ZLoss ?? training.ZLoss,
            WarmupSteps = WarmupSteps ?? training.WarmupSteps,
            WeightDecay = WeightDecay ?? training.WeightDecay,
            WeightDecayMode = WeightDecayMode ?? training.WeightDecayMode,
            Schedule = Schedule ?? training.Schedule,
        };
        return (m, t);
    }
}

/// <summary>One run of a sweep: its experiment and setting labels and full configuration.</summary>
/// <param name="Experiment">Experiment label (e.g. <c>lr-sweep</c>, <c>nd-grid</c>).</param>
/// <param name="Setting">Setting label.</param>
/// <param name="Model">Model configuration.</param>
/// <param name="Training">Training options (learning rate, seed, ...).</param>
public sealed record ProxyRunSpec(string Experiment, string Setting, ProxyModelConfig Model, ProxyTrainingOptions Training)
{
    /// <summary>The run's key in a run store: a hash of the full configuration.</summary>
    public string Key => RunKeys.Of(new ProxyRunIdentity(Experiment, Setting, Model, Training), ProxiesJson.Default.ProxyRunIdentity);
}

/// <summary>What a proxy run's key hashes: its labels and full configuration (the JSON of the key's earlier anonymous type).</summary>
/// <param name="Experiment">Experiment label.</param>
/// <param name="Setting">Setting label.</param>
/// <param name="Model">Model configuration.</param>
/// <param name="Training">Training options.</param>
public sealed record ProxyRunIdentity(string Experiment, string Setting, ProxyModelConfig Model, ProxyTrainingOptions Training);

/// <summary>
/// A grid of model widths x learning rates x settings x seeds (Wortsman et al.'s LR sweeps). Heads scale with width
/// at a fixed head size (as in the paper), so widths must be multiples of <see cref="HeadDim"/>.
/// </summary>
public sealed record ProxySweepSpec
{
    /// <summary>Experiment label stored in every record.</summary>
    public string Experiment { get; init; } = "lr-sweep";

    /// <summary>Model widths.</summary>
    public int[] Widths { get; init; } = [32, 64];

    /// <summary>Blocks per model.</summary>
    public int Depth { get; init; } = 2;

    /// <summary>Head size; heads = width / head size.</summary>
    public int HeadDim { get; init; } = 16;

    /// <summary>Base model options (width, depth and heads are replaced per run).</summary>
    public ProxyModelConfig BaseModel { get; init; } = new();

    /// <summary>Peak learning rates.</summary>
    public double[] LearningRates { get; init; } = [1e-3, 1e-2];

    /// <summary>Settings (interventions).</summary>
    public ProxySetting[] Settings { get; init; } = [new()];

    /// <summary>Seeds.</summary>
    public long[] Seeds { get; init; } = [0];

    /// <summary>Base training options (learning rate and seed are replaced per run).</summary>
    public ProxyTrainingOptions Training { get; init; } = new();

    /// <summary>Log-spaced learning rates: <paramref name="count"/> values from <paramref name="min"/> to <paramref name="max"/>.</summary>
    public static double[] LogSpaced(double min, double max, int count)
    {
        if (!double.IsFinite(min) || min <= 0) throw new ArgumentException($"The smallest learning rate must be positive; got {min}.", nameof(min));
        if (!double.IsFinite(max) || max < min) throw new ArgumentException($"The largest learning rate must be at least the smallest ({min}); got {max}.", nameof(max));
        if (count <= 0) throw new ArgumentException($"The number of learning rates must be positive; got {count}.", nameof(count));
        if (count == 1) return [min];
        return Enumerable.Range(0, count).Select(i => Math.Exp(Math.Log(min) + (Math.Log(max) - Math.Log(min)) * i / (count - 1))).ToArray();
    }

    /// <summary>Every run of the grid (settings outermost, then widths, learning rates, seeds); validates all inputs first.</summary>
    public IReadOnlyList<ProxyRunSpec> Runs()
    {
        if (Widths.Length == 0) throw new ArgumentException("Give at least one width.", nameof(Widths));
        if (LearningRates.Length == 0) throw new ArgumentException("Give at least one learning rate.", nameof(LearningRates));
        if (Settings.Length == 0) throw new ArgumentException("Give at least one setting.", nameof(Settings));
        if (Seeds.Length == 0) throw new ArgumentException("Give at least one seed.", nameof(Seeds));
        if (HeadDim <= 0) throw new ArgumentException($"HeadDim must be positive; got {HeadDim}.", nameof(HeadDim));
        foreach (double lr in LearningRates)
            if (!double.IsFinite(lr) || lr <= 0) throw new ArgumentException($"Learning rates must be positive finite numbers; got {lr}.", nameof(LearningRates));
        foreach (int w in Widths)
        {
            if (w <= 0) throw new ArgumentException($"Widths must be positive integers; got {w}.", nameof(Widths));
            if (w % HeadDim != 0) throw new ArgumentException($"Width {w} is not a multiple of the head size {HeadDim}: heads = width / head size must be an integer. Use widths that are multiples of {HeadDim} or change --head-dim.", nameof(Widths));
        }
        var runs = new List<ProxyRunSpec>();
        foreach (var setting in Settings)
            foreach (int width in Widths)
                foreach (double lr in LearningRates)
                    foreach (long seed in Seeds)
                    {
                        var model = BaseModel with { Width = width, Depth = Depth, Heads = width / HeadDim, HeadDim = null, ContextLength = Math.Max(BaseModel.ContextLength, Training.SequenceLength) };
                        var training = Training with { LearningRate = lr, Seed = seed, MinLearningRate = Math.Min(Training.MinLearningRate, lr) };
                        var (m, t) = setting.Apply(model, training);
                        m.Validate();
                        t.Validate();
                        runs.Add(new ProxyRunSpec(Experiment, setting.Name, m, t));
                    }
        return runs;
    }
}

/// <summary>
/// Runs lists of proxy runs against a <see cref="RunStore"/>: finished keys are skipped, each run is appended (and
/// flushed) as soon as it ends, diverged runs are recorded as diverged, and a cancelled run leaves nothing behind.
/// </summary>
public static class ProxySweep
{
    /// <summary>The run-store kind used by proxy sweeps.</summary>
    public const string StoreKind = "proxy-sweep";

    /// <summary>Opens (or creates) a proxy run store for <paramref name="corpus"/>; another corpus is refused with a clear message.</summary>
    public static RunStore OpenStore(string path, TextCorpus corpus, string name = "proxies") => RunStore.Open(path, StoreKind, StoreIdentity(corpus, name));

    /// <summary>The identity of a proxy run store: the sweep's name and the corpus (name and sizes).</summary>
    public static JsonObject StoreIdentity(TextCorpus corpus, string name)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        return new JsonObject
        {
            ["name"] = name,
            ["corpus"] = corpus.Name,
            ["trainTokens"] = corpus.TrainTokens,
            ["validationTokens"] = corpus.ValidationTokens,
        };
    }

    /// <summary>
    /// Runs every spec not yet in <paramref name="store"/> (<see cref="RunSweep.Run"/>). Runs that share a shape
    /// (<see cref="ProxyTrainer.ShapeKey"/>: same model, steps, batch, sequence, ...; they may differ in learning
    /// rate, schedule, warm-up, weight decay, z-loss and seed) train together as one ensemble of at most
    /// <paramref name="maxEnsembleSize"/> members (<see cref="ProxyTrainer"/>), the rest one by one (ensembles of
    /// one). A run's record does not depend on the grouping (timings aside): it equals the run trained alone. <paramref name="progress"/>
    /// (optional) is told runs done/total and the current step; returns the records of all <paramref name="runs"/>
    /// (old and new), in order. <paramref name="maxEnsembleSize"/> 1 trains every run separately. <paramref name="workers"/>:
    /// sub-ensembles of each ensemble trained at once on their own threads (<see cref="ProxyTrainer"/>); by
    /// default, on a CPU, the cores not used by LibTorch's own threads (cores / <c>torch.get_num_threads()</c>: with one
    /// LibTorch thread on 2 cores, 2 workers), and 1 on a GPU.
    /// </summary>
    public static IReadOnlyList<JsonObject> Run(IReadOnlyList<ProxyRunSpec> runs, TextCorpus corpus, Device device, RunStore store,
        IProgressSink? progress = null, CancellationToken cancellationToken = default, int maxEnsembleSize = 16, int? workers = null)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(store);
        if (maxEnsembleSize < 1) throw new ArgumentException($"maxEnsembleSize must be at least 1; got {maxEnsembleSize}.", nameof(maxEnsembleSize));
        if (workers is < 1) throw new ArgumentException($"workers must be at least 1; got {workers}.", nameof(workers));
        int threads = workers ?? Workers.DefaultFor(device);
        var clock = Stopwatch.StartNew();
        // Ensembles: runs of one shape, in chunks of at most maxEnsembleSize, in the order they first appear.
        var group = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var chunk in runs.Where(r => !store.Contains(r.Key)).DistinctBy(r => r.Key)
                     .GroupBy(r => ProxyTrainer.ShapeKey(r.Model, r.Training))
                     .SelectMany(g => g.Chunk(maxEnsembleSize)))
        {
            int id = group.Count == 0 ? 0 : group.Values.Max() + 1;
            foreach (var r in chunk) group[r.Key] = id;
        }
        int done = runs.Count(r => store.Contains(r.Key));
        string best = "";
        var records = RunSweep.Run(runs, r => r.Key, store, members =>
        {
            var first = members[0];
            string label = members.Count == 1
                ? $"{first.Setting} width {first.Model.Width} lr {first.Training.LearningRate:G3} seed {first.Training.Seed}"
                : $"ensemble of {members.Count} (width {first.Model.Width}, lr {members.Min(m => m.Training.LearningRate):G3}-{members.Max(m => m.Training.LearningRate):G3})";
            // A run's numbers do not depend on which runs share its ensemble (bit-identical for K = 1, 2, 5 with one
            // thread), so a sweep split into shards (Sweeps/, Slurm) gives exactly the records of the same sweep run here.
            var steps = progress is null ? null : new StepProgress(progress, () => done, () => label, () => best);
            var results = ProxyTrainer.Train(members.Select(m => (m.Model, m.Training)).ToList(), corpus, device, threads, steps, cancellationToken);
            done += members.Count;
            var last = results[^1];
            best = last.Diverged ? $"last: {label} diverged" : $"last: {label} -> {results.Where(r => !r.Diverged).Min(r => r.FinalLoss):F3}";
            return members.Select((m, i) => results[i].ToRecord(m.Key, m.Experiment, m.Setting)).ToList();
        }, r => group.TryGetValue(r.Key, out int id) ? id : -1, progress, cancellationToken);
        progress?.Complete($"{runs.Count} runs in {clock.Elapsed.TotalSeconds:F0} s (finished runs are skipped on restart)");
        return records;
    }

    // A group's step reports shown as the sweep's: runs done so far, the group's label and its step.
    private sealed class StepProgress(IProgressSink sweep, Func<int> runsDone, Func<string> label, Func<string> best) : IProgressSink
    {
        public void Report(int done, string? status = null, string? bestSoFar = null) => sweep.Report(runsDone(), $"{label()}: {status}", best());

        public void Complete(string? status = null) { }
    }
}

/// <summary>
/// Learning-rate sensitivity (Wortsman et al. 2023, §3): the mean over the learning-rate grid of
/// min(L(eta), L0) - L*, with L0 the loss at initialisation and L* the best loss in the grid. Diverged runs (NaN)
/// count as L0.
/// </summary>
public static class LrSensitivity
{
    /// <summary>Sensitivity of final losses over a learning-rate grid (one loss per rate; NaN for diverged).</summary>
    public static double Compute(IReadOnlyList<double> finalLosses, double initialLoss)
    {
        ArgumentNullException.ThrowIfNull(finalLosses);
        if (finalLosses.Count == 0) throw new ArgumentException("LR sensitivity needs at least one learning rate.", nameof(finalLosses));
        if (!double.IsFinite(initialLoss)) throw new ArgumentException($"The initial loss must be finite; got {initialLoss}.", nameof(initialLoss));
        var clipped = finalLosses.Select(l => double.IsFinite(l) ? Math.Min(l, initialLoss) : initialLoss).ToList();
        double best = clipped.Min();
        return clipped.Average() - best;
    }
}

/// <summary>
/// Run lists that produce the data of the scaling-law fitting issue, all recorded with plain numeric fields
/// (<c>parameters</c>, <c>tokens</c>, <c>finalLoss</c>, <c>learningRate</c>, <c>batchSize</c>, <c>curve.step</c>/<c>lr</c>/<c>loss</c>).
/// </summary>
public static class ProxyExperiments
{
    /// <summary>An (N, D) grid: each width trained for each step count (tokens D = steps x batch x sequence), experiment <c>nd-grid</c>.</summary>
    public static IReadOnlyList<ProxyRunSpec> NdGrid(int[] widths, int[] steps, ProxyTrainingOptions training, int depth = 2, int headDim = 16, ProxyModelConfig? baseModel = null)
    {
        ArgumentNullException.ThrowIfNull(steps);
        if (steps.Length == 0 || steps.Any(s => s <= 0)) throw new ArgumentException("Step counts must be positive integers (at least one).", nameof(steps));
        return steps.SelectMany(s => new ProxySweepSpec
        {
            Experiment = "nd-grid", Widths = widths, Depth = depth, HeadDim = headDim, BaseModel = baseModel ?? new(),
            LearningRates = [training.LearningRate], Seeds = [training.Seed],
            Training = training with { Steps = s, WarmupSteps = Math.Min(training.WarmupSteps, s), ValidationSteps = [] },
        }.Runs()).ToList();
    }

    /// <summary>The same model and peak rate under constant, cosine and warm-up-stable-decay schedules (experiment <c>schedule-curves</c>).</summary>
    public static IReadOnlyList<ProxyRunSpec> ScheduleCurves(int width, ProxyTrainingOptions training, int depth = 2, int headDim = 16, ProxyModelConfig? baseModel = null) =>
        new ProxySweepSpec
        {
            Experiment = "schedule-curves", Widths = [width], Depth = depth, HeadDim = headDim, BaseModel = baseModel ?? new(),
            LearningRates = [training.LearningRate], Seeds = [training.Seed], Training = training,
            Settings = [new ProxySetting { Name = "constant", Schedule = ScheduleShape.Constant },
                        new ProxySetting { Name = "cosine", Schedule = ScheduleShape.Cosine },
                        new ProxySetting { Name = "wsd", Schedule = ScheduleShape.WarmupStableDecay }],
        }.Runs();

    /// <summary>
    /// A learning-rate x batch-size grid at a fixed token budget (steps = tokens / (batch x sequence)), experiment
    /// <c>lr-batch</c>.
    /// </summary>
    public static IReadOnlyList<ProxyRunSpec> LrBatchGrid(int width, double[] learningRates, int[] batchSizes, long tokenBudget, ProxyTrainingOptions training, int depth = 2, int headDim = 16, ProxyModelConfig? baseModel = null)
    {
        ArgumentNullException.ThrowIfNull(batchSizes);
        if (batchSizes.Length == 0 || batchSizes.Any(b => b <= 0)) throw new ArgumentException("Batch sizes must be positive integers (at least one).", nameof(batchSizes));
        if (tokenBudget <= 0) throw new ArgumentException($"The token budget must be positive; got {tokenBudget}.", nameof(tokenBudget));
        return batchSizes.SelectMany(b =>
        {
            int steps = (int)Math.Max(1, tokenBudget / ((long)b * training.SequenceLength));
            return new ProxySweepSpec
            {
                Experiment = "lr-batch", Widths = [width], Depth = depth, HeadDim = headDim, BaseModel = baseModel ?? new(),
                LearningRates = learningRates, Seeds = [training.Seed],
                Training = training with { BatchSize = b, Steps = steps, WarmupSteps = Math.Min(training.WarmupSteps, steps), ValidationSteps = [], LogEvery = Math.Max(1, Math.Min(training.LogEvery, steps)) },
            }.Runs();
        }).ToList();
    }
}
