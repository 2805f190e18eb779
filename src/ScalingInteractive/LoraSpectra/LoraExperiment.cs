using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Commands;
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
    /// LibTorch thread per worker fills the cores; 1 on a GPU). A run's record does not depend on it (timings aside).
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
    public static LoraExperimentCorpora Default(string shakespearePath, int syntheticBytes = 1_000_000)
    {
        string text = File.ReadAllText(shakespearePath);
        string reversed = string.Join('\n', text.Split('\n').Select(l => new string(l.Reverse().ToArray())));
        return new LoraExperimentCorpora(TextCorpus.Synthetic(syntheticBytes, seed: 0),
        [
            TextCorpus.FromText("shakespeare", text),
            TextCorpus.FromText("shakespeare-reversed-lines", reversed),
            TextCorpus.FromText("shakespeare-uppercase", text.ToUpperInvariant()),
        ]);
    }
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
/// methods on the sequence B -> C -> D. Every run is appended to a <see cref="RunStore"/> as it ends, and the
/// pre-trained weights are kept next to the store (safetensors), so an interrupted experiment resumes where it stopped.
/// </summary>
public static class LoraExperiment
{
    /// <summary>Store kind.</summary>
    public const string StoreKind = "lora-experiment";

    /// <summary>Runs (or resumes) the experiment.</summary>
    /// <param name="options">Settings.</param>
    /// <param name="corpora">Corpora A, B, C, D.</param>
    /// <param name="device">Device for every tensor.</param>
    /// <param name="storePath">Run store file (null: in memory only).</param>
    /// <param name="progress">Told (runs done, status) as runs start and end (the package's one progress interface); the total is <see cref="RunCount"/>.</param>
    /// <param name="cancellationToken">Checked every step.</param>
    public static LoraExperimentResult Run(LoraExperimentOptions options, LoraExperimentCorpora corpora, Device device, string? storePath = null,
        IProgressSink? progress = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        if (corpora.Tasks.Count == 0) throw new ArgumentException("At least one fine-tuning task (B) is needed.", nameof(corpora));
        var store = storePath is null ? null : RunStore.Open(storePath, StoreKind, Identity(options, corpora));
        var records = new Dictionary<string, LoraRunRecord>(StringComparer.Ordinal); // this grid's runs, from the store or trained now

        var methods = new List<(int Rank, bool Rs)> { (0, false) };
        foreach (int r in options.Ranks)
        {
            methods.Add((r, false));
            if (options.IncludeRsLora) methods.Add((r, true));
        }
        int done = 0;
        void Report(string status) => progress?.Report(done, status);

        // Fixed evaluation batches: every loss of every run is measured on the same tokens.
        var evaluation = EvaluationBatches(options, corpora, device);

        Report("pre-training on " + corpora.Pretrain.Name);
        var pretrained = Pretrain(options, corpora.Pretrain, device, storePath, cancellationToken);
        done++;
        try
        {
            double lossABefore;
            using (var model = NewModel(options, device, pretrained)) lossABefore = Evaluate(model, evaluation[0]);

            // Target task: every method at every learning rate of its grid, run by `workers` threads at once; each run is
            // appended to the store as it ends and the records keep the grid's order.
            var jobs = methods.SelectMany(m => (m.Rank == 0 ? options.FullLearningRates : options.LoraLearningRates).Select(lr => (m.Rank, m.Rs, Lr: lr))).ToList();
            var trained = new LoraRunRecord[jobs.Count];
            var gate = new object();
            Workers.Run(jobs.Count, options.Workers ?? Workers.DefaultFor(device), (i, token) =>
            {
                var (rank, rs, lr) = jobs[i];
                string method = MethodName(rank, rs);
                string key = RunKeys.Of(new LoraTargetKey("target", rank, rs, lr), LoraJson.Default.LoraTargetKey);
                trained[i] = store.GetOrRun(key, () =>
                {
                    lock (gate) Report($"{method}, lr {lr:G3}");
                    return FineTuneOnce(options, corpora, evaluation, device, pretrained, rank, rs, lr, lossABefore, token) with { Key = key, Method = method };
                }, LoraJson.Default.LoraRunRecord, out _);
                lock (gate)
                {
                    done++;
                    Report($"{method}, lr {lr:G3} done");
                }
            }, cancellationToken);
            foreach (var record in trained) records[record.Key] = record;
            var result = new LoraExperimentResult(options, corpora.Pretrain.Name, corpora.Tasks.Select(t => t.Name).ToArray(), lossABefore,
                records.Values.ToList(), []);

            // Task sequence B -> C -> D for full fine-tuning and a few ranks, at the learning rates selected above.
            var sequenceRecords = new List<LoraSequenceRecord>();
            if (options.SequentialSteps > 0 && corpora.Tasks.Count > 1)
            {
                foreach (int rank in new[] { 0 }.Concat(options.SequentialRanks))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var chosen = result.Selected.FirstOrDefault(r => r.Rank == rank && !r.RsLora);
                    double lr = chosen?.LearningRate ?? (rank == 0 ? options.FullLearningRates[0] : options.LoraLearningRates[0]);
                    string key = RunKeys.Of(new LoraSequenceKey("sequence", rank, lr), LoraJson.Default.LoraSequenceKey);
                    var seq = store.GetOrRun(key, () =>
                    {
                        Report($"sequence, {MethodName(rank, false)}");
                        return Sequence(options, corpora, evaluation, device, pretrained, rank, lr, cancellationToken) with { Key = key, Method = MethodName(rank, false) };
                    }, LoraJson.Default.LoraSequenceRecord, out _);
                    sequenceRecords.Add(seq);
                    done++;
                }
            }
            Report("done");
            return result with { Sequences = sequenceRecords };
        }
        finally
        {
            foreach (var t in pretrained.Values) t.Dispose();
            foreach (var batches in evaluation)
                foreach (var (x, y) in batches) { x.Dispose(); y.Dispose(); }
        }
    }

    /// <summary>
    /// Matched-loss control: fine-tunes one method on the target B from the experiment's pre-trained base, with the
    /// same initialisation, batches, optimiser and schedule as its run in <see cref="Run"/> (the same seeds: without
    /// levels it trains exactly that run), evaluates the target validation loss every <paramref name="evaluateEvery"/>
    /// steps and at the last step, and measures the model (loss on A, intruders) the first time the target loss is at
    /// or below each level. Training stops once every level is reached (<see cref="TrainerHooks.StopAfter"/>), so a
    /// snapshot is the method early-stopped at that target loss; a level never reached has no snapshot. The record is
    /// kept in the experiment's store (the same settings: it reuses the pre-trained base saved next to it, or pre-trains
    /// one) under a key of method, rate, levels and interval, so a re-run reads it back.
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
            var pretrained = Pretrain(options, corpora.Pretrain, device, storePath, cancellationToken);
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
    /// base, as <see cref="Run"/>'s sequences do (same seeds, optimiser, schedule of
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
            var pretrained = Pretrain(options, corpora.Pretrain, device, storePath, cancellationToken);
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

    /// <summary>Units of progress of <see cref="Run"/>: pre-training, every fine-tuning run, every task sequence.</summary>
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
    private static JsonObject Identity(LoraExperimentOptions options, LoraExperimentCorpora corpora) =>
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

    private static Dictionary<string, Tensor> Pretrain(LoraExperimentOptions options, TextCorpus corpus, Device device, string? storePath, CancellationToken ct)
    {
        string? checkpoint = storePath is null ? null : storePath + ".pretrained.safetensors";
        if (checkpoint is not null && File.Exists(checkpoint))
        {
            using var file = SafetensorsFile.Open(checkpoint);
            if (file.Metadata.TryGetValue("steps", out var steps) && steps == options.PretrainSteps.ToString(System.Globalization.CultureInfo.InvariantCulture))
                return file.ToTensors(device);
        }
        using var model = new ProxyTransformer(options.Model, device, options.Seed);
        var random = new Random(unchecked((int)options.Seed) ^ 0x9e7);
        Train(model, new FullParametrisation(model), options.PretrainSteps, options.PretrainLearningRate, corpus, options, random, device, ct);
        var weights = SpectrumAnalysis.Snapshot(model);
        if (checkpoint is not null)
        {
            string partial = checkpoint + ".partial";
            SafetensorsWriter.Write(partial, weights, new Dictionary<string, string> { ["steps"] = options.PretrainSteps.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            File.Move(partial, checkpoint, overwrite: true);
        }
        return weights;
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
