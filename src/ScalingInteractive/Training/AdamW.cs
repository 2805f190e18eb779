using ScalingInteractive.Core;
using ScalingInteractive.Proxies;
using static TorchSharp.torch;

namespace ScalingInteractive.Training;

/// <summary>AdamW settings shared by every training loop (defaults: Wortsman et al. 2023).</summary>
public sealed record AdamWOptions
{
    /// <summary>beta1 (default 0.9).</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>beta2 (default 0.95).</summary>
    public double Beta2 { get; init; } = 0.95;

    /// <summary>epsilon (default 1e-8).</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Weight decay lambda on parameters with two or more dimensions (default 0).</summary>
    public double WeightDecay { get; init; }

    /// <summary>Coupled (PyTorch AdamW) or independent weight decay.</summary>
    public WeightDecayMode WeightDecayMode { get; init; } = WeightDecayMode.Coupled;

    /// <summary>Global gradient-norm clipping threshold (0: off; default 1).</summary>
    public double GradClip { get; init; } = 1.0;
}

/// <summary>
/// AdamW written out so that the two weight-decay modes of Wortsman et al. and muP's per-parameter learning-rate
/// multipliers are explicit. For a parameter with multiplier c and schedule factor s_t = lr_t/eta:
/// u = m_hat/(sqrt(v_hat)+eps); coupled: theta -= c*eta*s_t*(u + lambda*theta); independent:
/// theta -= c*eta*s_t*u + s_t*lambda*theta. With weight decay 0 it is Adam. All work stays on the device.
/// </summary>
public sealed class AdamW : IDisposable
{
    private readonly Entry[] _entries;
    private readonly AdamWOptions _options;
    private int _step;

    private sealed record Entry(string Name, Tensor Parameter, double Scale, bool Decay, Tensor M, Tensor V);

    /// <summary>
    /// Optimises the given named parameters; <paramref name="learningRateScales"/> gives muP multipliers (missing: 1).
    /// Weight decay applies to parameters with two or more dimensions (matrices and embeddings), as in nanoGPT.
    /// </summary>
    public AdamW(IEnumerable<(string Name, Tensor Parameter)> parameters, IReadOnlyDictionary<string, double>? learningRateScales, AdamWOptions options)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _entries = parameters.Select(p => new Entry(p.Name, p.Parameter,
            learningRateScales is not null && learningRateScales.TryGetValue(p.Name, out double s) ? s : 1.0,
            p.Parameter.dim() >= 2, zeros_like(p.Parameter).DetachFromDisposeScope(), zeros_like(p.Parameter).DetachFromDisposeScope())).ToArray();
    }

    /// <summary>The settings.</summary>
    public AdamWOptions Options => _options;

    /// <summary>Steps taken so far.</summary>
    public int StepCount => _step;

    /// <summary>
    /// Global gradient norm before clipping (a scalar on the device); scales the gradients in place so their norm is
    /// at most <paramref name="maxNorm"/> (no host synchronisation: the factor min(1, maxNorm/norm) is a tensor).
    /// </summary>
    public Tensor ClipGradients(double maxNorm)
    {
        var grads = _entries.Select(e => e.Parameter.grad).Where(g => g is not null).Select(g => g!).ToArray();
        var norm = grads.Length == 0 ? zeros(1).sum() : stack(grads.Select(g => g.Squared().sum()).ToArray()).sum().sqrt();
        if (maxNorm > 0)
        {
            var factor = maxNorm.Over(norm.Plus(1e-6)).ClampMax(1.0);
            foreach (var g in grads) g.mul_(factor);
        }
        return norm;
    }

    /// <summary>
    /// One AdamW step with learning rate <paramref name="learningRate"/> (= eta*s_t) where the peak is
    /// <paramref name="peakLearningRate"/> (eta). When <paramref name="measureUpdate"/> is set, returns the RMS of
    /// the parameter change over all parameters (a scalar tensor); otherwise null.
    /// </summary>
    public Tensor? Step(double learningRate, double peakLearningRate, bool measureUpdate = false)
    {
        _step++;
        double b1 = _options.Beta1, b2 = _options.Beta2;
        double bias1 = 1 - Math.Pow(b1, _step), bias2 = 1 - Math.Pow(b2, _step);
        double scheduleFactor = peakLearningRate > 0 ? learningRate / peakLearningRate : 0;
        var squares = measureUpdate ? new List<Tensor>() : null;
        long count = 0;
        using var _ = no_grad();
        foreach (var e in _entries)
        {
            using var g = e.Parameter.grad;
            if (g is null) continue;
            e.M.TimesInPlace(b1).PlusScaledInPlace(g, 1 - b1);
            e.V.TimesInPlace(b2).AddcmulInPlace(g, g, 1 - b2);
            // u = (m/bias1) / (sqrt(v/bias2) + eps), applied with one fused addcdiv (one temporary per parameter).
            using var denominator = e.V.sqrt().DividedByInPlace(Math.Sqrt(bias2)).PlusInPlace(_options.Epsilon);
            double lr = learningRate * e.Scale;
            Tensor? before = measureUpdate ? e.Parameter.detach().clone() : null;
            if (e.Decay && _options.WeightDecay > 0)
            {
                double decay = _options.WeightDecayMode == WeightDecayMode.Coupled ? lr * _options.WeightDecay : scheduleFactor * _options.WeightDecay;
                e.Parameter.TimesInPlace(1 - decay);
            }
            e.Parameter.AddcdivInPlace(e.M, denominator, -lr / bias1);
            if (before is not null)
            {
                squares!.Add((e.Parameter - before).SquaredInPlace().sum());
                count += e.Parameter.numel();
                before.Dispose();
            }
        }
        return squares is null || count == 0 ? null : stack(squares.ToArray()).sum().DividedBy(count).sqrt_();
    }

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGrad()
    {
        foreach (var e in _entries)
        {
            using var g = e.Parameter.grad;
            g?.zero_();
        }
    }

    /// <summary>Frees the moment buffers.</summary>
    public void Dispose()
    {
        foreach (var e in _entries) { e.M.Dispose(); e.V.Dispose(); }
    }
}
