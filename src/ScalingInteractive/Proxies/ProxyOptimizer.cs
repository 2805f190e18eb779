using ScalingInteractive.Training;
using static TorchSharp.torch;

namespace ScalingInteractive.Proxies;

/// <summary>
/// The proxies' AdamW: <see cref="AdamW"/> (the package's one optimiser) configured from <see cref="ProxyTrainingOptions"/>.
/// Kept as a name for existing code; new code can use <see cref="AdamW"/> directly.
/// </summary>
public sealed class ProxyOptimizer : IDisposable
{
    private readonly AdamW _inner;

    /// <summary>
    /// Optimises the given named parameters; <paramref name="learningRateScales"/> gives muP multipliers (missing: 1).
    /// Weight decay applies to parameters with two or more dimensions (matrices and embeddings), as in nanoGPT.
    /// </summary>
    public ProxyOptimizer(IEnumerable<(string Name, Tensor Parameter)> parameters, IReadOnlyDictionary<string, double>? learningRateScales, ProxyTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _inner = new AdamW(parameters, learningRateScales, options.ToAdamWOptions());
    }

    /// <summary>Steps taken so far.</summary>
    public int StepCount => _inner.StepCount;

    /// <inheritdoc cref="AdamW.ClipGradients"/>
    public Tensor ClipGradients(double maxNorm) => _inner.ClipGradients(maxNorm);

    /// <inheritdoc cref="AdamW.Step"/>
    public Tensor? Step(double learningRate, double peakLearningRate, bool measureUpdate = false) => _inner.Step(learningRate, peakLearningRate, measureUpdate);

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGrad() => _inner.ZeroGrad();

    /// <summary>Frees the moment buffers.</summary>
    public void Dispose() => _inner.Dispose();
}
