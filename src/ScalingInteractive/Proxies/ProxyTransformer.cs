using ScalingInteractive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.Proxies;

/// <summary>
/// A small decoder-only transformer in the style of nanoGPT: learned token and position embeddings, pre-layernorm
/// blocks of causal self-attention and a GELU MLP of 4x width, a final layer norm and an untied output head. Options:
/// biases, qk-layernorm and muP (see <see cref="ProxyModelConfig"/>).
/// </summary>
/// <remarks>
/// The one model class of the package, for one run and for K runs trained at once (an ensemble: every weight has a
/// leading member dimension, every projection is one batched matmul over the members, attention one SDPA call over K x
/// batch). Member k is initialised from a generator seeded with its seed, exactly as a model of one member with that
/// seed, so a run's numbers do not depend on which runs share its ensemble. All members' parameters live in one flat
/// [K, P] buffer (<see cref="Flat"/>); the named parameters (<c>tok_emb.weight</c>, <c>blocks.0.attn.qkv.weight</c>,
/// ..., <c>head.weight</c>) are views of it, with the member shape for one member ([out, in] for a projection) and
/// [K, ...] for several. So the optimiser works on one tensor, and LoRA, subspace probes and checkpoints see ordinary
/// named weights.
/// </remarks>
public sealed class ProxyTransformer : nn.Module<Tensor, Tensor>, IMemberBatchedModel
{
    private readonly List<(string Name, long[] Shape, long Offset, long Count)> _layout = new();
    private readonly Dictionary<string, Tensor> _weights = new(StringComparer.Ordinal);
    private readonly double _scale, _queryFactor, _outputMultiplier;
    private readonly int _heads, _headDim;

    /// <summary>One model (one member) on <paramref name="device"/>, its weights drawn from a generator seeded by <paramref name="seed"/>.</summary>
    public ProxyTransformer(ProxyModelConfig config, Device device, long seed) : this(config, [seed], device) { }

