using ScalingInteractive.Checkpoints;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;

/// <summary>
/// The full-vs-LoRA experiment: pre-train a proxy transformer on A, fine-tune it on B with full fine-tuning and with
/// LoRA of several ranks (with and without rsLoRA) under the same optimiser (AdamW), schedule (warm-up + cosine) and
/// batches, then measure target loss, forgetting on A, intruder dimensions and the mitigation; finally train a few
/// methods on the sequence B -> C -> D. The experiment is data (<see cref="LoraExperimentSpec"/>: pre-training, target
/// runs and task sequences as three stages of keyed runs); every run is appended to a <see cref="RunStore"/> as it ends,
/// and the pre-trained weights are the store's checkpoint of the pre-training run's key, so an interrupted experiment
/// resumes where it stopped.
/// </summary>
public static partial class LoraExperiment
{
    /// <summary>Store kind.</summary>
    public const string StoreKind = "lora-experiment";

    /// <summary>
    /// Runs (or resumes) the experiment in this process: as <see cref="LoraExperimentSpec"/> (<see cref="LoraExperimentSpec.InProcess"/>
    /// on these corpora) whose stages run in order into the store, then reads the result back
    /// (<see cref="LoraExperimentSpec.Collect"/>). A store written by an earlier version keeps its target runs and task
    /// sequences. A store file without a pre-training run adopts the weights it finds at <c>STORE.pretrained.safetensors</c>
    /// (where earlier versions kept them; also how a store with the same pre-training settings shares another's base,
    /// copied from <see cref="PretrainedCheckpointPath"/>) rather than pre-training again.
    /// </summary>
    /// <param name="options">Settings.</param>
    /// <param name="corpora">Corpora A, B, C, D.</param>
    /// <param name="device">Device for every tensor.</param>
    /// <param name="storePath">Run store file (its checkpoints live in <c>STORE.checkpoints</c>); null: a temporary store, deleted at the end.</param>
    /// <param name="progress">Told (runs done, status) as runs start and end (the package's one progress interface); the total is <see cref="RunCount"/>.</param>
    /// <param name="cancellationToken">Checked every step.</param>
    public static LoraExperimentResult Run(LoraExperimentOptions options, LoraExperimentCorpora corpora, Device device, string? storePath = null,
        IProgressSink? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(corpora);
        options.Validate();
        if (corpora.Tasks.Count == 0) throw new ArgumentException("At least one fine-tuning task (B) is needed.", nameof(corpora));
        return Run(LoraExperimentSpec.InProcess(options, corpora), device, storePath, progress, options.Workers, cancellationToken);
    }

    /// <summary>
    /// Runs (or resumes) <paramref name="experiment"/> in this process: every stage in order into a single-file store
    /// (<see cref="Experiments.RunShard"/>), then its result read back from the store. The same experiment runs as a spec
    /// (Sweeps: <c>SweepSpec.For(experiment)</c>, locally or as Slurm job arrays) with the same records.
    /// </summary>
    /// <param name="experiment">The experiment.</param>
    /// <param name="device">Device for every tensor.</param>
    /// <param name="storePath">Run store file (its checkpoints live in <c>STORE.checkpoints</c>); null: a temporary store, deleted at the end.</param>
    /// <param name="progress">Told (runs done, status); the total is the experiment's run count.</param>
    /// <param name="workers">Target runs trained at once on threads (null: <see cref="Runs.Workers.DefaultFor"/>); records do not depend on it.</param>
    /// <param name="cancellationToken">Checked every step.</param>
    public static LoraExperimentResult Run(LoraExperimentSpec experiment, Device device, string? storePath = null, IProgressSink? progress = null,
        int? workers = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        ArgumentNullException.ThrowIfNull(device);
        if (workers is < 1) throw new ArgumentException($"Workers must be at least 1; got {workers}.", nameof(workers));
        experiment.Validate();
        string? temporary = null;
        try
        {
            RunStore store;
            if (storePath is null)
            {
                temporary = Directory.CreateTempSubdirectory("si-lora-").FullName;
                store = RunStore.OpenFolder(temporary, StoreKind, experiment.StoreIdentity(), "shard-0000.jsonl");
            }
            else store = RunStore.Open(storePath, StoreKind, experiment.StoreIdentity());
            experiment.RunShard(new ExperimentContext(store, device, workers, progress, cancellationToken));
            progress?.Report(experiment.Runs.Count, "done");
            return Collect(experiment, store);
        }
        finally
        {
            if (temporary is not null)
                try { Directory.Delete(temporary, recursive: true); }
                catch (IOException) { } // a temporary folder left behind costs nothing
        }
    }

