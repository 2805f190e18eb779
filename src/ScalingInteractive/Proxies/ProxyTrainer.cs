using ScalingInteractive.Core;
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

/// <summary>
/// Trains a <see cref="ProxyTransformer"/> nanoGPT-style, top to bottom: sample a batch, forward, cross-entropy
/// (+ z-loss), backward, clip, AdamW step with the scheduled rate. Only logging steps synchronise with the host.
/// The loop itself is the package's one <see cref="Trainer"/> (full parametrisation with muP multipliers); a logged
/// loss that breaks the <see cref="DivergenceRule"/> (factor <see cref="ProxyTrainingOptions.DivergenceFactor"/>) ends
/// the run as diverged.
/// </summary>
public static class ProxyTrainer
{
    /// <summary>
    /// Trains one run. <paramref name="onLog"/> sees each logged step; <paramref name="cancellationToken"/> is checked
    /// every step (an <see cref="OperationCanceledException"/> leaves nothing half-written: the run simply has no result).
    /// </summary>
    public static ProxyRunResult Train(ProxyModelConfig modelConfig, ProxyTrainingOptions options, TextCorpus corpus, Device device,
        Action<ProxyMetrics>? onLog = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(modelConfig);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(corpus);
        modelConfig.Validate();
        options.Validate();
        if (options.SequenceLength > modelConfig.ContextLength)
            throw new ArgumentException($"SequenceLength {options.SequenceLength} exceeds the model's ContextLength {modelConfig.ContextLength}.", nameof(options));
        if (corpus.TrainTokens < options.SequenceLength + 1 || corpus.ValidationTokens < options.SequenceLength + 1)
            throw new ArgumentException($"Corpus '{corpus.Name}' is too short for sequence length {options.SequenceLength}: train {corpus.TrainTokens} and validation {corpus.ValidationTokens} tokens, each needs at least {options.SequenceLength + 1}.", nameof(corpus));

        using var model = new ProxyTransformer(modelConfig, device, options.Seed);
        var named = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).ToList();
        var batches = new Random(unchecked((int)options.Seed) ^ 0x5eed);
        var validationAt = new HashSet<int>(options.ValidationSteps);
        var metrics = new List<ProxyMetrics>();
        var validation = new List<ProxyValidationPoint>();

