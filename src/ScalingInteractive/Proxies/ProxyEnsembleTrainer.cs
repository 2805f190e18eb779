using System.Diagnostics;
using ScalingInteractive.Core;
using ScalingInteractive.Runs;
using ScalingInteractive.Training;
using static TorchSharp.torch;

namespace ScalingInteractive.Proxies;

/// <summary>
/// Trains the K runs of a grid that share a shape as one <see cref="ProxyEnsembleModel"/>, each member exactly as its
/// separate <see cref="ProxyTrainer.Train"/> run would be: the same initialisation (its seed), the same batches in the
/// same order (its seed's batch stream), its own learning-rate schedule (law 7's type), weight decay (coupled or
/// independent) and z-loss coefficient, its own AdamW moments, its own gradient clipping at its own norm, and the
/// package's <see cref="DivergenceRule"/> per member: a member that diverges at a logged step is frozen there (dropped
/// from the ensemble: its weights and optimiser state stop updating) while the others go on unchanged.
/// </summary>
/// <remarks>
/// Members must agree on everything that shapes the computation: the whole <see cref="ProxyModelConfig"/>, steps,
/// batch size, sequence length, betas, epsilon, clipping, logging and validation settings
/// (<see cref="ShapeKey"/>). They may differ in learning rate and its minimum, schedule, warm-up, decay fraction,
/// weight decay and its mode, z-loss and its coefficient, and seed. Per-run seconds are the ensemble's time divided
/// by K (each member's share).
/// </remarks>
public static class ProxyEnsembleTrainer
{
    /// <summary>
    /// A key equal for runs that can train as one ensemble (model and training options with the per-member fields
    /// blanked out, plus the device is the caller's). Runs with equal keys are grouped by <see cref="ProxySweep.Run"/>.
    /// </summary>
    public static string ShapeKey(ProxyModelConfig model, ProxyTrainingOptions training)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(training);
        var shared = training with
        {
            LearningRate = 1, MinLearningRate = 0, Schedule = LearningRateSchedule.Cosine, WarmupSteps = 0, DecayFraction = 0.2,
            WeightDecay = 0, WeightDecayMode = WeightDecayMode.Coupled, ZLoss = false, ZLossCoefficient = 1e-4, Seed = 0,
        };
        return RunKeys.Of(new EnsembleShape(model, shared), ProxiesJson.Default.EnsembleShape);
    }

    /// <summary>
    /// Trains every (model, training) pair as one ensemble; returns one result per member, in order, equal (up to float
    /// rounding of batched kernels) to the separate runs. <paramref name="onLog"/> sees (member, metrics).
    /// </summary>
    public static IReadOnlyList<ProxyRunResult> Train(IReadOnlyList<(ProxyModelConfig Model, ProxyTrainingOptions Training)> runs, TextCorpus corpus, Device device,
        Action<int, ProxyMetrics>? onLog = null, CancellationToken cancellationToken = default) =>
        Train(runs, corpus, device, workers: 1, onLog, cancellationToken);

    /// <summary>
    /// As <see cref="Train(IReadOnlyList{ValueTuple{ProxyModelConfig, ProxyTrainingOptions}}, TextCorpus, Device, Action{int, ProxyMetrics}?, CancellationToken)"/>,
    /// with the members dealt round-robin to <paramref name="workers"/> sub-ensembles that train at the same time, each
    /// on its own thread. On a CPU, tiny models use several cores better as independent ensembles each on one LibTorch
    /// thread than as one ensemble whose small kernels are split across threads: set LibTorch's thread count to
    /// cores / workers (<c>torch.set_num_threads</c>) before calling. Each member's numbers are those of its separate
    /// run whichever sub-ensemble trains it. <paramref name="onLog"/> is called from the worker threads, one call at a
    /// time.
    /// </summary>
    public static IReadOnlyList<ProxyRunResult> Train(IReadOnlyList<(ProxyModelConfig Model, ProxyTrainingOptions Training)> runs, TextCorpus corpus, Device device,
        int workers, Action<int, ProxyMetrics>? onLog = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (workers < 1) throw new ArgumentException($"workers must be at least 1; got {workers}.", nameof(workers));
        workers = Math.Min(workers, runs.Count);
        if (workers <= 1) return TrainTogether(runs, corpus, device, onLog, cancellationToken);
        // Round-robin: a sorted learning-rate grid puts its diverging (early-frozen) top rates in every share.
        var shares = Enumerable.Range(0, workers).Select(w => Enumerable.Range(0, runs.Count).Where(i => i % workers == w).ToArray()).ToArray();
        var gate = new object();
        var results = new ProxyRunResult[runs.Count];
        Workers.Run(workers, workers, (worker, token) =>
        {
            var share = shares[worker];
            var trained = TrainTogether(share.Select(i => runs[i]).ToList(), corpus, device,
                onLog is null ? null : (member, metrics) => { lock (gate) onLog(share[member], metrics); }, token);
            for (int j = 0; j < share.Length; j++) results[share[j]] = trained[j];
        }, cancellationToken);
        return results;
    }

    private static IReadOnlyList<ProxyRunResult> TrainTogether(IReadOnlyList<(ProxyModelConfig Model, ProxyTrainingOptions Training)> runs, TextCorpus corpus, Device device,
        Action<int, ProxyMetrics>? onLog, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(corpus);
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
            throw new ArgumentException($"Corpus '{corpus.Name}' is too short for sequence length {o.SequenceLength}.", nameof(corpus));

        int total = runs.Count;
        var training = runs.Select(r => r.Training).ToArray();
        var rates = training.Select(t => t.ToSchedule().Rates).ToArray();
        var rule = o.ToDivergenceRule();
        // Batch streams: one per distinct seed (members with one seed read the very same batches).
        bool sharedData = training.All(t => t.Seed == training[0].Seed);
        var streams = training.Select(t => new Random(unchecked((int)t.Seed) ^ 0x5eed)).ToArray();
        var validationAt = new HashSet<int>(o.ValidationSteps);

        using var model = new ProxyEnsembleModel(config, training.Select(t => t.Seed).ToArray(), device);
        var m = zeros_like(model.Flat).DetachFromDisposeScope();
        var v = zeros_like(model.Flat).DetachFromDisposeScope();
        var active = Enumerable.Range(0, total).ToList(); // members still training, in ensemble order
        var metrics = Enumerable.Range(0, total).Select(_ => new List<ProxyMetrics>()).ToArray();
        var validation = Enumerable.Range(0, total).Select(_ => new List<ProxyValidationPoint>()).ToArray();
        var divergence = new string?[total];
        var stepsDone = new int[total];

        var initial = ValidationLosses(model, corpus, o, device);
        for (int i = 0; i < total; i++) validation[i].Add(new ProxyValidationPoint(0, initial[i]));
        var clock = Stopwatch.StartNew();
        try
        {
            for (int step = 0; step < o.Steps && active.Count > 0; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope(); // every tensor of the step is freed here
                bool log = step == 0 || (step + 1) % o.LogEvery == 0 || step == o.Steps - 1;
                int k = active.Count;
                model.CaptureStatistics = log;

                // The batch: shared, or one per member from its own stream.
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
                var logits = model.Forward(input);
                var crossEntropy = ProxyEnsembleModel.CrossEntropy(logits, target); // [K]
                var zOn = active.Select(i => training[i].ZLoss ? training[i].ZLossCoefficient : 0.0).ToArray();
                bool anyZ = zOn.Any(c => c > 0);
                Tensor? logZ = anyZ || log ? logits.logsumexp(-1) : null; // [K, N]
                var loss = anyZ ? crossEntropy.Plus(logZ!.Squared().mean([1]) * Vector(zOn, device)) : crossEntropy;
                loss.sum().backward(); // members share no weights: each gets exactly its own loss's gradient

                // Per-member clipping at each member's own global norm.
                using var _ = no_grad();
                var grad = model.GatherGradients();
                var gradNorm = grad.Squared().sum([1]).sqrt(); // [K]
                if (o.GradClip > 0) grad.mul_(o.GradClip.Over(gradNorm.Plus(1e-6)).ClampMax(1.0).unsqueeze(1));

                // AdamW over the flat [K, P] buffers: the same formulas as Training.AdamW, with per-member rates and decay.
                int t = step + 1;
                double bias1 = 1 - Math.Pow(o.Beta1, t), bias2 = 1 - Math.Pow(o.Beta2, t);
                var lr = active.Select(i => rates[i][step]).ToArray();
                m.TimesInPlace(o.Beta1).PlusScaledInPlace(grad, 1 - o.Beta1);
                v.TimesInPlace(o.Beta2).AddcmulInPlace(grad, grad, 1 - o.Beta2);
                var denominator = v.sqrt().DividedByInPlace(Math.Sqrt(bias2)).PlusInPlace(o.Epsilon);
                var flat = model.Flat;
                Tensor? before = log ? flat.clone() : null;
                if (active.Any(i => training[i].WeightDecay > 0))
                {
                    // coupled: theta *= 1 - c*lr*lambda; independent: theta *= 1 - (lr/eta)*lambda (c: muP multiplier).
                    var coupled = active.Select((i, j) => training[i].WeightDecayMode == WeightDecayMode.Coupled ? lr[j] * training[i].WeightDecay : 0.0).ToArray();
                    var independent = active.Select((i, j) => training[i].WeightDecayMode == WeightDecayMode.Independent ? lr[j] / training[i].LearningRate * training[i].WeightDecay : 0.0).ToArray();
                    var decay = (Column(coupled, device) * model.ScaleRow).Plus(Column(independent, device)) * model.DecayRow;
                    flat.mul_(decay.neg_().PlusInPlace(1));
                }
                var stepSize = Column(lr.Select(r => r / bias1).ToArray(), device) * model.ScaleRow; // [K, P]
                flat.AddcdivInPlace(m * stepSize, denominator, -1);
                int done = step + 1;
                foreach (int i in active) stepsDone[i] = done;

                if (log)
                {
                    // One host synchronisation for every member's statistics: rows of a [S, K] matrix.
                    var rows = new List<Tensor>
                    {
                        crossEntropy.detach(), logZ!.Squared().mean([1]), logZ!.mean([1]), logits.detach().abs().view(k, -1).amax([1]),
                        gradNorm, flat.Squared().sum([1]).DividedByInPlace(model.Size).sqrt_(), (flat - before!).SquaredInPlace().sum([1]).DividedByInPlace(model.Size).sqrt_(),
                    };
                    rows.AddRange(model.LastMaxAttentionLogits);
                    rows.AddRange(model.LastActivationRms);
                    // float32 on the device (float64 is not on every backend), widened on the host.
                    var values = stack(rows.Select(r => r.to_type(ScalarType.Float32)).ToList(), 0).cpu().data<float>().Select(x => (double)x).ToArray();
                    int layers = model.LastMaxAttentionLogits.Count, s = rows.Count;
                    var keep = new List<int>();
                    for (int j = 0; j < k; j++)
                    {
                        int i = active[j];
                        double At(int row) => values[row * k + j];
                        var point = new ProxyMetrics(done, lr[j], At(0), training[i].ZLossCoefficient * At(1), At(2), At(3), At(4), At(5), At(6),
                            Enumerable.Range(7, layers).Select(At).ToArray(), Enumerable.Range(7 + layers, s - 7 - layers).Select(At).ToArray());
                        metrics[i].Add(point);
                        onLog?.Invoke(i, point);
                        divergence[i] = rule.Check(point.Loss, initial[i], done);
                        if (divergence[i] is null) keep.Add(j);
                    }
                    if (keep.Count < k)
                    {
                        // Freeze the diverged members: drop their rows (weights, gradients, moments) from the ensemble.
                        var kept = keep.Select(j => active[j]).ToList();
                        if (kept.Count > 0) model.Keep(keep.Select(j => (long)j).ToArray(), m, v);
                        active = kept;
                    }
                }
                if (validationAt.Contains(done) && done != o.Steps && active.Count > 0)
                {
                    var losses = ValidationLosses(model, corpus, o, device);
                    for (int j = 0; j < active.Count; j++) validation[active[j]].Add(new ProxyValidationPoint(done, losses[j]));
                }
            }
            model.CaptureStatistics = false;
            clock.Stop();
            var final = new double[total];
            Array.Fill(final, double.NaN);
            if (active.Count > 0)
            {
                var losses = ValidationLosses(model, corpus, o, device);
                for (int j = 0; j < active.Count; j++)
                {
                    int i = active[j];
                    final[i] = losses[j];
                    validation[i].Add(new ProxyValidationPoint(stepsDone[i], losses[j]));
                    if (!double.IsFinite(losses[j])) divergence[i] = $"validation loss is {losses[j]} at the end";
                }
            }
            double seconds = clock.Elapsed.TotalSeconds / total; // each member's share of the ensemble's time
            return Enumerable.Range(0, total).Select(i =>
            {
                long tokens = (long)stepsDone[i] * o.BatchSize * o.SequenceLength;
                return new ProxyRunResult
                {
                    Model = runs[i].Model,
                    Training = training[i],
                    Corpus = corpus.Name,
                    Device = device.ToString(),
                    Parameters = model.Parameters,
                    ParametersWithEmbeddings = model.ParametersWithEmbeddings,
                    StepsCompleted = stepsDone[i],
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
        finally
        {
            m.Dispose();
            v.Dispose();
        }
    }

    /// <summary>Each member's mean cross-entropy over the fixed validation batches (the separate run's batches).</summary>
    private static double[] ValidationLosses(ProxyEnsembleModel model, TextCorpus corpus, ProxyTrainingOptions options, Device device)
    {
        var random = new Random(12345); // the same batches as ProxyTrainer.ValidationLoss
        bool capture = model.CaptureStatistics;
        model.CaptureStatistics = false;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var losses = new List<Tensor>();
        for (int b = 0; b < options.ValidationBatches; b++)
        {
            var (input, target) = corpus.SampleBatch(true, options.BatchSize, options.SequenceLength, random, device);
            losses.Add(ProxyEnsembleModel.CrossEntropy(model.Forward(input), target.reshape(-1)).to_type(ScalarType.Float32));
        }
        var result = stack(losses, 0).mean([0]).cpu().data<float>().Select(x => (double)x).ToArray();
        model.CaptureStatistics = capture;
        return result;
    }

    private static Tensor Vector(double[] values, Device device) => tensor(values.Select(x => (float)x).ToArray(), device: device);

    private static Tensor Column(double[] values, Device device) => tensor(values.Select(x => (float)x).ToArray(), [values.Length, 1], device: device);
}
