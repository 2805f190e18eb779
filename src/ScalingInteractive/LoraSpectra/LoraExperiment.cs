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

/// <summary>Settings of the full-vs-LoRA experiment at proxy scale (Shuttleworth et al. 2024, sections 4-6).</summary>
public sealed record LoraExperimentOptions
{
    /// <summary>The proxy transformer (default: width 64, 2 blocks, 4 heads, context 64).</summary>
    public ProxyModelConfig Model { get; init; } = new() { Width = 64, Depth = 2, Heads = 4, ContextLength = 64 };

    /// <summary>
    /// Target-task runs trained at once, each on its own thread (null: on a CPU, cores / LibTorch threads, so that one
    /// LibTorch thread per worker fills the cores; 1 on a GPU). A run's record does not depend on it (timings aside). A
    /// runtime setting of <see cref="LoraExperiment.Run(LoraExperimentOptions, LoraExperimentCorpora, Device, string?, IProgressSink?, CancellationToken)"/>:
    /// not part of a <see cref="LoraExperimentSpec"/>'s JSON or its store's identity (a worker uses <see cref="ExperimentContext.Workers"/>).
    /// </summary>
    public int? Workers { get; init; }

    /// <summary>Pre-training steps on corpus A.</summary>
    public int PretrainSteps { get; init; } = 1500;

    /// <summary>Peak learning rate of pre-training.</summary>
    public double PretrainLearningRate { get; init; } = 3e-3;

    /// <summary>Fine-tuning steps on the target corpus B (the same for every method).</summary>
    public int FineTuneSteps { get; init; } = 400;

    /// <summary>Sequences per batch.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Tokens per sequence.</summary>
    public int SequenceLength { get; init; } = 64;

    /// <summary>
    /// Learning rates tried for full fine-tuning (the one with the lowest target loss is the reference). Fine-tuning rates
    /// sit well below the pre-training rate: with Adam the update per step is about the rate, and a rate near the
    /// pre-training one rewrites the small pre-trained matrices wholesale (measured: every method then shows "intruders").
    /// </summary>
    public IReadOnlyList<double> FullLearningRates { get; init; } = [1e-4, 3e-4];

    /// <summary>Learning rates tried for each LoRA configuration (the one whose target loss is closest to full fine-tuning's is reported).</summary>
    public IReadOnlyList<double> LoraLearningRates { get; init; } = [3e-4, 1e-3, 3e-3];

    /// <summary>LoRA ranks (paper: 1, 4, 8, 16, 64).</summary>
    public IReadOnlyList<int> Ranks { get; init; } = [1, 4, 8, 16, 64];

    /// <summary>Also run every rank with rank-stabilised scaling.</summary>
    public bool IncludeRsLora { get; init; } = true;

    /// <summary>LoRA alpha; null means 2 r.</summary>
    public double? Alpha { get; init; }

    /// <summary>Linear layers adapted by LoRA (and compared for all methods): attention and MLP matrices of every block.</summary>
    public IReadOnlyList<string> TargetPatterns { get; init; } = [@"^blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc|proj))$"];

    /// <summary>Steps per task of the sequence B -> C -> D.</summary>
    public int SequentialSteps { get; init; } = 300;

    /// <summary>LoRA ranks run on the task sequence (full fine-tuning always is); empty skips LoRA sequences.</summary>
    public IReadOnlyList<int> SequentialRanks { get; init; } = [1, 8, 64];

    /// <summary>Fraction of its singular value each intruder direction keeps in the mitigation (paper example 0.75).</summary>
    public double MitigationLambda { get; init; } = 0.75;

    /// <summary>Intruder analysis settings (k = 10, epsilon = 0.5 by default).</summary>
    public IntruderOptions Intruders { get; init; } = new();

    /// <summary>Fixed validation batches per corpus for every loss reported.</summary>
    public int EvaluationBatches { get; init; } = 8;