        double initialLoss = ValidationLoss(model, corpus, options, device);
        validation.Add(new ProxyValidationPoint(0, initialLoss));
        Tensor? crossEntropy = null, logZ = null, logits = null; // the step's tensors, kept for its metrics
        var hooks = new TrainerHooks
        {
            MeasureUpdate = true,
            Loss = step =>
            {
                model.CaptureStatistics = step.Log;
                var (input, target) = corpus.SampleBatch(false, options.BatchSize, options.SequenceLength, batches, device);
                logits = model.forward(input);
                crossEntropy = ProxyTransformer.CrossEntropy(logits, target);
                logZ = options.ZLoss || step.Log ? logits.logsumexp(-1) : null;
                return options.ZLoss ? crossEntropy.Plus(ZLoss(logZ!, options.ZLossCoefficient)) : crossEntropy;
            },
            OnLog = logged =>
            {
                var point = Measure(model, named, logged.Step, logged.LearningRate, crossEntropy!, logZ!, logits!, logged.GradNorm, logged.UpdateRms!, options.ZLossCoefficient);
                metrics.Add(point);
                onLog?.Invoke(point);
                return point.Loss; // the rule judges the cross-entropy, as before (not the z-loss sum)
            },
            AfterStep = steps =>
            {
                if (validationAt.Contains(steps) && steps != options.Steps)
                    validation.Add(new ProxyValidationPoint(steps, ValidationLoss(model, corpus, options, device)));
            },
        };
        var trainerOptions = new TrainerOptions
        {
            Schedule = options.ToSchedule(), Optimizer = options.ToAdamWOptions(), Divergence = options.ToDivergenceRule(),
            LogEvery = options.LogEvery, InitialLoss = initialLoss, PeakLearningRate = options.LearningRate,
        };
        var outcome = Trainer.Train(new FullParametrisation(model, model.LearningRateScales()), hooks, trainerOptions, null, cancellationToken);
        model.CaptureStatistics = false;
        string? divergence = outcome.DivergenceReason;
        int steps = outcome.StepsCompleted;
        double finalValidation = double.NaN;
        if (divergence is null)
        {
            finalValidation = ValidationLoss(model, corpus, options, device);
            validation.Add(new ProxyValidationPoint(steps, finalValidation));
            if (!double.IsFinite(finalValidation)) divergence = $"validation loss is {finalValidation} at the end";
        }
        var clock = TimeSpan.FromSeconds(outcome.Seconds);
        long tokens = (long)steps * options.BatchSize * options.SequenceLength;
        return new ProxyRunResult
        {
            Model = modelConfig,
            Training = options,
            Corpus = corpus.Name,
            Device = device.ToString(),
            Parameters = model.ParameterCount(includeEmbeddings: false),
            ParametersWithEmbeddings = model.ParameterCount(includeEmbeddings: true),
            StepsCompleted = steps,
            Tokens = tokens,
            InitialLoss = initialLoss,
            FinalLoss = divergence is null ? finalValidation : double.NaN,
            FinalTrainLoss = metrics.Count > 0 ? metrics[^1].Loss : double.NaN,
            Diverged = divergence is not null,
            DivergenceReason = divergence,
            Metrics = metrics,
            Validation = validation,
            Seconds = clock.TotalSeconds,
            TokensPerSecond = tokens / Math.Max(clock.TotalSeconds, 1e-9),
        };
    }

    /// <summary>The z-loss: <paramref name="coefficient"/> * mean over tokens of log(Z)^2, from log Z per token.</summary>
    public static Tensor ZLoss(Tensor logZ, double coefficient) => logZ.Squared().mean().Times(coefficient);

    /// <summary>Mean cross-entropy over <see cref="ProxyTrainingOptions.ValidationBatches"/> fixed validation batches.</summary>
    public static double ValidationLoss(ProxyTransformer model, TextCorpus corpus, ProxyTrainingOptions options, Device device)
    {
        ArgumentNullException.ThrowIfNull(model);
        // The same batches every time (fixed seed), so validation losses of a run and across runs are comparable.
        var random = new Random(12345);
        bool capture = model.CaptureStatistics;
        model.CaptureStatistics = false;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var losses = new List<Tensor>();
        for (int b = 0; b < options.ValidationBatches; b++)
        {
            var (input, target) = corpus.SampleBatch(true, options.BatchSize, options.SequenceLength, random, device);
            losses.Add(ProxyTransformer.CrossEntropy(model.forward(input), target));
        }
        double loss = stack(losses.ToArray()).mean().item<float>();
        model.CaptureStatistics = capture;
        return loss;
    }

    private static ProxyMetrics Measure(ProxyTransformer model, List<(string Name, Tensor Parameter)> named, int step, double lr, Tensor crossEntropy,
        Tensor logZ, Tensor logits, Tensor gradNorm, Tensor updateRms, double zCoefficient)
    {
        using var _ = no_grad();
        var attention = model.LastMaxAttentionLogits;
        var activations = model.LastActivationRms;
        long count = named.Sum(p => p.Parameter.numel());
        var parameterRms = stack(named.Select(p => p.Parameter.detach().Squared().sum()).ToArray()).sum().DividedBy(count).sqrt();
        var scalars = new List<Tensor>
        {
            crossEntropy.detach(), ZLoss(logZ.detach(), zCoefficient), logZ.detach().mean(), logits.detach().abs().max(),
            gradNorm, parameterRms, updateRms,
        };
        scalars.AddRange(attention);
        scalars.AddRange(activations);
        // One host synchronisation for all the step's statistics.
        var values = stack(scalars.Select(s => s.to_type(ScalarType.Float64).reshape(1)).ToArray()).cpu().data<double>().ToArray();
        int layers = attention.Count;
        return new ProxyMetrics(step, lr, values[0], values[1], values[2], values[3], values[4], values[5], values[6],
            values[7..(7 + layers)], values[(7 + layers)..]);
    }
}
