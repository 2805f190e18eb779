using ScalingInteractive.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.Proxies;

/// <summary>
/// K proxy transformers of one shape as one model with a leading ensemble dimension: every weight is [K, ...], every
/// projection one batched matmul (<c>bmm</c>) over the K members, attention one SDPA call over K x batch. Each member
/// is initialised exactly as the separate <see cref="ProxyTransformer"/> with its seed (built as such and stacked).
/// All members' parameters live in one flat buffer [K, P] (the named parameters are views of it) and their gradients
/// are gathered into one [K, P] tensor after each backward, so the optimiser, clipping and statistics are a handful of
/// ops over [K, P] whatever the parameter count.
/// </summary>
public sealed class ProxyEnsembleModel : IDisposable
{
    private readonly List<(string Name, long[] Shape, long Offset, long Count)> _layout = new();
    private readonly Dictionary<string, Tensor> _views = new(StringComparer.Ordinal);
    private readonly double _scale, _queryFactor, _outputMultiplier;
    private readonly int _heads, _headDim;

    /// <summary>Builds one member per seed (each as the separate model with that seed would be) and stacks them.</summary>
    public ProxyEnsembleModel(ProxyModelConfig config, IReadOnlyList<long> seeds, Device device)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(seeds);
        if (seeds.Count == 0) throw new ArgumentException("An ensemble needs at least one member.", nameof(seeds));
        Config = config.Validate();
        Device = device;
        _heads = config.Heads;
        _headDim = config.EffectiveHeadDim;
        _scale = config.MupBaseWidth is null ? 1.0 / Math.Sqrt(_headDim) : 1.0 / _headDim;
        _queryFactor = _scale * Math.Sqrt(_headDim);
        _outputMultiplier = 1.0 / config.WidthMultiplier;
        using var scope = NewDisposeScope();
        var rows = new List<Tensor>();
        IReadOnlyDictionary<string, double>? scales = null;
        foreach (long seed in seeds)
        {
            using var member = new ProxyTransformer(config, device, seed);
            var named = member.named_parameters().ToList();
            if (_layout.Count == 0)
            {
                long offset = 0;
                foreach (var (name, p) in named)
                {
                    _layout.Add((name, p.shape, offset, p.numel()));
                    offset += p.numel();
                }
                scales = member.LearningRateScales();
                Parameters = member.ParameterCount(includeEmbeddings: false);
                ParametersWithEmbeddings = member.ParameterCount(includeEmbeddings: true);
            }
            rows.Add(cat(named.Select(p => p.parameter.detach().flatten()).ToList(), 0));
        }
        Size = _layout.Sum(l => l.Count);
        Flat = stack(rows, 0).MoveToOuterDisposeScope(); // [K, P]
        // Per-element rows: muP learning-rate multiplier, and 1 where weight decay applies (matrices and embeddings).
        var scaleRow = new float[Size];
        var decayRow = new float[Size];
        foreach (var (name, shape, offset, count) in _layout)
        {
            float s = (float)(scales!.TryGetValue(name, out double v) ? v : 1.0);
            Array.Fill(scaleRow, s, (int)offset, (int)count);
            Array.Fill(decayRow, shape.Length >= 2 ? 1f : 0f, (int)offset, (int)count);
        }
        ScaleRow = tensor(scaleRow, [1, Size], device: device).MoveToOuterDisposeScope();
        DecayRow = tensor(decayRow, [1, Size], device: device).MoveToOuterDisposeScope();
        BuildViews();
    }

    /// <summary>The members' shared shape.</summary>
    public ProxyModelConfig Config { get; }

    /// <summary>Device of every tensor.</summary>
    public Device Device { get; }

    /// <summary>Members K.</summary>
    public long Members => Flat.shape[0];

    /// <summary>Parameters per member P.</summary>
    public long Size { get; }

    /// <summary>Non-embedding parameters of one member.</summary>
    public long Parameters { get; }

    /// <summary>All parameters of one member.</summary>
    public long ParametersWithEmbeddings { get; }

    /// <summary>All members' parameters [K, P] (the named weights are views of it).</summary>
    public Tensor Flat { get; private set; }

    /// <summary>
    /// After a backward: every member's gradient as one [K, P] tensor (in the layout of <see cref="Flat"/>), and the
    /// weights' own gradients cleared for the next step. Autograd leaves each weight a dense gradient of its own (a
    /// gradient preset as a view of a flat buffer breaks LibTorch's gradient layout contract); one <c>cat</c> joins them.
    /// </summary>
    public Tensor GatherGradients()
    {
        long k = Members;
        var parts = new List<Tensor>(_layout.Count);
        foreach (var (name, _, _, count) in _layout)
        {
            var view = _views[name];
            var grad = view.grad;
            parts.Add(grad is null ? zeros(k, count, device: Device) : grad.reshape(k, count));
        }
        var flat = cat(parts, 1);
        foreach (var view in _views.Values) view.grad = null;
        return flat;
    }

    /// <summary>muP learning-rate multiplier per element [1, P].</summary>
    public Tensor ScaleRow { get; }

    /// <summary>1 where weight decay applies, else 0 [1, P].</summary>
    public Tensor DecayRow { get; }

    /// <summary>When true, <see cref="Forward"/> records per-member statistics (max attention logit and residual RMS per layer).</summary>
    public bool CaptureStatistics { get; set; }

    /// <summary>Max attention logit per layer, each [K], from the last capturing forward.</summary>
    public List<Tensor> LastMaxAttentionLogits { get; } = new();

    /// <summary>Residual-stream RMS after each block, each [K], from the last capturing forward.</summary>
    public List<Tensor> LastActivationRms { get; } = new();

    /// <summary>Member <paramref name="member"/>'s weight <paramref name="name"/> (a view, e.g. <c>blocks.0.attn.qkv.weight</c>).</summary>
    public Tensor Weight(string name, int member) => _views[name][member];

    /// <summary>Keeps only the members at <paramref name="keep"/> (with the given optimiser state rows, which are replaced too).</summary>
    public void Keep(long[] keep, params Tensor[] state)
    {
        using var index = tensor(keep, device: Device);
        using (no_grad())
        {
            var flat = Flat.index_select(0, index).DetachFromDisposeScope();
            for (int i = 0; i < state.Length; i++)
            {
                var kept = state[i].index_select(0, index);
                state[i].set_(kept); // the caller's handles now hold the kept rows
            }
            DisposeViews();
            Flat.Dispose();
            Flat = flat;
        }
        BuildViews();
    }

    private void BuildViews()
    {
        long k = Flat.shape[0];
        foreach (var (name, shape, offset, count) in _layout)
        {
            var view = Flat.narrow(1, offset, count).view([k, .. shape]).DetachFromDisposeScope();
            view.requires_grad_(true); // a leaf: Flat itself does not require grad, and in-place updates of Flat show here
            _views[name] = view;
        }
    }

    private void DisposeViews()
    {
        foreach (var v in _views.Values) v.Dispose();
        _views.Clear();
    }

    private Tensor P(string name) => _views[name];

    private Tensor? Optional(string name) => _views.TryGetValue(name, out var t) ? t : null;

    // x [K, N, in] times W [K, out, in]^T (+ b [K, out]).
    private static Tensor Linear(Tensor x, Tensor w, Tensor? b) =>
        b is null ? x.bmm(w.transpose(1, 2)) : b.unsqueeze(1).baddbmm(x, w.transpose(1, 2));

    // Layer norm over the last dimension with a per-member gain (and bias): x [K, ..., d], gain [K, d].
    private static Tensor LayerNorm(Tensor x, Tensor gain, Tensor? bias)
    {
        long k = x.shape[0], d = x.shape[^1];
        var normed = nn.functional.layer_norm(x, [d]).view(k, -1, d) * gain.unsqueeze(1);
        if (bias is not null) normed = normed.Plus(bias.unsqueeze(1));
        return normed.view(x.shape);
    }

    /// <summary>
    /// Logits [K, B*T, V] for int64 tokens [B, T] (every member reads the same batch) or [K, B, T] (one batch per member).
    /// </summary>
    public Tensor Forward(Tensor tokens)
    {
        long k = Members;
        bool shared = tokens.dim() == 2;
        long b = tokens.shape[^2], t = tokens.shape[^1], w = Config.Width, n = b * t;
        var tok = P("tok_emb.weight"); // [K, V, W]
        Tensor x;
        if (shared) x = tok.index_select(1, tokens.reshape(-1));
        else
        {
            using var offsets = TorchScalars.Arange(k, tokens.device).TimesInPlace(Config.VocabSize).view(k, 1, 1);
            x = tok.reshape(k * Config.VocabSize, w).index_select(0, tokens.Plus(offsets).reshape(-1)).view(k, n, w);
        }
        x = x.view(k, b, t, w).Plus(P("pos_emb.weight").narrow(1, 0, t).unsqueeze(1)).view(k, n, w);
        LastMaxAttentionLogits.Clear();
        LastActivationRms.Clear();
        for (int i = 0; i < Config.Depth; i++)
        {
            string pre = $"blocks.{i}.";
            var h = LayerNorm(x, P(pre + "ln_1.weight"), Optional(pre + "ln_1.bias"));
            x = x.Plus(Attention(h, pre + "attn.", b, t));
            h = LayerNorm(x, P(pre + "ln_2.weight"), Optional(pre + "ln_2.bias"));
            h = nn.functional.gelu(Linear(h, P(pre + "mlp.fc.weight"), Optional(pre + "mlp.fc.bias")));
            x = x.Plus(Linear(h, P(pre + "mlp.proj.weight"), Optional(pre + "mlp.proj.bias")));
            if (CaptureStatistics)
                using (no_grad()) LastActivationRms.Add(x.detach().Squared().view(k, -1).mean([1]).sqrt());
        }
        var logits = Linear(LayerNorm(x, P("ln_f.weight"), Optional("ln_f.bias")), P("head.weight"), Optional("head.bias"));
        return _outputMultiplier == 1.0 ? logits : logits.Times(_outputMultiplier);
    }

    private Tensor Attention(Tensor h, string pre, long b, long t)
    {
        long k = Members, kb = k * b;
        var parts = Linear(h, P(pre + "qkv.weight"), Optional(pre + "qkv.bias")).view(kb, t, 3, _heads, _headDim).permute(2, 0, 3, 1, 4);
        var q = parts[0];
        var key = parts[1];
        var v = parts[2];
        if (Optional(pre + "q_ln.weight") is { } qGain)
        {
            q = LayerNorm(q.contiguous().view(k, -1, _headDim), qGain, Optional(pre + "q_ln.bias")).view(kb, _heads, t, _headDim);
            key = LayerNorm(key.contiguous().view(k, -1, _headDim), P(pre + "k_ln.weight"), Optional(pre + "k_ln.bias")).view(kb, _heads, t, _headDim);
        }
        if (CaptureStatistics)
            using (no_grad())
            {
                var scores = q.detach().matmul(key.detach().transpose(-2, -1)).TimesInPlace(_scale);
                using var future = ones(t, t, dtype: ScalarType.Bool, device: q.device).triu_(1);
                LastMaxAttentionLogits.Add(scores.MaskedFillInPlace(future, double.NegativeInfinity).view(k, -1).amax([1]));
            }
        if (_queryFactor != 1.0) q = q.Times(_queryFactor);
        var y = nn.functional.scaled_dot_product_attention(q, key, v, is_casual: true); // [K*B, H, T, hd]
        y = y.transpose(1, 2).reshape(k, b * t, _heads * _headDim);
        return Linear(y, P(pre + "proj.weight"), Optional(pre + "proj.bias"));
    }

    /// <summary>Per-member mean cross-entropy [K] of logits [K, N, V] against targets [N] (shared) or [K, N].</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor targets)
    {
        long k = logits.shape[0], n = logits.shape[1], v = logits.shape[2];
        var flatTargets = targets.dim() == 2 && targets.shape[0] == k && targets.numel() == k * n ? targets.reshape(-1) : targets.reshape(1, -1).expand(k, n).reshape(-1);
        return nn.functional.cross_entropy(logits.reshape(k * n, v), flatTargets, reduction: nn.Reduction.None).view(k, n).mean([1]);
    }

    /// <summary>Frees the buffers.</summary>
    public void Dispose()
    {
        DisposeViews();
        Flat.Dispose();
        ScaleRow.Dispose();
        DecayRow.Dispose();
    }
}