    /// <summary>Seed of initialisation, LoRA A matrices and batch order.</summary>
    public long Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (Workers is < 1) throw new ArgumentException($"Workers must be at least 1; got {Workers}.", nameof(Workers));
        Model.Validate();
        Intruders.Validate();
        if (PretrainSteps < 1 || FineTuneSteps < 1 || SequentialSteps < 0)
            throw new ArgumentException($"Steps must be positive (pretrain {PretrainSteps}, fine-tune {FineTuneSteps}) and sequential steps non-negative ({SequentialSteps}).", nameof(FineTuneSteps));
        if (BatchSize < 1 || SequenceLength < 2 || SequenceLength > Model.ContextLength)
            throw new ArgumentException($"Batch size {BatchSize} must be positive and sequence length {SequenceLength} in [2, {Model.ContextLength}] (the model's context).", nameof(SequenceLength));
        if (FullLearningRates.Count == 0 || LoraLearningRates.Count == 0 || FullLearningRates.Concat(LoraLearningRates).Any(lr => !(lr > 0)))
            throw new ArgumentException("Learning-rate lists must be non-empty and positive.", nameof(LoraLearningRates));
        if (Ranks.Any(r => r < 1) || SequentialRanks.Any(r => r < 1))
            throw new ArgumentException($"LoRA ranks must be at least 1; got [{string.Join(", ", Ranks.Concat(SequentialRanks))}].", nameof(Ranks));
        if (!(MitigationLambda is >= 0 and <= 1)) throw new ArgumentException($"MitigationLambda {MitigationLambda} must lie in [0, 1].", nameof(MitigationLambda));
        if (EvaluationBatches < 1) throw new ArgumentException("EvaluationBatches must be at least 1.", nameof(EvaluationBatches));
    }
}

/// <summary>The corpora: A (pre-training), B (the fine-tuning target) and the task sequence B -> C -> D.</summary>
/// <param name="Pretrain">Corpus A.</param>
/// <param name="Tasks">Fine-tuning tasks in order; the first is the target B of the main comparison.</param>
public sealed record LoraExperimentCorpora(TextCorpus Pretrain, IReadOnlyList<TextCorpus> Tasks)
{
    /// <summary>
    /// The default corpora: A = the built-in synthetic grammar; B = tiny Shakespeare; C = the same text with every line
    /// reversed character by character (same characters, different sequential structure); D = the text upper-cased
    /// (a different token distribution). All are byte-level, so one proxy model reads them all.
    /// </summary>
    public static LoraExperimentCorpora Default(string shakespearePath, int syntheticBytes = 1_000_000) =>
        LoraExperimentSources.Default(shakespearePath, syntheticBytes).Load();
}

/// <summary>The pre-training run on A (stage 0 of <see cref="LoraExperimentSpec"/>): later stages read its checkpoint by its key.</summary>
public sealed record LoraPretrainRecord
{
    /// <summary>Record kind in the store ("pretrain").</summary>
    public string Kind { get; init; } = "pretrain";

    /// <summary>Run key in the store (<see cref="LoraExperimentSpec.PretrainKey"/>).</summary>
    public string Key { get; init; } = "";

    /// <summary>Name of corpus A.</summary>
    public string Corpus { get; init; } = "";

    /// <summary>Pre-training steps.</summary>
    public int Steps { get; init; }

    /// <summary>Peak learning rate of pre-training.</summary>
    public double LearningRate { get; init; }

    /// <summary>Mean training loss over the last steps (NaN for weights adopted from an earlier version's store).</summary>
    public double TrainLoss { get; init; }

    /// <summary>Validation loss on A of the pre-trained model (every target run's loss on A before fine-tuning).</summary>
    public double PretrainLoss { get; init; }

    /// <summary>Validation loss of the pre-trained model on each task, in order.</summary>
    public double[] TaskLosses { get; init; } = [];

    /// <summary>Training broke the divergence rule, or an evaluation loss was non-finite.</summary>
    public bool Diverged { get; init; }

    /// <summary>File name of the checkpoint (in the store's checkpoint folder: <see cref="ExperimentContext.CheckpointPath"/>).</summary>
    public string Checkpoint { get; init; } = "";

    /// <summary>The weights were adopted from an earlier version's <c>STORE.pretrained.safetensors</c> rather than trained now.</summary>
    public bool Adopted { get; init; }

    /// <summary>Wall-clock seconds of the run.</summary>
    public double Seconds { get; init; }
}

/// <summary>One fine-tuning run on the target task.</summary>
public sealed record LoraRunRecord
{
    /// <summary>Run key in the store.</summary>
    public string Key { get; init; } = "";

    /// <summary>Method label, e.g. "full", "LoRA r=8", "rsLoRA r=8".</summary>
    public string Method { get; init; } = "";

