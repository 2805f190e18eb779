using static TorchSharp.torch;

namespace ScalingInteractive.Training;

/// <summary>AdamW settings of one run (defaults: Wortsman et al. 2023).</summary>
public sealed record AdamWOptions
{
    /// <summary>beta1 (default 0.9).</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>beta2 (default 0.95).</summary>
    public double Beta2 { get; init; } = 0.95;

    /// <summary>epsilon (default 1e-8).</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Weight decay lambda on matrices and embeddings (default 0).</summary>
    public double WeightDecay { get; init; }

    /// <summary>Coupled (PyTorch AdamW) or independent weight decay.</summary>
    public WeightDecayMode WeightDecayMode { get; init; } = WeightDecayMode.Coupled;

    /// <summary>Global gradient-norm clipping threshold (0: off; default 1).</summary>
    public double GradClip { get; init; } = 1.0;

    /// <summary>True when <paramref name="other"/> agrees on everything runs trained at once must share (betas, epsilon, clipping).</summary>
    public bool SharesStepWith(AdamWOptions other) =>
        Beta1 == other.Beta1 && Beta2 == other.Beta2 && Epsilon == other.Epsilon && GradClip == other.GradClip;
}

/// <summary>
/// The package's one optimiser: AdamW over the K runs (members) a parametrisation trains at once, each trainable tensor
/// seen as [K, n]. Per member: its learning rate, its weight decay and mode, its gradient-norm clipping and its moments;
/// a diverged member is dropped (<see cref="KeepMembers"/>) and the others go on unchanged. For a parameter with
/// learning-rate multiplier c (muP) and schedule factor s_t = lr_t/eta: u = m_hat/(sqrt(v_hat)+eps); coupled:
/// theta -= c*lr_t*(u + lambda*theta); independent (Wortsman et al. §3.2.2): theta -= c*lr_t*u + s_t*lambda*theta. With
/// weight decay 0 it is Adam. All work stays on the device.
/// </summary>
public sealed class AdamW : IDisposable
{
    private readonly IParametrisation _parametrisation;
    private readonly Entry[] _entries;
    private readonly double _beta1, _beta2, _epsilon;
    private int _step;

    private sealed class Entry(TrainableTensor tensor, Tensor m, Tensor v)
    {
        public TrainableTensor Tensor { get; set; } = tensor;
        public Tensor M { get; set; } = m;
        public Tensor V { get; set; } = v;
    }

    /// <summary>Optimises <paramref name="parametrisation"/>'s trainable tensors; every run must share betas, epsilon and clipping.</summary>
    public AdamW(IParametrisation parametrisation, IReadOnlyList<AdamWOptions> runs)
    {
        _parametrisation = parametrisation ?? throw new ArgumentNullException(nameof(parametrisation));
        ArgumentNullException.ThrowIfNull(runs);
        if (runs.Count != parametrisation.Members)
            throw new ArgumentException($"{runs.Count} optimiser settings for {parametrisation.Members} trained runs; give one per run.", nameof(runs));
        if (runs.Any(r => !r.SharesStepWith(runs[0])))
            throw new ArgumentException("Runs trained at once must share AdamW's betas, epsilon and clipping; they may differ in learning rate and weight decay.", nameof(runs));
        Runs = runs.ToArray();
        (_beta1, _beta2, _epsilon) = (runs[0].Beta1, runs[0].Beta2, runs[0].Epsilon);
        _entries = parametrisation.Trainable.Select(t => new Entry(t, zeros_like(t.Value).DetachFromDisposeScope(), zeros_like(t.Value).DetachFromDisposeScope())).ToArray();
    }

    /// <summary>The settings of the runs still training, in member order.</summary>
    public IReadOnlyList<AdamWOptions> Runs { get; private set; }

    /// <summary>Steps taken so far.</summary>
    public int StepCount => _step;

    private int K => _parametrisation.Members;

    /// <summary>
    /// Each member's global gradient norm before clipping ([K] on the device); scales each member's gradients in place
    /// so their norm is at most its threshold. No host synchronisation: the factors are tensors.
    /// </summary>
    public Tensor ClipGradients()
    {
        var grads = Gradients();
        Tensor norm;
        if (grads.Count == 0) norm = zeros(K);
        else if (grads.Count == 1) norm = grads[0].Squared().sum([1]).sqrt();
        else norm = stack(grads.Select(g => g.Squared().sum([1])).ToArray()).sum([0]).sqrt();
        double clip = Runs[0].GradClip;
        if (clip > 0 && grads.Count > 0)
        {
            var factor = clip.Over(norm.Plus(1e-6)).ClampMax(1.0).unsqueeze(1);
            foreach (var g in grads) g.mul_(factor);
        }
        return norm;
    }

