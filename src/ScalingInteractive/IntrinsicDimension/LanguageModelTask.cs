using ScalingInteractive.Proxies;
using ScalingInteractive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>Settings of a language-model fine-tuning task for intrinsic-dimension probes.</summary>
/// <param name="Model">The proxy transformer's shape (byte-level vocabulary).</param>
/// <param name="PretrainSteps">Steps of full pretraining on the pretraining corpus (0: start from the random initialisation).</param>
/// <param name="PretrainLearningRate">Adam learning rate of pretraining.</param>
/// <param name="SequenceLength">Tokens per training window.</param>
/// <param name="ValidationBatches">Fixed validation batches (of the training batch size) for the metric.</param>
/// <param name="ValidationBatchSize">Sequences per validation batch.</param>
public sealed record LanguageModelTaskOptions(ProxyModelConfig Model, int PretrainSteps = 400, double PretrainLearningRate = 3e-3,
    int SequenceLength = 64, int ValidationBatches = 4, int ValidationBatchSize = 32)
{
    /// <summary>
    /// Pre-train only until the pre-training corpus's validation loss (<see cref="LanguageModelTask.PretrainValidationLoss"/>,
    /// checked every <see cref="PretrainCheckEvery"/> steps) is at most this; <see cref="PretrainSteps"/> is then the cap.
    /// Null (default): exactly <see cref="PretrainSteps"/> steps. Used to pre-train models of different sizes to one loss.
    /// </summary>
    public double? PretrainTargetLoss { get; init; }

    /// <summary>Steps between validation checks of <see cref="PretrainTargetLoss"/>.</summary>
    public int PretrainCheckEvery { get; init; } = 25;
}

/// <summary>
/// Fine-tuning a proxy transformer on one corpus (e.g. tiny Shakespeare) after pretraining it on another (e.g. the
/// built-in synthetic grammar), as in Aghajanyan et al. 2020 at proxy scale. theta0 is the pretrained model (the same
/// for every seed: seeds vary P and the batches) or, with no pretraining, the random initialisation for the seed.
/// Metric: next-token accuracy on fixed validation windows of the fine-tuning corpus.
/// </summary>
public sealed class LanguageModelTask : IIntrinsicTask
{
    private readonly TextCorpus _fineTune;
    private readonly Dictionary<string, Tensor>? _pretrained;
    private readonly List<(Tensor Input, Tensor Target)> _validation = new();

    /// <summary>Builds the task; pretrains once now when <see cref="LanguageModelTaskOptions.PretrainSteps"/> &gt; 0.</summary>
    /// <param name="name">Task name for keys and tables, e.g. <c>lm-w64-pretrained</c>.</param>
    /// <param name="pretrainCorpus">Corpus of the pretraining (unused when PretrainSteps is 0).</param>
    /// <param name="fineTuneCorpus">Corpus of the fine-tuning and of the metric.</param>
    /// <param name="options">Model shape and pretraining.</param>
    /// <param name="device">Device of everything.</param>
    /// <param name="cancellationToken">Stops pretraining.</param>
    /// <param name="pretrainedWeights">
    /// Weights of an earlier pre-training with the same options (e.g. read from a pre-training run's checkpoint, as an
    /// intrinsic-dimension experiment's later stages do): used as theta0 instead of pre-training again. Copied.
    /// </param>
    public LanguageModelTask(string name, TextCorpus? pretrainCorpus, TextCorpus fineTuneCorpus, LanguageModelTaskOptions options, Device device,
        CancellationToken cancellationToken = default, IReadOnlyDictionary<string, Tensor>? pretrainedWeights = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(fineTuneCorpus);
        ArgumentNullException.ThrowIfNull(options);
        if (options.PretrainSteps < 0) throw new ArgumentException($"PretrainSteps must be >= 0 (got {options.PretrainSteps}).", nameof(options));
        if (options.PretrainSteps > 0 && pretrainCorpus is null) throw new ArgumentException("PretrainSteps > 0 needs a pretraining corpus.", nameof(pretrainCorpus));
        if (options.SequenceLength < 1 || options.SequenceLength > options.Model.ContextLength)
            throw new ArgumentException($"SequenceLength must be between 1 and the context length {options.Model.ContextLength} (got {options.SequenceLength}).", nameof(options));
        if (options.ValidationBatches < 1 || options.ValidationBatchSize < 1)
            throw new ArgumentException("ValidationBatches and ValidationBatchSize must be at least 1.", nameof(options));
        if (options.PretrainCheckEvery < 1) throw new ArgumentException($"PretrainCheckEvery must be at least 1 (got {options.PretrainCheckEvery}).", nameof(options));
        if (options.PretrainTargetLoss is { } goal && !(goal > 0 && double.IsFinite(goal)))
            throw new ArgumentException($"PretrainTargetLoss must be a positive finite loss (got {goal}).", nameof(options));
        Name = name;
        Options = options;
        Device = device;
        _fineTune = fineTuneCorpus;
        var random = new Random(20240601);
        for (int i = 0; i < options.ValidationBatches; i++)
            _validation.Add(fineTuneCorpus.SampleBatch(true, options.ValidationBatchSize, options.SequenceLength, random, device));
        if (options.PretrainSteps > 0 && pretrainedWeights is not null)
        {
            using var shape = new ProxyTransformer(options.Model, device, 0);
            using var _ = no_grad();
            _pretrained = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var (parameterName, p) in shape.named_parameters())
            {
                if (!pretrainedWeights.TryGetValue(parameterName, out var weight) || !weight.shape.SequenceEqual(p.shape))
                {
                    foreach (var t in _pretrained.Values) t.Dispose();
                    throw new ArgumentException($"The pre-trained weights do not fit the model {options.Model}: '{parameterName}' is " +
                                                (weight is null ? "missing" : $"[{string.Join(", ", weight.shape)}], the model's is [{string.Join(", ", p.shape)}]") + ".", nameof(pretrainedWeights));
                }
                _pretrained[parameterName] = weight.to(device).detach().clone();
            }
        }
        else if (options.PretrainSteps > 0)
        {
            using var model = new ProxyTransformer(options.Model, device, 0);
            var check = new Random(20240602);
            var held = Enumerable.Range(0, options.ValidationBatches)
                .Select(_ => pretrainCorpus!.SampleBatch(true, options.ValidationBatchSize, options.SequenceLength, check, device)).ToList();
            try
            {
                (PretrainLoss, PretrainStepsDone) = Pretrain(model, pretrainCorpus!, options, held, device, cancellationToken);
                PretrainValidationLoss = ProxyTransformer.MeanCrossEntropy(model, held);
            }
            finally
            {
                foreach (var (i, t) in held)
                {
                    i.Dispose();
                    t.Dispose();
                }
            }
            using var _ = no_grad();
            _pretrained = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        }
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <summary>The settings.</summary>
    public LanguageModelTaskOptions Options { get; }