    /// <summary>LoRA rank (0 for full fine-tuning).</summary>
    public int Rank { get; init; }

    /// <summary>Rank-stabilised scaling.</summary>
    public bool RsLora { get; init; }

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; }

    /// <summary>Trainable parameters.</summary>
    public long TrainableParameters { get; init; }

    /// <summary>Validation loss on the target B after fine-tuning.</summary>
    public double TargetLoss { get; init; }

    /// <summary>Validation loss on A of the pre-trained model.</summary>
    public double PretrainLossBefore { get; init; }

    /// <summary>Validation loss on A after fine-tuning (forgetting = after - before).</summary>
    public double PretrainLossAfter { get; init; }

    /// <summary>Training broke the package's <see cref="DivergenceRule"/>, or an evaluation loss was non-finite.</summary>
    public bool Diverged { get; init; }

    /// <summary>Intruder analysis of the adapted matrices (pre-trained vs fine-tuned).</summary>
    public ModelSpectrum? Spectrum { get; init; }

    /// <summary>Intruder directions scaled by the mitigation.</summary>
    public int MitigatedDirections { get; init; }

    /// <summary>Target loss after scaling intruder directions by lambda.</summary>
    public double MitigatedTargetLoss { get; init; }

    /// <summary>Loss on A after the mitigation.</summary>
    public double MitigatedPretrainLoss { get; init; }

    /// <summary>Wall-clock seconds of the run.</summary>
    public double Seconds { get; init; }

    /// <summary>Forgetting: loss on A after minus before.</summary>
    public double Forgetting => PretrainLossAfter - PretrainLossBefore;
}

/// <summary>One method trained on the task sequence, with the loss on every task after each stage.</summary>
public sealed record LoraSequenceRecord
{
    /// <summary>Record kind in the store ("sequence").</summary>
    public string Kind { get; init; } = "sequence";

    /// <summary>Run key in the store.</summary>
    public string Key { get; init; } = "";

    /// <summary>Method label.</summary>
    public string Method { get; init; } = "";

    /// <summary>LoRA rank (0 = full).</summary>
    public int Rank { get; init; }

    /// <summary>Learning rate used (the one selected on the target task).</summary>
    public double LearningRate { get; init; }

    /// <summary>Task names: A (pre-training) then the sequence.</summary>
    public string[] Tasks { get; init; } = [];

    /// <summary>Losses[stage][task]: stage 0 = pre-trained model, stage i = after training on task i.</summary>
    public double[][] Losses { get; init; } = [];

    /// <summary>Intruder dimensions (vs the pre-trained weights, headline epsilon) after each stage.</summary>
    public int[] Intruders { get; init; } = [];

    /// <summary>A loss became non-finite.</summary>
    public bool Diverged { get; init; }

    /// <summary>Per task, the loss on it at which its training stopped early (<see cref="LoraExperiment.SequenceToLosses"/>); null: every task ran all its steps.</summary>
    public double[]? Levels { get; init; }

    /// <summary>Steps taken on each task (empty in records written before this was kept).</summary>
    public int[] StepsPerTask { get; init; } = [];
}

/// <summary>A fine-tuned model measured the first time its target loss reached a level (<see cref="LoraExperiment.FineTuneToLosses"/>).</summary>
public sealed record LoraLossSnapshot
{
    /// <summary>The target loss asked for.</summary>
    public double Level { get; init; }

    /// <summary>Steps taken when the evaluated target loss first was at or below <see cref="Level"/>.</summary>
    public int Step { get; init; }

    /// <summary>Validation loss on the target B at that step (at most <see cref="Level"/>; the gap is the evaluation interval's overshoot).</summary>
    public double TargetLoss { get; init; }

    /// <summary>Validation loss on A of the pre-trained model.</summary>
    public double PretrainLossBefore { get; init; }

    /// <summary>Validation loss on A at that step.</summary>
    public double PretrainLossAfter { get; init; }

    /// <summary>Intruder analysis of the adapted matrices at that step (pre-trained vs the weights then; LoRA merged).</summary>
    public ModelSpectrum? Spectrum { get; init; }

    /// <summary>Forgetting: loss on A at that step minus before fine-tuning.</summary>
    public double Forgetting => PretrainLossAfter - PretrainLossBefore;
}