    /// <summary>
    /// One AdamW step at each member's learning rate <paramref name="learningRates"/> (= eta_k * s_t) with peaks
    /// <paramref name="peakLearningRates"/> (eta_k, for independent weight decay). With <paramref name="measureUpdate"/>,
    /// returns each member's RMS of the parameter change ([K]); otherwise null.
    /// </summary>
    public Tensor? Step(IReadOnlyList<double> learningRates, IReadOnlyList<double> peakLearningRates, bool measureUpdate = false)
    {
        int k = K;
        if (learningRates.Count != k || peakLearningRates.Count != k)
            throw new ArgumentException($"One learning rate and one peak per member ({k}); got {learningRates.Count} and {peakLearningRates.Count}.");
        _step++;
        double bias1 = 1 - Math.Pow(_beta1, _step), bias2 = 1 - Math.Pow(_beta2, _step);
        var device = _entries.Length > 0 ? _entries[0].Tensor.Value.device : CPU;
        bool anyDecay = Runs.Any(r => r.WeightDecay > 0);
        // coupled: theta *= 1 - c*lr*lambda; independent: theta *= 1 - (lr/eta)*lambda.
        var coupled = anyDecay ? Column(Runs.Select((r, j) => r.WeightDecayMode == WeightDecayMode.Coupled ? learningRates[j] * r.WeightDecay : 0.0), device) : null;
        var independent = anyDecay ? Column(Runs.Select((r, j) => r.WeightDecayMode == WeightDecayMode.Independent ? learningRates[j] / peakLearningRates[j] * r.WeightDecay : 0.0), device) : null;
        var rate = Column(learningRates.Select(lr => lr / bias1), device);
        var grads = Gradients();
        var squares = measureUpdate ? new List<Tensor>() : null;
        long count = 0;
        using var _ = no_grad();
        for (int e = 0; e < _entries.Length; e++)
        {
            var entry = _entries[e];
            var p = entry.Tensor.Value.view(k, -1);
            var (m, v) = (entry.M.view(k, -1), entry.V.view(k, -1));
            var g = grads[e];
            m.TimesInPlace(_beta1).PlusScaledInPlace(g, 1 - _beta1);
            v.TimesInPlace(_beta2).AddcmulInPlace(g, g, 1 - _beta2);
            var denominator = v.sqrt().DividedByInPlace(Math.Sqrt(bias2)).PlusInPlace(_epsilon);
            Tensor? before = measureUpdate ? p.clone() : null;
            var scale = entry.Tensor.RateScaleRow ?? ScalarRow(entry.Tensor.RateScale, device);
            if (anyDecay && (entry.Tensor.DecayRow is not null || entry.Tensor.Decays))
            {
                var decay = (coupled! * scale).Plus(independent!);
                if (entry.Tensor.DecayRow is { } mask) decay = decay * mask;
                p.mul_(decay.neg_().PlusInPlace(1));
            }
            p.AddcdivInPlace(m * (rate * scale), denominator, -1);
            if (before is not null)
            {
                squares!.Add((p - before).SquaredInPlace().sum([1]));
                count += p.shape[1];
            }
        }
        if (squares is null || count == 0) return null;
        var total = squares.Count == 1 ? squares[0] : stack(squares.ToArray()).sum([0]);
        return total.DividedByInPlace(count).sqrt_();
    }

    /// <summary>Clears every gradient for the next step.</summary>
    public void ZeroGrad() => _parametrisation.ClearGradients();

    /// <summary>Keeps only the members at <paramref name="keep"/> (indices into the current members): their moments and settings.</summary>
    public void KeepMembers(long[] keep)
    {
        ArgumentNullException.ThrowIfNull(keep);
        using var index = tensor(keep, device: _entries.Length > 0 ? _entries[0].M.device : CPU);
        using (no_grad())
            foreach (var entry in _entries)
            {
                var (m, v) = (entry.M, entry.V);
                entry.M = m.index_select(0, index).DetachFromDisposeScope();
                entry.V = v.index_select(0, index).DetachFromDisposeScope();
                m.Dispose();
                v.Dispose();
            }
        Runs = keep.Select(i => Runs[(int)i]).ToArray();
        // The parametrisation's tensors were replaced by its own KeepMembers: follow them.
        var trainable = _parametrisation.Trainable;
        for (int e = 0; e < _entries.Length; e++) _entries[e].Tensor = trainable[e];
    }

    /// <summary>Frees the moment buffers.</summary>
    public void Dispose()
    {
        foreach (var e in _entries) { e.M.Dispose(); e.V.Dispose(); }
    }

    // Each trainable tensor's gradient as [K, n]; a tensor without one (unused this step) gets zeros.
    private List<Tensor> Gradients() =>
        _entries.Select((e, i) => (_parametrisation.Gradient(i) ?? zeros_like(e.Tensor.Value)).view(K, -1)).ToList();

    private static Tensor Column(IEnumerable<double> values, Device device)
    {
        var array = values.Select(x => (float)x).ToArray();
        return tensor(array, [array.Length, 1], device: device);
    }

    private static Tensor ScalarRow(double value, Device device) => tensor(new[] { (float)value }, [1, 1], device: device);
}
