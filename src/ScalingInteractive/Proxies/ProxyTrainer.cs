using ScalingInteractive.Runs;
using ScalingInteractive.Training;
using static TorchSharp.torch;

namespace ScalingInteractive.Proxies;

/// <summary>Metrics at one logged step (everything measured on the step's own batch).</summary>
/// <param name="Step">1-based step count after the update.</param>
/// <param name="LearningRate">Learning rate used at this step.</param>
/// <param name="Loss">Training cross-entropy (nats per token) before the update.</param>
/// <param name="ZLoss">z-loss term (coefficient * mean log(Z)^2; reported even when not optimised).</param>
/// <param name="MeanLogZ">Mean over tokens of log Z = logsumexp of the output logits.</param>
/// <param name="MaxAbsLogit">Largest absolute output logit.</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
/// <param name="ParameterRms">RMS of all parameters after the update.</param>
/// <param name="UpdateRms">RMS of the parameter change of this step.</param>
/// <param name="MaxAttentionLogit">Max pre-softmax attention logit per layer.</param>
/// <param name="ActivationRms">RMS of the residual stream after each layer.</param>
public sealed record ProxyMetrics(int Step, double LearningRate, double Loss, double ZLoss, double MeanLogZ, double MaxAbsLogit,
    double GradNorm, double ParameterRms, double UpdateRms, double[] MaxAttentionLogit, double[] ActivationRms);

/// <summary>A validation loss measured at a step (0 = initialisation).</summary>
/// <param name="Step">Steps taken.</param>
/// <param name="Loss">Mean cross-entropy over the fixed validation batches.</param>
public sealed record ProxyValidationPoint(int Step, double Loss);

/// <summary>What <see cref="ProxyTrainer.ShapeKey"/> hashes: the model and the training options with the per-run fields blanked.</summary>
/// <param name="Model">Model configuration.</param>
/// <param name="Shared">Training options every run of an ensemble shares.</param>
public sealed record EnsembleShape(ProxyModelConfig Model, ProxyTrainingOptions Shared);

/// <summary>
/// Trains proxy transformers, nanoGPT-style, through the package's one <see cref="Trainer"/>: sample a batch, forward,
/// cross-entropy (+ z-loss), backward, clip, AdamW step with the scheduled rate; only logged steps synchronise with the
/// host. Runs that share a shape (<see cref="ShapeKey"/>) train together as one ensemble, a <see cref="ProxyTransformer"/>
/// with one member per run: the same initialisation as alone (its seed), the same batches in the same order (its seed's
/// stream), its own schedule, weight decay (coupled or independent), z-loss, AdamW moments and clipping, and the
/// package's <see cref="DivergenceRule"/> per run (a diverged run is frozen there while the others go on). A single run
/// is an ensemble of one, and a run's numbers do not depend on which runs share its ensemble.
/// </summary>
public static class ProxyTrainer
{
    /// <summary>Trains one run. <paramref name="progress"/> gets (steps done, status) at logged steps.</summary>
    public static ProxyRunResult Train(ProxyModelConfig modelConfig, ProxyTrainingOptions options, TextCorpus corpus, Device device,
        IProgressSink? progress = null, CancellationToken cancellationToken = default) =>
        Train([(modelConfig, options)], corpus, device, workers: 1, progress, cancellationToken)[0];