/// <summary>
/// One method fine-tuned on the target B with its target loss evaluated along the way and snapshots at given loss
/// levels (<see cref="LoraExperiment.FineTuneToLosses"/>): early stopping at a target loss, so that methods can be
/// compared at matched target loss.
/// </summary>
public sealed record LoraTrajectoryRecord
{
    /// <summary>Record kind in the store ("trajectory").</summary>
    public string Kind { get; init; } = "trajectory";

    /// <summary>Run key in the store.</summary>
    public string Key { get; init; } = "";

    /// <summary>Method label.</summary>
    public string Method { get; init; } = "";

    /// <summary>LoRA rank (0 = full fine-tuning).</summary>
    public int Rank { get; init; }

    /// <summary>Rank-stabilised scaling.</summary>
    public bool RsLora { get; init; }

    /// <summary>Peak learning rate (the schedule is the experiment's, over <see cref="LoraExperimentOptions.FineTuneSteps"/>).</summary>
    public double LearningRate { get; init; }

    /// <summary>The target-loss levels asked for.</summary>
    public double[] Levels { get; init; } = [];

    /// <summary>Steps between evaluations of the target loss (the last step is always evaluated).</summary>
    public int EvaluateEvery { get; init; }

    /// <summary>Steps at which the target loss was evaluated.</summary>
    public int[] Steps { get; init; } = [];

    /// <summary>Validation loss on B at each of <see cref="Steps"/>.</summary>
    public double[] TargetLosses { get; init; } = [];

    /// <summary>One snapshot per level reached, in the order reached; a level never reached has none.</summary>
    public LoraLossSnapshot[] Snapshots { get; init; } = [];

    /// <summary>Steps taken: training stops once every level is reached, else runs the whole schedule.</summary>
    public int StepsCompleted { get; init; }

    /// <summary>Training broke the divergence rule or a loss became non-finite.</summary>
    public bool Diverged { get; init; }

    /// <summary>Wall-clock seconds of the run.</summary>
    public double Seconds { get; init; }

    /// <summary>The snapshot at a level (null when it was not reached).</summary>
    public LoraLossSnapshot? At(double level) => Snapshots.FirstOrDefault(x => x.Level == level);
}