    /// <summary>Training loss at the end of pretraining (mean of the last 10% of steps), or null without pretraining
    /// (NaN when a <see cref="LanguageModelTaskOptions.PretrainTargetLoss"/> stopped it before those steps).</summary>
    public double? PretrainLoss { get; }

    /// <summary>Mean loss of the pre-trained model on fixed validation windows of the pre-training corpus, or null without pretraining.</summary>
    public double? PretrainValidationLoss { get; }

    /// <summary>The pre-trained theta0 by parameter name (null without pre-training); owned by the task.</summary>
    public IReadOnlyDictionary<string, Tensor>? PretrainedWeights => _pretrained;

    /// <summary>Pre-training steps taken (fewer than <see cref="LanguageModelTaskOptions.PretrainSteps"/> when a target loss stopped it).</summary>
    public int PretrainStepsDone { get; }

    /// <inheritdoc />
    public string MetricName => "validation next-token accuracy";

    /// <inheritdoc />
    public Device Device { get; }

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> CreateModel(int seed)
    {
        var model = new ProxyTransformer(Options.Model, Device, _pretrained is null ? seed : 0);
        if (_pretrained is not null)
        {
            using var _ = no_grad();
            foreach (var (name, p) in model.named_parameters()) p.copy_(_pretrained[name]);
        }
        return model;
    }

    /// <inheritdoc />
    public Tensor BatchLoss(nn.Module<Tensor, Tensor> model, Random random, int batchSize)
    {
        using var scope = NewDisposeScope();
        var (input, target) = _fineTune.SampleBatch(false, batchSize, Options.SequenceLength, random, Device);
        return ProxyTransformer.CrossEntropy(model.forward(input), target).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public double Evaluate(nn.Module<Tensor, Tensor> model)
    {
        using var _ = no_grad();
        long correct = 0, total = 0;
        foreach (var (input, target) in _validation)
        {
            using var scope = NewDisposeScope();
            correct += model.forward(input).argmax(-1).eq(target).sum().item<long>();
            total += target.numel();
        }
        return (double)correct / total;
    }


    // Pre-training through the package's one trainer: constant rate, the probes' Adam, batches from Random(7); with a
    // target loss, the held-out windows are checked every PretrainCheckEvery steps and training stops once it is reached.
    private static (double TailLoss, int Steps) Pretrain(ProxyTransformer model, TextCorpus corpus, LanguageModelTaskOptions options,
        IReadOnlyList<(Tensor Input, Tensor Target)> held, Device device, CancellationToken cancellationToken)
    {
        var random = new Random(7);
        var hooks = new TrainerHooks
        {
            Loss = _ =>
            {
                var (input, target) = corpus.SampleBatch(false, options.ValidationBatchSize, options.SequenceLength, random, device);
                return ProxyTransformer.CrossEntropy(model.forward(input), target);
            },
            StopAfter = options.PretrainTargetLoss is { } goal
                ? steps => steps % options.PretrainCheckEvery == 0 && ProxyTransformer.MeanCrossEntropy(model, held) <= goal
                : null,
        };
        var trainer = TrainerOptions.Single(LearningRateSchedule.Constant(options.PretrainLearningRate, options.PretrainSteps),
            SubspaceTrainingOptions.Adam, logEvery: Math.Max(1, options.PretrainSteps / 20));
        var outcome = Trainer.Train(new FullParametrisation(model), hooks, trainer, null, cancellationToken).Single();
        return (outcome.TailLoss, outcome.StepsCompleted);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in _pretrained?.Values ?? Enumerable.Empty<Tensor>()) t.Dispose();
        foreach (var (i, t) in _validation)
        {
            i.Dispose();
            t.Dispose();
        }
    }
}