    /// <summary>
    /// A key equal for runs that can train as one ensemble: the model and the training options with the per-run fields
    /// (learning rate and its minimum, schedule, warm-up, decay fraction, weight decay and its mode, z-loss and its
    /// coefficient, seed) blanked out.
    /// </summary>
    public static string ShapeKey(ProxyModelConfig model, ProxyTrainingOptions training)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(training);
        var shared = training with
        {
            LearningRate = 1, MinLearningRate = 0, Schedule = ScheduleShape.Cosine, WarmupSteps = 0, DecayFraction = 0.2,
            WeightDecay = 0, WeightDecayMode = WeightDecayMode.Coupled, ZLoss = false, ZLossCoefficient = 1e-4, Seed = 0,
        };
        return RunKeys.Of(new EnsembleShape(model, shared), ProxiesJson.Default.EnsembleShape);
    }

    /// <summary>
    /// Trains every (model, training) pair of one shape as one ensemble; returns one result per run, in order, equal to
    /// the run trained alone. The runs are dealt round-robin to <paramref name="workers"/> sub-ensembles trained at the
    /// same time, each on its own thread: on a CPU, tiny models use several cores better as independent ensembles each
    /// on one LibTorch thread than as one ensemble whose small kernels are split across threads (set LibTorch's thread
    /// count to cores / workers). <paramref name="progress"/> is told steps done and a status, from the worker threads,
    /// one call at a time.
    /// </summary>
    public static IReadOnlyList<ProxyRunResult> Train(IReadOnlyList<(ProxyModelConfig Model, ProxyTrainingOptions Training)> runs, TextCorpus corpus, Device device,
        int workers = 1, IProgressSink? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(corpus);
        if (workers < 1) throw new ArgumentException($"workers must be at least 1; got {workers}.", nameof(workers));
        workers = Math.Min(workers, runs.Count);
        if (workers <= 1) return TrainTogether(runs, corpus, device, progress, cancellationToken);
        // Round-robin: a sorted learning-rate grid puts its diverging (early-frozen) top rates in every share.
        var shares = Enumerable.Range(0, workers).Select(w => Enumerable.Range(0, runs.Count).Where(i => i % workers == w).ToArray()).ToArray();
        var results = new ProxyRunResult[runs.Count];
        var serial = progress is null ? null : new SerialProgress(progress);
        Workers.Run(workers, workers, (worker, token) =>
        {
            var share = shares[worker];
            var trained = TrainTogether(share.Select(i => runs[i]).ToList(), corpus, device, serial, token);
            for (int j = 0; j < share.Length; j++) results[share[j]] = trained[j];
        }, cancellationToken);
        return results;
    }

    private static IReadOnlyList<ProxyRunResult> TrainTogether(IReadOnlyList<(ProxyModelConfig Model, ProxyTrainingOptions Training)> runs, TextCorpus corpus, Device device,
        IProgressSink? progress, CancellationToken cancellationToken)
    {
        if (runs.Count == 0) return [];
        foreach (var (runModel, runTraining) in runs)
        {
            runModel.Validate();
            runTraining.Validate();
        }
        string shape = ShapeKey(runs[0].Model, runs[0].Training);
        if (runs.Any(r => ShapeKey(r.Model, r.Training) != shape))
            throw new ArgumentException("Runs of one ensemble must share the model and every training setting but the learning rate, schedule, warm-up, weight decay, z-loss and seed.", nameof(runs));
        var config = runs[0].Model;
        var o = runs[0].Training; // shared settings
        if (o.SequenceLength > config.ContextLength)
            throw new ArgumentException($"SequenceLength {o.SequenceLength} exceeds the model's ContextLength {config.ContextLength}.", nameof(runs));
        if (corpus.TrainTokens < o.SequenceLength + 1 || corpus.ValidationTokens < o.SequenceLength + 1)
            throw new ArgumentException($"Corpus '{corpus.Name}' is too short for sequence length {o.SequenceLength}: train {corpus.TrainTokens} and validation {corpus.ValidationTokens} tokens, each needs at least {o.SequenceLength + 1}.", nameof(corpus));

        int total = runs.Count;
        var training = runs.Select(r => r.Training).ToArray();
        // Batch streams: one per run; runs with one seed read the very same batches (one stream serves them all).
        bool sharedData = training.All(t => t.Seed == training[0].Seed);
        var streams = training.Select(t => new Random(unchecked((int)t.Seed) ^ 0x5eed)).ToArray();
        var validationAt = new HashSet<int>(o.ValidationSteps);
        using var model = new ProxyTransformer(config, training.Select(t => t.Seed).ToArray(), device);
        var metrics = Enumerable.Range(0, total).Select(_ => new List<ProxyMetrics>()).ToArray();
        var validation = Enumerable.Range(0, total).Select(_ => new List<ProxyValidationPoint>()).ToArray();
        var initial = ValidationLosses(model, corpus, o, device);
        for (int i = 0; i < total; i++) validation[i].Add(new ProxyValidationPoint(0, initial[i]));

        IReadOnlyList<int> active = Enumerable.Range(0, total).ToList();
        Tensor? crossEntropy = null, logZ = null, logits = null; // the step's tensors, kept for its metrics
        var hooks = new TrainerHooks
        {
            MeasureUpdate = true,
            Loss = step =>
            {
                active = step.Active;
                model.CaptureStatistics = step.Log;
                Tensor input, target;
                if (sharedData)
                {
                    (input, target) = corpus.SampleBatch(false, o.BatchSize, o.SequenceLength, streams[0], device);
                    target = target.reshape(-1);
                }
                else
                {
                    var batches = active.Select(i => corpus.SampleBatch(false, o.BatchSize, o.SequenceLength, streams[i], device)).ToList();
                    input = stack(batches.Select(b => b.Input).ToList(), 0);
                    target = stack(batches.Select(b => b.Target.reshape(-1)).ToList(), 0);
                }
                logits = model.Forward(input);
                crossEntropy = ProxyTransformer.MemberCrossEntropy(logits, target); // [K]
                var coefficients = active.Select(i => training[i].ZLoss ? training[i].ZLossCoefficient : 0.0).ToArray();
                bool anyZ = coefficients.Any(c => c > 0);
                logZ = anyZ || step.Log ? logits.logsumexp(-1) : null; // [K, N]
                return anyZ ? crossEntropy.Plus(logZ!.Squared().mean([1]) * Vector(coefficients, device)) : crossEntropy;
            },
            OnLog = logged =>
            {
                int k = logged.Active.Count;
                var flat = model.Flat;
                // One host synchronisation for every run's statistics: rows of a [S, K] matrix.
                var rows = new List<Tensor>
                {
                    crossEntropy!.detach(), logZ!.Squared().mean([1]), logZ!.mean([1]), logits!.detach().abs().view(k, -1).amax([1]),
                    logged.GradNorm, flat.Squared().sum([1]).DividedByInPlace(model.Size).sqrt_(), logged.UpdateRms!,
                };
                rows.AddRange(model.LastMaxAttentionLogits);
                rows.AddRange(model.LastActivationRms);
                // float32 on the device (float64 is not on every backend), widened on the host.
                var values = stack(rows.Select(r => r.to_type(ScalarType.Float32)).ToList(), 0).cpu().data<float>().Select(x => (double)x).ToArray();
                int layers = model.LastMaxAttentionLogits.Count, s = rows.Count;
                var losses = new double[k];
                for (int j = 0; j < k; j++)
                {
                    int i = logged.Active[j];
                    double At(int row) => values[row * k + j];
                    metrics[i].Add(new ProxyMetrics(logged.Step, logged.LearningRates[j], At(0), training[i].ZLossCoefficient * At(1), At(2), At(3), At(4), At(5), At(6),
                        Enumerable.Range(7, layers).Select(At).ToArray(), Enumerable.Range(7 + layers, s - 7 - layers).Select(At).ToArray()));
                    losses[j] = At(0); // the rule judges the cross-entropy, not the z-loss sum
                }
                return losses;
            },
            AfterStep = (done, stillTraining) =>
            {
                active = stillTraining;
                if (!validationAt.Contains(done) || done == o.Steps) return;
                var losses = ValidationLosses(model, corpus, o, device);
                for (int j = 0; j < active.Count; j++) validation[active[j]].Add(new ProxyValidationPoint(done, losses[j]));
            },
        };
        var trainerOptions = new TrainerOptions
        {
            Runs = training.Select((t, i) => new TrainingRun(t.ToSchedule()) { Optimizer = t.ToAdamWOptions(), PeakLearningRate = t.LearningRate, InitialLoss = initial[i] }).ToList(),
            Divergence = o.ToDivergenceRule(),
            LogEvery = o.LogEvery,
        };
        var outcomes = Trainer.Train(new FullParametrisation(model), hooks, trainerOptions, progress, cancellationToken);
        model.CaptureStatistics = false;

        var divergence = outcomes.Select(x => x.DivergenceReason).ToArray();
        var final = new double[total];
        Array.Fill(final, double.NaN);
        var survivors = active.Where(i => divergence[i] is null).ToList();
        if (survivors.Count > 0 && survivors.Count == model.Members)
        {
            var losses = ValidationLosses(model, corpus, o, device);
            for (int j = 0; j < survivors.Count; j++)
            {
                int i = survivors[j];
                final[i] = losses[j];
                validation[i].Add(new ProxyValidationPoint(outcomes[i].StepsCompleted, losses[j]));
                if (!double.IsFinite(losses[j])) divergence[i] = $"validation loss is {losses[j]} at the end";
            }
        }
        return Enumerable.Range(0, total).Select(i =>
        {
            long tokens = (long)outcomes[i].StepsCompleted * o.BatchSize * o.SequenceLength;
            double seconds = outcomes[i].Seconds; // each run's share of the ensemble's time
            return new ProxyRunResult
            {
                Model = runs[i].Model,
                Training = training[i],
                Corpus = corpus.Name,
                Device = device.ToString(),
                Parameters = model.ParameterCount(includeEmbeddings: false),
                ParametersWithEmbeddings = model.ParameterCount(includeEmbeddings: true),
                StepsCompleted = outcomes[i].StepsCompleted,
                Tokens = tokens,
                InitialLoss = initial[i],
                FinalLoss = divergence[i] is null ? final[i] : double.NaN,
                FinalTrainLoss = metrics[i].Count > 0 ? metrics[i][^1].Loss : double.NaN,
                Diverged = divergence[i] is not null,
                DivergenceReason = divergence[i],
                Metrics = metrics[i],
                Validation = validation[i],
                Seconds = seconds,
                TokensPerSecond = tokens / Math.Max(seconds, 1e-9),
            };
        }).ToList();
    }

    /// <summary>The z-loss: <paramref name="coefficient"/> * mean over tokens of log(Z)^2, from log Z per token.</summary>
    public static Tensor ZLoss(Tensor logZ, double coefficient) => logZ.Squared().mean().Times(coefficient);

    /// <summary>
    /// Each member's mean cross-entropy over <see cref="ProxyTrainingOptions.ValidationBatches"/> fixed validation batches
    /// (the same batches every time, so validation losses of a run and across runs are comparable).
    /// </summary>
    public static double[] ValidationLosses(ProxyTransformer model, TextCorpus corpus, ProxyTrainingOptions options, Device device)
    {
        ArgumentNullException.ThrowIfNull(model);
        var random = new Random(12345);
        bool capture = model.CaptureStatistics;
        model.CaptureStatistics = false;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var losses = new List<Tensor>();
        for (int b = 0; b < options.ValidationBatches; b++)
        {
            var (input, target) = corpus.SampleBatch(true, options.BatchSize, options.SequenceLength, random, device);
            losses.Add(ProxyTransformer.MemberCrossEntropy(model.Forward(input), target.reshape(-1)).to_type(ScalarType.Float32));
        }
        var result = stack(losses, 0).mean([0]).cpu().data<float>().Select(x => (double)x).ToArray();
        model.CaptureStatistics = capture;
        return result;
    }

    private static Tensor Vector(double[] values, Device device) => tensor(values.Select(x => (float)x).ToArray(), device: device);

    // Progress from several worker threads, one report at a time.
    private sealed class SerialProgress(IProgressSink inner) : IProgressSink
    {
        private readonly object _gate = new();

        public void Report(int done, string? status = null, string? best = null) { lock (_gate) inner.Report(done, status, best); }

        public void Complete(string? status = null) { lock (_gate) inner.Complete(status); }
    }
}