/// <summary>
/// The full-vs-LoRA experiment: pre-train a proxy transformer on A, fine-tune it on B with full fine-tuning and with
/// LoRA of several ranks (with and without rsLoRA) under the same optimiser (AdamW), schedule (warm-up + cosine) and
/// batches, then measure target loss, forgetting on A, intruder dimensions and the mitigation; finally train a few
/// methods on the sequence B -> C -> D. The experiment is data (<see cref="LoraExperimentSpec"/>: pre-training, target
/// runs and task sequences as three stages of keyed runs); every run is appended to a <see cref="RunStore"/> as it ends,
/// and the pre-trained weights are the store's checkpoint of the pre-training run's key, so an interrupted experiment
/// resumes where it stopped.
/// </summary>
public static class LoraExperiment
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

    /// <summary>Fixed validation batches per corpus (A, then the tasks): every loss of every run is measured on the same tokens.</summary>
    private static List<List<(Tensor, Tensor)>> EvaluationBatches(LoraExperimentOptions options, LoraExperimentCorpora corpora, Device device)
    {
        var evalRandom = new Random(unchecked((int)options.Seed) ^ 0x0e7a1);
        var allCorpora = new[] { corpora.Pretrain }.Concat(corpora.Tasks).ToList();
        return allCorpora.Select(c => Enumerable.Range(0, options.EvaluationBatches)
            .Select(_ => c.SampleBatch(true, options.BatchSize, options.SequenceLength, evalRandom, device)).ToList()).ToList();
    }

    /// <summary>Pre-trains the base on A (no checkpoint: <see cref="RunPretrainStage"/> keeps it).</summary>
    private static Dictionary<string, Tensor> PretrainWeights(LoraExperimentOptions options, TextCorpus corpus, Device device, CancellationToken ct, out TrainingOutcome? outcome)
    {
        using var model = new ProxyTransformer(options.Model, device, options.Seed);
        var random = new Random(unchecked((int)options.Seed) ^ 0x9e7);
        outcome = TrainUntil(model, new FullParametrisation(model), options.PretrainSteps, options.PretrainLearningRate, corpus, options, random, device, null, ct);
        return SpectrumAnalysis.Snapshot(model);
    }

    private static ProxyTransformer NewModel(LoraExperimentOptions options, Device device, IReadOnlyDictionary<string, Tensor> weights)
    {
        var model = new ProxyTransformer(options.Model, device, options.Seed);
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters()) p.copy_(weights[name]);
        return model;
    }

    /// <summary>
    /// Training through the package's one trainer: AdamW (0.9, 0.95, no weight decay), clipping at 1, linear warm-up
    /// (5% of the steps) then cosine decay to 10% of the peak at the last step (law 7's schedule type). The
    /// parametrisation is the full model or the LoRA attachment. Returns false when the run broke the divergence rule.
    /// </summary>
    private static bool Train(ProxyTransformer model, IParametrisation parametrisation, int steps, double peak, TextCorpus corpus,
        LoraExperimentOptions options, Random random, Device device, CancellationToken ct) =>
        !TrainUntil(model, parametrisation, steps, peak, corpus, options, random, device, null, ct).Diverged;

    /// <summary><see cref="Train"/> with an early stop (<see cref="TrainerHooks.StopAfter"/>); returns the trainer's outcome.</summary>
    private static TrainingOutcome TrainUntil(ProxyTransformer model, IParametrisation parametrisation, int steps, double peak, TextCorpus corpus,
        LoraExperimentOptions options, Random random, Device device, Func<int, bool>? stopAfter, CancellationToken ct)
    {
        var hooks = new TrainerHooks
        {
            Loss = _ =>
            {
                var (input, target) = corpus.SampleBatch(false, options.BatchSize, options.SequenceLength, random, device);
                return ProxyTransformer.CrossEntropy(model.forward(input), target);
            },
            StopAfter = stopAfter,
        };
        return Trainer.Train(parametrisation, hooks, TrainerOptionsFor(steps, peak), null, ct).Single();
    }

    /// <summary>The experiment's optimiser and schedule for a run of <paramref name="steps"/> steps at peak rate <paramref name="peak"/>.</summary>
    private static TrainerOptions TrainerOptionsFor(int steps, double peak) => TrainerOptions.Single(
        LearningRateSchedule.Cosine(peak, steps, Math.Min(steps, Math.Max(1, steps / 20)), minimum: 0.1 * peak),
        new AdamWOptions { Beta1 = 0.9, Beta2 = 0.95, WeightDecay = 0, GradClip = 1.0 }, logEvery: 50);

    private static double Evaluate(ProxyTransformer model, IReadOnlyList<(Tensor Input, Tensor Target)> batches) =>
        ProxyTransformer.MeanCrossEntropy(model, batches);

    // The weights LoRA adapts (the spectra compare exactly these).
    private static List<string> TargetNames(LoraExperimentOptions options, ProxyTransformer model) =>
        LoraAttachment.Matrices(model).Where(m => Lora(options, 1, false).Targets(m.Name)).Select(m => m.Name + ".weight").ToList();

    private static LoraOptions Lora(LoraExperimentOptions options, int rank, bool rs) =>
        new() { Rank = rank, Alpha = options.Alpha, RankStabilized = rs, TargetPatterns = options.TargetPatterns };

    private static readonly object GlobalGeneratorGate = new();

    private static LoraRunRecord FineTuneOnce(LoraExperimentOptions options, LoraExperimentCorpora corpora, List<List<(Tensor, Tensor)>> evaluation,
        Device device, IReadOnlyDictionary<string, Tensor> pretrained, int rank, bool rs, double lr, double lossABefore, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        ProxyTransformer created;
        LoraAttachment? attachment = null;
        List<string> targetNames;
        // The model's and the adapters' default initialisations draw from LibTorch's one global generator: seeding it,
        // building the model and attaching the adapters is one step no other worker may interleave with.
        lock (GlobalGeneratorGate)
        {
            manual_seed(options.Seed + 17 * rank + (rs ? 1 : 0));
            created = NewModel(options, device, pretrained);
            targetNames = TargetNames(options, created);
            if (rank != 0) attachment = LoraAttachment.Attach(created, Lora(options, rank, rs));
        }
        using var model = created;
        var random = new Random(unchecked((int)options.Seed) ^ 0x7a26e7);
        bool finite;
        long trainable;
        if (attachment is null)
        {
            trainable = model.parameters().Sum(p => p.numel());
            finite = Train(model, new FullParametrisation(model), options.FineTuneSteps, lr, corpora.Tasks[0], options, random, device, ct);
        }
        else
        {
            trainable = attachment.TrainableParameterCount;
            finite = Train(model, new LoraParametrisation(attachment), options.FineTuneSteps, lr, corpora.Tasks[0], options, random, device, ct);
            attachment.Detach(keepMerged: true);
        }
        double target = Evaluate(model, evaluation[1]);
        double lossA = Evaluate(model, evaluation[0]);
        // The trainer applied the package's divergence rule to the training losses; a non-finite evaluation also counts.
        bool diverged = !finite || !double.IsFinite(target) || !double.IsFinite(lossA);
        ModelSpectrum? spectrum = null;
        int mitigated = 0;
        double mitigatedTarget = double.NaN, mitigatedA = double.NaN;
        if (!diverged)
        {
            var weights = SpectrumAnalysis.Weights(model);
            var baseSubset = targetNames.ToDictionary(n => n, n => pretrained[n]);
            var tunedSubset = targetNames.ToDictionary(n => n, n => weights[n]);
            spectrum = SpectrumAnalysis.Compare(MethodName(rank, rs), baseSubset, tunedSubset, options.Intruders, cancellationToken: ct);
            // Mitigation: scale each layer's intruder directions by lambda, then re-evaluate.
            using (no_grad())
                foreach (var layer in spectrum.Layers.Where(l => l.Intruders.Length > 0))
                {
                    var p = model.named_parameters().First(x => x.name == layer.Name).parameter;
                    using var svd = Spectra.Svd(p);
                    using var scaled = Spectra.ScaleDirections(p, svd, layer.Intruders, options.MitigationLambda);
                    p.copy_(scaled);
                    mitigated += layer.Intruders.Length;
                }
            mitigatedTarget = mitigated == 0 ? target : Evaluate(model, evaluation[1]);
            mitigatedA = mitigated == 0 ? lossA : Evaluate(model, evaluation[0]);
        }
        return new LoraRunRecord
        {
            Rank = rank, RsLora = rs, LearningRate = lr, TrainableParameters = trainable, TargetLoss = target, PretrainLossBefore = lossABefore,
            PretrainLossAfter = lossA, Diverged = diverged, Spectrum = spectrum, MitigatedDirections = mitigated,
            MitigatedTargetLoss = mitigatedTarget, MitigatedPretrainLoss = mitigatedA, Seconds = clock.Elapsed.TotalSeconds,
        };
    }

    private static LoraTrajectoryRecord Trajectory(LoraExperimentOptions options, LoraExperimentCorpora corpora, List<List<(Tensor, Tensor)>> evaluation,
        Device device, IReadOnlyDictionary<string, Tensor> pretrained, int rank, bool rs, double lr, double[] levels, int evaluateEvery, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        double lossABefore;
        using (var before = NewModel(options, device, pretrained)) lossABefore = Evaluate(before, evaluation[0]);
        // The same seeds as FineTuneOnce: without levels this is exactly that run.
        manual_seed(options.Seed + 17 * rank + (rs ? 1 : 0));
        using var model = NewModel(options, device, pretrained);
        var random = new Random(unchecked((int)options.Seed) ^ 0x7a26e7);
        var targetNames = TargetNames(options, model);
        var baseSubset = targetNames.ToDictionary(n => n, n => pretrained[n]);
        LoraAttachment? attachment = rank == 0 ? null : LoraAttachment.Attach(model, Lora(options, rank, rs));
        IParametrisation parametrisation = attachment is null ? new FullParametrisation(model) : new LoraParametrisation(attachment);
        var steps = new List<int>();
        var losses = new List<double>();
        var snapshots = new List<LoraLossSnapshot>();
        bool nonFinite = false;
        void Measure(int step)
        {
            parametrisation.Finish(); // the module holds the weights after this step (LoRA: merged)
            double target = Evaluate(model, evaluation[1]);
            steps.Add(step);
            losses.Add(target);
            if (!double.IsFinite(target)) { nonFinite = true; return; }
            var reached = levels.Where(l => target <= l && snapshots.All(x => x.Level != l)).ToList();
            if (reached.Count == 0) return;
            double lossA = Evaluate(model, evaluation[0]);
            var weights = SpectrumAnalysis.Weights(model);
            var spectrum = SpectrumAnalysis.Compare(MethodName(rank, rs), baseSubset, targetNames.ToDictionary(n => n, n => weights[n]), options.Intruders, cancellationToken: ct);
            foreach (double level in reached)
                snapshots.Add(new LoraLossSnapshot { Level = level, Step = step, TargetLoss = target, PretrainLossBefore = lossABefore, PretrainLossAfter = lossA, Spectrum = spectrum });
        }
        var hooks = new TrainerHooks
        {
            Loss = _ =>
            {
                var (input, target) = corpora.Tasks[0].SampleBatch(false, options.BatchSize, options.SequenceLength, random, device);
                return ProxyTransformer.CrossEntropy(model.forward(input), target);
            },
            AfterStep = (step, _) => { if (step % evaluateEvery == 0 || step == options.FineTuneSteps) Measure(step); },
            StopAfter = _ => nonFinite || (levels.Length > 0 && snapshots.Count == levels.Length),
        };
        var outcome = Trainer.Train(parametrisation, hooks, TrainerOptionsFor(options.FineTuneSteps, lr), null, ct).Single();
        attachment?.Detach(keepMerged: true);
        return new LoraTrajectoryRecord
        {
            Rank = rank, RsLora = rs, LearningRate = lr, Levels = levels, EvaluateEvery = evaluateEvery, Steps = steps.ToArray(), TargetLosses = losses.ToArray(),
            Snapshots = snapshots.ToArray(), StepsCompleted = outcome.StepsCompleted, Diverged = outcome.Diverged || nonFinite, Seconds = clock.Elapsed.TotalSeconds,
        };
    }

    private static LoraSequenceRecord Sequence(LoraExperimentOptions options, LoraExperimentCorpora corpora, List<List<(Tensor, Tensor)>> evaluation,
        Device device, IReadOnlyDictionary<string, Tensor> pretrained, int rank, double lr, CancellationToken ct, double[]? levels = null, int evaluateEvery = 1)
    {
        manual_seed(options.Seed + 1000 + rank);
        using var model = NewModel(options, device, pretrained);
        var targetNames = TargetNames(options, model);
        var random = new Random(unchecked((int)options.Seed) ^ 0x5e9);
        var losses = new List<double[]> { evaluation.Select(e => Evaluate(model, e)).ToArray() };
        var intruders = new List<int> { 0 };
        var stepsPerTask = new List<int>();
        bool diverged = false;
        for (int t = 0; t < corpora.Tasks.Count; t++)
        {
            var task = corpora.Tasks[t];
            LoraAttachment? attachment = rank == 0 ? null : LoraAttachment.Attach(model, Lora(options, rank, false)); // LoRA: a fresh adapter per task, merged at its end
            IParametrisation parametrisation = attachment is null ? new FullParametrisation(model) : new LoraParametrisation(attachment);
            // With levels: stop the task at the first evaluation whose loss on it is at or below its level.
            Func<int, bool>? stop = levels is null ? null : step =>
            {
                if (step % evaluateEvery != 0) return false;
                parametrisation.Finish();
                double loss = Evaluate(model, evaluation[t + 1]);
                return !double.IsFinite(loss) || loss <= levels[t];
            };
            var outcome = TrainUntil(model, parametrisation, options.SequentialSteps, lr, task, options, random, device, stop, ct);
            attachment?.Detach(keepMerged: true);
            stepsPerTask.Add(outcome.StepsCompleted);
            var row = evaluation.Select(e => Evaluate(model, e)).ToArray();
            losses.Add(row);
            diverged |= outcome.Diverged || row.Any(x => !double.IsFinite(x));
            if (diverged) { intruders.Add(0); break; }
            var weights = SpectrumAnalysis.Weights(model);
            var spectrum = SpectrumAnalysis.Compare("stage", targetNames.ToDictionary(n => n, n => pretrained[n]), targetNames.ToDictionary(n => n, n => weights[n]), options.Intruders, cancellationToken: ct);
            intruders.Add(spectrum.TotalIntruders);
        }
        return new LoraSequenceRecord
        {
            Rank = rank, LearningRate = lr, Tasks = new[] { corpora.Pretrain.Name }.Concat(corpora.Tasks.Select(t => t.Name)).ToArray(),
            Losses = losses.ToArray(), Intruders = intruders.ToArray(), Diverged = diverged, Levels = levels, StepsPerTask = stepsPerTask.ToArray(),
        };
    }
}