    /// <summary>One member per seed (each initialised as the one-member model with that seed would be), trained together.</summary>
    public ProxyTransformer(ProxyModelConfig config, IReadOnlyList<long> seeds, Device device) : base("ProxyTransformer")
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(seeds);
        ArgumentNullException.ThrowIfNull(device);
        if (seeds.Count == 0) throw new ArgumentException("A model needs at least one member (one seed).", nameof(seeds));
        Config = config.Validate();
        Hosting.TorchRuntime.EnsureAvailable();
        Device = device;
        _heads = config.Heads;
        _headDim = config.EffectiveHeadDim;
        // muP scales attention by 1/d_head (logits stay O(1) as width grows); the standard choice is 1/sqrt(d_head).
        _scale = config.MupBaseWidth is null ? 1.0 / Math.Sqrt(_headDim) : 1.0 / _headDim;
        _queryFactor = _scale * Math.Sqrt(_headDim); // SDPA applies 1/sqrt(d_head) itself
        _outputMultiplier = 1.0 / config.WidthMultiplier;
        long offset = 0;
        foreach (var (name, shape) in Shapes(config))
        {
            long count = shape.Aggregate(1L, (a, b) => a * b);
            _layout.Add((name, shape, offset, count));
            offset += count;
        }
        Size = offset;
        using (var scope = NewDisposeScope())
        {
            var rows = seeds.Select(seed => Initialise(seed)).ToList();
            Flat = stack(rows, 0).to(device).MoveToOuterDisposeScope(); // [K, P]
        }
        var scaleRow = new float[Size];
        var decayRow = new float[Size];
        foreach (var (name, shape, start, count) in _layout)
        {
            Array.Fill(scaleRow, (float)(IsHiddenMatrix(name) ? _outputMultiplier : 1.0), (int)start, (int)count);
            Array.Fill(decayRow, shape.Length >= 2 ? 1f : 0f, (int)start, (int)count);
        }
        ScaleRow = tensor(scaleRow, [1, Size], device: device);
        DecayRow = tensor(decayRow, [1, Size], device: device);
        RegisterParameters();
    }

    /// <summary>The configuration the model was built from.</summary>
    public ProxyModelConfig Config { get; }

    /// <summary>The device the parameters live on.</summary>
    public Device Device { get; }

    /// <summary>Members K.</summary>
    public long Members => Flat.shape[0];

    /// <summary>Parameters per member P.</summary>
    public long Size { get; }

    /// <summary>All members' parameters [K, P] (the named parameters are views of it).</summary>
    public Tensor Flat { get; private set; }

    /// <summary>muP learning-rate multiplier per element [1, P] (1/m for the hidden matrices, else 1).</summary>
    public Tensor ScaleRow { get; }

    /// <summary>1 where weight decay applies (matrices and embeddings), else 0 [1, P].</summary>
    public Tensor DecayRow { get; }

    /// <summary>
    /// When true, <see cref="Forward"/> also records per-layer statistics (<see cref="LastMaxAttentionLogits"/>,
    /// <see cref="LastActivationRms"/>) as detached tensors on the device: no host synchronisation. Turn it on only for
    /// logging steps: the max attention logit needs an explicit QK^T per layer.
    /// </summary>
    public bool CaptureStatistics { get; set; }

    /// <summary>Max pre-softmax attention logit per layer, each [K], from the last capturing forward.</summary>
    public List<Tensor> LastMaxAttentionLogits { get; } = new();

    /// <summary>RMS of the residual stream after each block, each [K], from the last capturing forward.</summary>
    public List<Tensor> LastActivationRms { get; } = new();

    /// <summary>Logits (B, T, V) for int64 tokens (B, T) with T at most the context length; (K, B, T, V) for K members.</summary>
    public override Tensor forward(Tensor tokens)
    {
        if (tokens.dim() != 2) throw new ArgumentException($"tokens must have shape (batch, time); got {tokens.dim()} dimensions.", nameof(tokens));
        long b = tokens.shape[0], t = tokens.shape[1];
        var logits = Forward(tokens);
        return Members == 1 ? logits.view(b, t, Config.VocabSize) : logits.view(Members, b, t, Config.VocabSize);
    }

    /// <summary>
    /// Logits [K, B*T, V] for int64 tokens [B, T] (every member reads the same batch) or [K, B, T] (one batch per member).
    /// </summary>
    public Tensor Forward(Tensor tokens)
    {
        long k = Members;
        bool shared = tokens.dim() == 2;
        long b = tokens.shape[^2], t = tokens.shape[^1], w = Config.Width, n = b * t;
        if (t > Config.ContextLength) throw new ArgumentException($"Sequence length {t} exceeds the context length {Config.ContextLength}.", nameof(tokens));
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

    // x [K, N, in] times W [K, out, in]^T (+ b [K, out], broadcast over N: baddbmm's backward does not reduce a broadcast bias).
    private static Tensor Linear(Tensor x, Tensor w, Tensor? b) =>
        b is null ? x.bmm(w.transpose(1, 2)) : x.bmm(w.transpose(1, 2)).Plus(b.unsqueeze(1));

    // Layer norm over the last dimension with a per-member gain (and bias): x [K, ..., d], gain [K, d].
    private static Tensor LayerNorm(Tensor x, Tensor gain, Tensor? bias)
    {
        long k = x.shape[0], d = x.shape[^1];
        var normed = nn.functional.layer_norm(x, [d]).view(k, -1, d) * gain.unsqueeze(1);
        if (bias is not null) normed = normed.Plus(bias.unsqueeze(1));
        return normed.view(x.shape);
    }

    // A weight with its member dimension in front (one member: the parameter's own shape, unsqueezed: a view).
    private Tensor P(string name) => Members == 1 ? _weights[name].unsqueeze(0) : _weights[name];

    private Tensor? Optional(string name) => _weights.ContainsKey(name) ? P(name) : null;

    /// <summary>Member <paramref name="member"/>'s weights by name, each with the member shape (views of <see cref="Flat"/>).</summary>
    public IReadOnlyDictionary<string, Tensor> MemberWeights(int member = 0)
    {
        if (member < 0 || member >= Members) throw new ArgumentOutOfRangeException(nameof(member), $"Member {member} is outside 0..{Members - 1}.");
        return _layout.ToDictionary(l => l.Name, l => Flat[member].narrow(0, l.Offset, l.Count).view(l.Shape));
    }

    /// <inheritdoc />
    public Tensor GatherGradients()
    {
        long k = Members;
        var parts = new List<Tensor>(_layout.Count);
        foreach (var (name, _, _, count) in _layout)
        {
            var grad = _weights[name].grad;
            parts.Add(grad is null ? zeros(k, count, device: Device) : grad.reshape(k, count));
        }
        var flat = cat(parts, 1);
        foreach (var p in _weights.Values) p.grad = null;
        return flat;
    }

    /// <inheritdoc />
    public void KeepMembers(long[] keep)
    {
        ArgumentNullException.ThrowIfNull(keep);
        using var index = tensor(keep, device: Device);
        using (no_grad())
        {
            var kept = Flat.index_select(0, index).DetachFromDisposeScope();
            Flat.Dispose();
            Flat = kept;
        }
        RegisterParameters();
    }

    // Every named parameter as a view of Flat: the member shape for one member, [K, ...] for several.
    private void RegisterParameters()
    {
        long k = Members;
        foreach (var (name, shape, offset, count) in _layout)
        {
            // Kept out of any dispose scope: KeepMembers runs inside a training step's scope.
            var view = Flat.narrow(1, offset, count).view(k == 1 ? shape : [k, .. shape]).DetachFromDisposeScope();
            var parameter = new TorchSharp.Modules.Parameter(view, requires_grad: true);
            parameter.DetachFromDisposeScope();
            if (_weights.TryGetValue(name, out var previous)) previous.Dispose(); // a view of the previous buffer
            _weights[name] = parameter;
            ConditionallyRegisterParameter(name, parameter);
        }
    }

    // The parameter names and member shapes in the order the weights are initialised (a fixed order: it is the seed's draw order).
    private static IEnumerable<(string Name, long[] Shape)> Shapes(ProxyModelConfig c)
    {
        long w = c.Width, inner = (long)c.Heads * c.EffectiveHeadDim, hd = c.EffectiveHeadDim;
        IEnumerable<(string, long[])> Norm(string name, long d) =>
            c.Bias ? [(name + ".weight", [d]), (name + ".bias", [d])] : [(name + ".weight", [d])];
        IEnumerable<(string, long[])> Projection(string name, long outputs, long inputs) =>
            c.Bias ? [(name + ".weight", [outputs, inputs]), (name + ".bias", [outputs])] : [(name + ".weight", [outputs, inputs])];
        yield return ("tok_emb.weight", [c.VocabSize, w]);
        yield return ("pos_emb.weight", [c.ContextLength, w]);
        for (int i = 0; i < c.Depth; i++)
        {
            string pre = $"blocks.{i}.";
            foreach (var p in Norm(pre + "ln_1", w)) yield return p;
            foreach (var p in Projection(pre + "attn.qkv", 3 * inner, w)) yield return p;
            foreach (var p in Projection(pre + "attn.proj", w, inner)) yield return p;
            if (c.QkLayerNorm)
            {
                foreach (var p in Norm(pre + "attn.q_ln", hd)) yield return p;
                foreach (var p in Norm(pre + "attn.k_ln", hd)) yield return p;
            }
            foreach (var p in Norm(pre + "ln_2", w)) yield return p;
            foreach (var p in Projection(pre + "mlp.fc", 4 * w, w)) yield return p;
            foreach (var p in Projection(pre + "mlp.proj", w, 4 * w)) yield return p;
        }
        foreach (var p in Norm("ln_f", w)) yield return p;
        foreach (var p in Projection("head", c.VocabSize, w)) yield return p;
    }

    // One member's weights as a flat row [P], drawn in the layout's order from a generator of its own (the same seed
    // gives the same weights whatever else touched LibTorch's global generator): biases 0, layer-norm gains 1, hidden
    // matrices N(0, InitStd/sqrt(m)) (residual projections further scaled by 1/sqrt(2L), as nanoGPT), the rest N(0, InitStd).
    private Tensor Initialise(long seed)
    {
        using var generator = new Generator((ulong)seed);
        double hiddenStd = Config.InitStd / Math.Sqrt(Config.WidthMultiplier);
        double residualStd = hiddenStd / Math.Sqrt(2.0 * Config.Depth);
        var parts = new List<Tensor>(_layout.Count);
        using var _ = no_grad();
        foreach (var (name, shape, _, _) in _layout)
        {
            var p = empty(shape, dtype: ScalarType.Float32);
            if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else if (name.Contains("ln", StringComparison.Ordinal)) p.FillInPlace(1.0); // ln_1, ln_2, ln_f, q_ln, k_ln
            else if (IsHiddenMatrix(name)) p.normal_(0, name.EndsWith(".proj.weight", StringComparison.Ordinal) ? residualStd : hiddenStd, generator);
            else p.normal_(0, Config.InitStd, generator);
            parts.Add(p.flatten());
        }
        return cat(parts, 0);
    }

    /// <summary>
    /// Number of parameters of one member; without embeddings it leaves out the token and position tables (the head stays
    /// in: it is a matrix multiply every token pays for, as in the 6N FLOP estimate).
    /// </summary>
    public long ParameterCount(bool includeEmbeddings) => _layout.Where(l => includeEmbeddings || !IsEmbedding(l.Name)).Sum(l => l.Count);

    /// <summary>
    /// Per-parameter learning-rate multipliers: under muP, 1/m for the hidden matrices (qkv, attention output, MLP in and
    /// out) and 1 for embeddings, norms, biases and the head (whose output is already scaled by 1/m); under the standard
    /// parametrisation 1 everywhere.
    /// </summary>
    public IReadOnlyDictionary<string, double> LearningRateScales() =>
        _layout.ToDictionary(l => l.Name, l => IsHiddenMatrix(l.Name) ? _outputMultiplier : 1.0);

    /// <summary>The factor applied to q·k before the softmax (1/sqrt(d_head), or 1/d_head under muP).</summary>
    public double AttentionScale => _scale;

    /// <summary>True for the token and position embedding tables.</summary>
    public static bool IsEmbedding(string parameterName) =>
        parameterName.StartsWith("tok_emb.", StringComparison.Ordinal) || parameterName.StartsWith("pos_emb.", StringComparison.Ordinal);

    /// <summary>True for the matrices muP treats as hidden (both dimensions grow with width).</summary>
    public static bool IsHiddenMatrix(string parameterName) =>
        parameterName.StartsWith("blocks.", StringComparison.Ordinal) && parameterName.EndsWith(".weight", StringComparison.Ordinal) &&
        (parameterName.Contains(".attn.qkv.", StringComparison.Ordinal) || parameterName.Contains(".attn.proj.", StringComparison.Ordinal) ||
         parameterName.Contains(".mlp.fc.", StringComparison.Ordinal) || parameterName.Contains(".mlp.proj.", StringComparison.Ordinal));

    /// <summary>Mean next-token cross-entropy (nats) of logits (B, T, V) or (N, V) against int64 targets (B, T) or (N).</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor targets)
    {
        long v = logits.shape[^1];
        return nn.functional.cross_entropy(logits.reshape(-1, v), targets.reshape(-1));
    }

    /// <summary>Each member's mean cross-entropy [K] of logits [K, N, V] against targets [N] (shared) or [K, N].</summary>
    public static Tensor MemberCrossEntropy(Tensor logits, Tensor targets)
    {
        long k = logits.shape[0], n = logits.shape[1], v = logits.shape[2];
        var flatTargets = targets.dim() == 2 && targets.shape[0] == k && targets.numel() == k * n ? targets.reshape(-1) : targets.reshape(1, -1).expand(k, n).reshape(-1);
        return nn.functional.cross_entropy(logits.reshape(k * n, v), flatTargets, reduction: nn.Reduction.None).view(k, n).mean([1]);
    }

    /// <summary>
    /// Mean over fixed (input, target) batches of the next-token cross-entropy of <paramref name="model"/>, without
    /// gradients: how every experiment measures a loss on held-out text.
    /// </summary>
    public static double MeanCrossEntropy(nn.Module<Tensor, Tensor> model, IReadOnlyList<(Tensor Input, Tensor Target)> batches)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batches);
        if (batches.Count == 0) throw new ArgumentException("At least one batch is needed.", nameof(batches));
        using var noGrad = no_grad();
        double sum = 0;
        foreach (var (input, target) in batches)
        {
            using var scope = NewDisposeScope();
            sum += CrossEntropy(model.forward(input), target).item<float>();
        }
        return sum / batches.Count;
    }

    /// <summary>Frees the buffers.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Flat.Dispose();
            ScaleRow.Dispose();
            DecayRow.Dispose();
        }
        base.Dispose(disposing);
    }
}