    /// <summary>
    /// The pre-trained weights of the experiment whose single-file store is <paramref name="storePath"/> (written by
    /// <see cref="Run(LoraExperimentOptions, LoraExperimentCorpora, Device, string?, IProgressSink?, CancellationToken)"/>
    /// as run <see cref="LoraExperimentSpec.PretrainKey"/>): <c>STORE.checkpoints/KEY.safetensors</c>.
    /// </summary>
    public static string PretrainedCheckpointPath(string storePath) => ExperimentContext.CheckpointPathIn(storePath, folderStore: false, LoraExperimentSpec.PretrainKey);

    // Runs of the experiment already in the store (the progress count a stage starts from).
    private static int DoneIn(LoraExperimentSpec experiment, RunStore store) => experiment.Runs.Count(r => store.Contains(r.Key));

    /// <summary>
    /// Stage 0: pre-trains on A (unless the store holds the run), writes the weights to the checkpoint of
    /// <see cref="LoraExperimentSpec.PretrainKey"/> (aside, then renamed into place) and appends the
    /// <see cref="LoraPretrainRecord"/> after it.
    /// </summary>
    internal static void RunPretrainStage(LoraExperimentSpec experiment, ExperimentContext context)
    {
        var store = context.Store;
        string key = LoraExperimentSpec.PretrainKey;
        int done = DoneIn(experiment, store);
        if (store.Contains(key))
        {
            context.Progress?.Report(done, "pre-training: already in the store");
            return;
        }
        var options = experiment.Options;
        var corpora = experiment.LoadCorpora();
        var device = context.Device;
        context.Progress?.Report(done, "pre-training on " + corpora.Pretrain.Name);
        var clock = Stopwatch.StartNew();
        // Earlier versions kept a single-file store's pre-trained weights at FILE.pretrained.safetensors: adopted, not trained again.
        var adopted = store.IsFolder ? null : ReadLegacyPretrained(store.Path + ".pretrained.safetensors", options, device);
        TrainingOutcome? outcome = null;
        var weights = adopted ?? PretrainWeights(options, corpora.Pretrain, device, context.CancellationToken, out outcome);
        var evaluation = EvaluationBatches(options, corpora, device);
        try
        {
            double[] losses;
            using (var model = NewModel(options, device, weights)) losses = evaluation.Select(e => Evaluate(model, e)).ToArray();
            string checkpoint = context.CheckpointPath(key);
            Directory.CreateDirectory(Path.GetDirectoryName(checkpoint)!);
            string partial = $"{checkpoint}.{Environment.ProcessId}.partial";
            SafetensorsWriter.Write(partial, weights, new Dictionary<string, string> { ["steps"] = options.PretrainSteps.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            File.Move(partial, checkpoint, overwrite: true);
            store.Append(new LoraPretrainRecord
            {
                Key = key, Corpus = corpora.Pretrain.Name, Steps = options.PretrainSteps, LearningRate = options.PretrainLearningRate,
                TrainLoss = outcome?.TailLoss ?? double.NaN, Diverged = (outcome?.Diverged ?? false) || losses.Any(l => !double.IsFinite(l)),
                PretrainLoss = losses[0], TaskLosses = losses[1..], Checkpoint = Path.GetFileName(checkpoint), Adopted = adopted is not null,
                Seconds = clock.Elapsed.TotalSeconds,
            }, LoraJson.Default.LoraPretrainRecord);
            context.Progress?.Report(done + 1, "pre-training done");
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
            Dispose(evaluation);
        }
    }

    /// <summary>Stage 1: the target runs among <paramref name="keys"/> that the store lacks, on the context's worker threads.</summary>
    internal static void RunTargetStage(LoraExperimentSpec experiment, IReadOnlySet<string> keys, ExperimentContext context)
    {
        var store = context.Store;
        var jobs = experiment.TargetJobs().Where(j => keys.Contains(j.Key)).ToList();
        var todo = jobs.Where(j => !store.Contains(j.Key)).ToList();
        int done = DoneIn(experiment, store);
        var progress = context.Progress;
        if (jobs.Count > todo.Count) progress?.Report(done, $"{jobs.Count - todo.Count} of {jobs.Count} target runs already in the store");
        if (todo.Count == 0) return;
        var options = experiment.Options;
        var corpora = experiment.LoadCorpora();
        var device = context.Device;
        var (pretrainRecord, pretrained) = LoadPretrained(context);
        var evaluation = EvaluationBatches(options, corpora, device);
        try
        {
            // Each run is appended to the store as it ends; Collect reads them back in the grid's order.
            var gate = new object();
            Workers.Run(todo.Count, context.WorkerCount, (i, token) =>
            {
                var (rank, rs, lr, key) = todo[i];
                string method = MethodName(rank, rs);
                lock (gate) progress?.Report(done, $"{method}, lr {lr:G3}");
                var record = FineTuneOnce(options, corpora, evaluation, device, pretrained, rank, rs, lr, pretrainRecord.PretrainLoss, token) with { Key = key, Method = method };
                store.Append(record, LoraJson.Default.LoraRunRecord);
                lock (gate)
                {
                    done++;
                    progress?.Report(done, $"{method}, lr {lr:G3} done");
                }
            }, context.CancellationToken);
        }
        finally
        {
            foreach (var t in pretrained.Values) t.Dispose();
            Dispose(evaluation);
        }
    }

    /// <summary>
    /// Stage 2: the task sequences among <paramref name="keys"/> that the store lacks, each at the learning rate selected
    /// from stage 1's records (full fine-tuning's best; LoRA's closest to it in target loss). A sequence an earlier version
    /// recorded under its old key (with the rate) is adopted under the new key, not trained again.
    /// </summary>
    internal static void RunSequenceStage(LoraExperimentSpec experiment, IReadOnlySet<string> keys, ExperimentContext context)
    {
        var store = context.Store;
        var jobs = experiment.SequenceJobs().Where(j => keys.Contains(j.Key)).ToList();
        var todo = jobs.Where(j => !store.Contains(j.Key)).ToList();
        int done = DoneIn(experiment, store);
        var progress = context.Progress;
        if (jobs.Count > todo.Count) progress?.Report(done, $"{jobs.Count - todo.Count} of {jobs.Count} task sequences already in the store");
        if (todo.Count == 0) return;
        var options = experiment.Options;
        var targets = experiment.TargetJobs();
        var missing = targets.Where(j => !store.Contains(j.Key)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"Run store '{store.Path}' lacks {missing.Count} of the {targets.Count} target runs of stage 1 (e.g. {MethodName(missing[0].Rank, missing[0].Rs)} at lr {missing[0].Lr:G3}, " +
                                           $"key {missing[0].Key}); the task sequences of stage 2 take their learning rates from all of them, so run stage 1 first.");
        var selected = new LoraExperimentResult(options, "", [], double.NaN, ReadTargets(experiment, store), []).Selected;
        var corpora = experiment.LoadCorpora();
        var device = context.Device;
        var (_, pretrained) = LoadPretrained(context);
        var evaluation = EvaluationBatches(options, corpora, device);
        try
        {
            foreach (var (rank, key) in todo)
            {
                context.CancellationToken.ThrowIfCancellationRequested();
                var chosen = selected.FirstOrDefault(r => r.Rank == rank && !r.RsLora);
                double lr = chosen?.LearningRate ?? (rank == 0 ? options.FullLearningRates[0] : options.LoraLearningRates[0]);
                string method = MethodName(rank, false);
                progress?.Report(done, $"sequence, {method}, lr {lr:G3}");
                string earlierKey = RunKeys.Of(new LoraSequenceKey("sequence", rank, lr), LoraJson.Default.LoraSequenceKey);
                var record = store.Find(earlierKey)?.Deserialize(LoraJson.Default.LoraSequenceRecord) is { } earlier
                    ? earlier with { Key = key }
                    : Sequence(options, corpora, evaluation, device, pretrained, rank, lr, context.CancellationToken) with { Key = key, Method = method };
                store.Append(record, LoraJson.Default.LoraSequenceRecord);
                progress?.Report(++done, $"sequence, {method} done");
            }
        }
        finally
        {
            foreach (var t in pretrained.Values) t.Dispose();
            Dispose(evaluation);
        }
    }

    /// <summary>The experiment's result read from <paramref name="store"/>: the pre-training record, the target runs there (in the grid's order), the task sequences there.</summary>
    internal static LoraExperimentResult Collect(LoraExperimentSpec experiment, RunStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        var pretrain = store.Find(LoraExperimentSpec.PretrainKey)?.Deserialize(LoraJson.Default.LoraPretrainRecord)
            ?? throw new InvalidDataException($"Run store '{store.Path}' has no pre-training run (key {LoraExperimentSpec.PretrainKey}): run the experiment (its stage 0) first.");
        var corpora = experiment.LoadCorpora();
        var sequences = experiment.SequenceJobs().Select(j => store.Find(j.Key)).OfType<JsonObject>()
            .Select(n => n.Deserialize(LoraJson.Default.LoraSequenceRecord)!).ToList();
        return new LoraExperimentResult(experiment.Options, corpora.Pretrain.Name, corpora.Tasks.Select(t => t.Name).ToArray(), pretrain.PretrainLoss,
            ReadTargets(experiment, store), sequences);
    }

    private static List<LoraRunRecord> ReadTargets(LoraExperimentSpec experiment, RunStore store) =>
        experiment.TargetJobs().Select(j => store.Find(j.Key)).OfType<JsonObject>().Select(n => n.Deserialize(LoraJson.Default.LoraRunRecord)!).ToList();

    /// <summary>The pre-training record and weights of the context's store (stage 0's run): a clear error when either is missing.</summary>
    private static (LoraPretrainRecord Record, Dictionary<string, Tensor> Weights) LoadPretrained(ExperimentContext context)
    {
        string key = LoraExperimentSpec.PretrainKey;
        var record = context.Store.Find(key)?.Deserialize(LoraJson.Default.LoraPretrainRecord)
            ?? throw new InvalidDataException($"Run store '{context.Store.Path}' has no pre-training run (key {key}, stage 0); the fine-tuning stages start from its checkpoint, so run stage 0 first.");
        string path = context.CheckpointPath(key);
        if (!File.Exists(path))
            throw new FileNotFoundException($"The pre-training checkpoint '{path}' (run {key}) is missing: the store records the run, and the later stages read its weights from that file. " +
                                            "Restore the file, or delete the run's record from the store to pre-train again.", path);
        using var file = SafetensorsFile.Open(path);
        return (record, file.ToTensors(context.Device));
    }

    private static Dictionary<string, Tensor>? ReadLegacyPretrained(string path, LoraExperimentOptions options, Device device)
    {
        if (!File.Exists(path)) return null;
        using var file = SafetensorsFile.Open(path);
        return file.Metadata.TryGetValue("steps", out var steps) && steps == options.PretrainSteps.ToString(System.Globalization.CultureInfo.InvariantCulture)
            ? file.ToTensors(device) : null;
    }

    /// <summary>The pre-trained weights for the matched-loss controls: stage 0's checkpoint in <paramref name="store"/> (pre-training first if it lacks it), or trained now without a store.</summary>
    private static Dictionary<string, Tensor> PretrainedFor(LoraExperimentOptions options, LoraExperimentCorpora corpora, Device device, RunStore? store, CancellationToken ct)
    {
        if (store is null) return PretrainWeights(options, corpora.Pretrain, device, ct, out _);
        var context = new ExperimentContext(store, device, CancellationToken: ct);
        LoraExperimentSpec.InProcess(options, corpora).RunShard(context, stage: 0);
        return LoadPretrained(context).Weights;
    }

    private static void Dispose(List<List<(Tensor, Tensor)>> evaluation)
    {
        foreach (var batches in evaluation)
            foreach (var (x, y) in batches) { x.Dispose(); y.Dispose(); }
    }

    /// <summary>
    /// Matched-loss control: fine-tunes one method on the target B from the experiment's pre-trained base, with the
    /// same initialisation, batches, optimiser and schedule as its run in <see cref="Run(LoraExperimentOptions, LoraExperimentCorpora, Device, string?, IProgressSink?, CancellationToken)"/> (the same seeds: without
    /// levels it trains exactly that run), evaluates the target validation loss every <paramref name="evaluateEvery"/>
    /// steps and at the last step, and measures the model (loss on A, intruders) the first time the target loss is at
    /// or below each level. Training stops once every level is reached (<see cref="TrainerHooks.StopAfter"/>), so a
    /// snapshot is the method early-stopped at that target loss; a level never reached has no snapshot. The record is
    /// kept in the experiment's store (the same settings: it reads the pre-trained base from the checkpoint of the store's
    /// pre-training run, pre-training first when the store lacks it) under a key of method, rate, levels and interval, so a re-run reads it back.
    /// </summary>
    /// <param name="options">The experiment's settings.</param>
    /// <param name="corpora">Its corpora.</param>
    /// <param name="device">Device for every tensor.</param>
    /// <param name="storePath">The experiment's run store (null: in memory, pre-training again).</param>
    /// <param name="rank">LoRA rank, or 0 for full fine-tuning.</param>
    /// <param name="rsLora">Rank-stabilised scaling (LoRA only).</param>
    /// <param name="learningRate">Peak learning rate.</param>
    /// <param name="levels">Target-loss levels (any order); empty runs the whole schedule and records the trajectory.</param>
    /// <param name="evaluateEvery">Steps between evaluations (the overshoot below a level is at most what the loss falls in this many steps).</param>
    /// <param name="cancellationToken">Checked every step.</param>
    public static LoraTrajectoryRecord FineTuneToLosses(LoraExperimentOptions options, LoraExperimentCorpora corpora, Device device, string? storePath,
        int rank, bool rsLora, double learningRate, IReadOnlyList<double> levels, int evaluateEvery = 5, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(corpora);
        ArgumentNullException.ThrowIfNull(levels);
        options.Validate();
        if (corpora.Tasks.Count == 0) throw new ArgumentException("At least one fine-tuning task (B) is needed.", nameof(corpora));
        if (rank < 0 || (rank == 0 && rsLora)) throw new ArgumentException($"Rank {rank} must be 0 (full fine-tuning, no rsLoRA) or a LoRA rank of at least 1.", nameof(rank));
        if (!(learningRate > 0)) throw new ArgumentException($"Learning rate {learningRate} must be positive.", nameof(learningRate));
        if (levels.Any(l => !double.IsFinite(l))) throw new ArgumentException("Levels must be finite losses.", nameof(levels));
        if (evaluateEvery < 1) throw new ArgumentException($"evaluateEvery must be at least 1; got {evaluateEvery}.", nameof(evaluateEvery));
        double[] asked = levels.ToArray();
        var store = storePath is null ? null : RunStore.Open(storePath, StoreKind, Identity(options, corpora));
        string key = RunKeys.Of(new LoraTrajectoryKey("trajectory", rank, rsLora, learningRate, asked, evaluateEvery), LoraJson.Default.LoraTrajectoryKey);
        string method = MethodName(rank, rsLora);
        return store.GetOrRun(key, () =>
        {
            var evaluation = EvaluationBatches(options, corpora, device);
            var pretrained = PretrainedFor(options, corpora, device, store, cancellationToken);
            try
            {
                return Trajectory(options, corpora, evaluation, device, pretrained, rank, rsLora, learningRate, asked, evaluateEvery, cancellationToken)
                    with { Key = key, Method = method };
            }
            finally
            {
                foreach (var t in pretrained.Values) t.Dispose();
                foreach (var batches in evaluation)
                    foreach (var (x, y) in batches) { x.Dispose(); y.Dispose(); }
            }
        }, LoraJson.Default.LoraTrajectoryRecord, out _);
    }

    /// <summary>
    /// Matched-loss control for the task sequence: trains one method on B -> C -> D from the experiment's pre-trained
    /// base, as <see cref="Run(LoraExperimentOptions, LoraExperimentCorpora, Device, string?, IProgressSink?, CancellationToken)"/>'s sequences do (same seeds, optimiser, schedule of
    /// <see cref="LoraExperimentOptions.SequentialSteps"/> per task), but stops each task at the first evaluation
    /// (every <paramref name="evaluateEvery"/> steps) whose validation loss on that task is at or below its level, e.g.
    /// the loss another method reached on it. Losses on every task and intruders are measured after each task; a
    /// task that never reaches its level runs all its steps. Kept in the experiment's store like
    /// <see cref="FineTuneToLosses"/>.
    /// </summary>
    /// <param name="options">The experiment's settings (its <see cref="LoraExperimentOptions.SequentialSteps"/> must be positive).</param>
    /// <param name="corpora">Its corpora (at least two tasks).</param>
    /// <param name="device">Device for every tensor.</param>
    /// <param name="storePath">The experiment's run store (null: in memory, pre-training again).</param>
    /// <param name="rank">LoRA rank, or 0 for full fine-tuning.</param>
    /// <param name="learningRate">Peak learning rate of every task.</param>
    /// <param name="levels">One loss level per task, in the order of <see cref="LoraExperimentCorpora.Tasks"/>.</param>
    /// <param name="evaluateEvery">Steps between evaluations of the current task's loss.</param>
    /// <param name="cancellationToken">Checked every step.</param>
    public static LoraSequenceRecord SequenceToLosses(LoraExperimentOptions options, LoraExperimentCorpora corpora, Device device, string? storePath,
        int rank, double learningRate, IReadOnlyList<double> levels, int evaluateEvery = 1, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(corpora);
        ArgumentNullException.ThrowIfNull(levels);
        options.Validate();
        if (options.SequentialSteps < 1 || corpora.Tasks.Count < 2) throw new ArgumentException("A task sequence needs SequentialSteps > 0 and at least two tasks.", nameof(options));
        if (levels.Count != corpora.Tasks.Count || levels.Any(l => !double.IsFinite(l)))
            throw new ArgumentException($"One finite level per task is needed: {corpora.Tasks.Count} tasks, {levels.Count} levels.", nameof(levels));
        if (rank < 0) throw new ArgumentException($"Rank {rank} must be 0 (full fine-tuning) or a LoRA rank of at least 1.", nameof(rank));
        if (!(learningRate > 0)) throw new ArgumentException($"Learning rate {learningRate} must be positive.", nameof(learningRate));
        if (evaluateEvery < 1) throw new ArgumentException($"evaluateEvery must be at least 1; got {evaluateEvery}.", nameof(evaluateEvery));
        double[] asked = levels.ToArray();
        var store = storePath is null ? null : RunStore.Open(storePath, StoreKind, Identity(options, corpora));
        string key = RunKeys.Of(new LoraSequenceToLossesKey("sequence-to-losses", rank, learningRate, asked, evaluateEvery), LoraJson.Default.LoraSequenceToLossesKey);
        return store.GetOrRun(key, () =>
        {
            var evaluation = EvaluationBatches(options, corpora, device);
            var pretrained = PretrainedFor(options, corpora, device, store, cancellationToken);
            try
            {
                return Sequence(options, corpora, evaluation, device, pretrained, rank, learningRate, cancellationToken, asked, evaluateEvery)
                    with { Key = key, Method = MethodName(rank, false) };
            }
            finally
            {
                foreach (var t in pretrained.Values) t.Dispose();
                foreach (var batches in evaluation)
                    foreach (var (x, y) in batches) { x.Dispose(); y.Dispose(); }
            }
        }, LoraJson.Default.LoraSequenceRecord, out _);
    }

    /// <summary>Units of progress of <see cref="Run(LoraExperimentOptions, LoraExperimentCorpora, Device, string?, IProgressSink?, CancellationToken)"/>: pre-training, every fine-tuning run, every task sequence.</summary>
    public static int RunCount(LoraExperimentOptions options, LoraExperimentCorpora corpora)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(corpora);
        int methods = options.Ranks.Count * (options.IncludeRsLora ? 2 : 1);
        return 1 + options.FullLearningRates.Count + methods * options.LoraLearningRates.Count +
               (options.SequentialSteps > 0 && corpora.Tasks.Count > 1 ? 1 + options.SequentialRanks.Count : 0);
    }

    /// <summary>"full", "LoRA r=8" or "rsLoRA r=8".</summary>
    public static string MethodName(int rank, bool rsLora) => rank == 0 ? "full" : $"{(rsLora ? "rsLoRA" : "LoRA")} r={rank}";

    /// <summary>What a store of this experiment must agree on (every setting that changes a run's numbers but not its key).</summary>
    internal static JsonObject Identity(LoraExperimentOptions options, LoraExperimentCorpora corpora) =>
        JsonSerializer.SerializeToNode(new LoraStoreIdentity(options.Model, options.PretrainSteps, options.PretrainLearningRate, options.FineTuneSteps,
            options.SequentialSteps, options.BatchSize, options.SequenceLength, options.Alpha, options.TargetPatterns, options.MitigationLambda,
            options.EvaluationBatches, options.Seed,
            new LoraIntruderIdentity(options.Intruders.TopK, options.Intruders.Epsilon, options.Intruders.EpsilonSweep, options.Intruders.Side),
            new[] { corpora.Pretrain.Name }.Concat(corpora.Tasks.Select(t => t.Name)).ToArray()), LoraJson.Default.LoraStoreIdentity)!.AsObject();
}
