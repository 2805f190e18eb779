using ScalingInteractive.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScalingInteractive.Proxies;

/// <summary>
/// A small decoder-only transformer in the style of nanoGPT: learned token and position embeddings, pre-layernorm
/// blocks of causal self-attention and a GELU MLP of 4x width, a final layer norm and an untied output head.
/// Options: biases, qk-layernorm and muP (see <see cref="ProxyModelConfig"/>). Parameter names are stable, e.g.
/// <c>tok_emb.weight</c>, <c>blocks.0.attn.qkv.weight</c>, <c>blocks.0.mlp.fc.weight</c>, <c>head.weight</c>; every
/// projection is a TorchSharp <see cref="Linear"/> so adapters (LoRA) can wrap it by name.
/// </summary>
public sealed class ProxyTransformer : nn.Module<Tensor, Tensor>
{
    // Field names are the parameter-name prefixes (TorchSharp registers fields by name).
#pragma warning disable IDE1006
    private readonly Embedding tok_emb;
    private readonly Embedding pos_emb;
    private readonly ModuleList<ProxyBlock> blocks;
    private readonly LayerNorm ln_f;
    private nn.Module<Tensor, Tensor> head;
#pragma warning restore IDE1006
    private readonly double _outputMultiplier;

    /// <summary>Builds the model on <paramref name="device"/> with weights drawn from a generator seeded by <paramref name="seed"/>.</summary>
    public ProxyTransformer(ProxyModelConfig config, Device device, long seed) : base("ProxyTransformer")
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(device);
        Config = config.Validate();
        Hosting.TorchRuntime.EnsureAvailable();
        int w = config.Width;
        tok_emb = nn.Embedding(config.VocabSize, w);
        pos_emb = nn.Embedding(config.ContextLength, w);
        blocks = new ModuleList<ProxyBlock>();
        for (int i = 0; i < config.Depth; i++) blocks.Add(new ProxyBlock(config));
        ln_f = nn.LayerNorm([w], bias: config.Bias);
        head = nn.Linear(w, config.VocabSize, hasBias: config.Bias);
        _outputMultiplier = 1.0 / config.WidthMultiplier;
        RegisterComponents();
        Initialise(seed);
        Device = device;
        if (device.type != DeviceType.CPU) this.to(device);
    }

    /// <summary>The configuration the model was built from.</summary>
    public ProxyModelConfig Config { get; }

    /// <summary>The device the parameters live on.</summary>
    public Device Device { get; }

    /// <summary>The blocks, in order (for inspection and adapters).</summary>
    public IReadOnlyList<ProxyBlock> Blocks => blocks.ToList();

    /// <summary>
    /// When true, <see cref="forward"/> also records per-layer statistics (<see cref="LastMaxAttentionLogits"/>,
    /// <see cref="LastActivationRms"/>) as detached scalar tensors on the device: no host synchronisation. Turn it
    /// on only for logging steps: the max attention logit needs an explicit QK^T per layer.
    /// </summary>
    public bool CaptureStatistics { get; set; }

    /// <summary>Max pre-softmax attention logit per layer from the last forward with <see cref="CaptureStatistics"/> (scalars).</summary>
    public IReadOnlyList<Tensor> LastMaxAttentionLogits => blocks.Select(b => b.Attention.LastMaxLogit!).Where(t => t is not null).ToList();

    /// <summary>RMS of the residual stream after each block from the last forward with <see cref="CaptureStatistics"/> (scalars).</summary>
    public IReadOnlyList<Tensor> LastActivationRms => blocks.Select(b => b.LastOutputRms!).Where(t => t is not null).ToList();

    /// <summary>Logits (B, T, V) for int64 tokens (B, T) with T at most the context length.</summary>
    public override Tensor forward(Tensor tokens)
    {
        if (tokens.dim() != 2) throw new ArgumentException($"tokens must have shape (batch, time); got {tokens.dim()} dimensions.", nameof(tokens));
        long t = tokens.shape[1];
        if (t > Config.ContextLength) throw new ArgumentException($"Sequence length {t} exceeds the context length {Config.ContextLength}.", nameof(tokens));
        using var positions = TorchScalars.Arange(t, tokens.device);
        var x = tok_emb.forward(tokens).Plus(pos_emb.forward(positions));
        foreach (var block in blocks)
        {
            block.CaptureStatistics = CaptureStatistics;
            x = block.forward(x);
        }
        var logits = head.forward(ln_f.forward(x));
        return _outputMultiplier == 1.0 ? logits : logits.Times(_outputMultiplier);
    }

    /// <summary>
    /// Number of parameters; without embeddings it leaves out the token and position tables (the head stays in: it is
    /// a matrix multiply every token pays for, as in the 6N FLOP estimate).
    /// </summary>
    public long ParameterCount(bool includeEmbeddings) =>
        named_parameters().Where(p => includeEmbeddings || !IsEmbedding(p.name)).Sum(p => p.parameter.numel());

    /// <summary>
    /// Per-parameter learning-rate multipliers: under muP, 1/m for the hidden matrices (qkv, attention output, MLP
    /// in and out) and 1 for embeddings, norms, biases and the head (whose output is already scaled by 1/m); under
    /// the standard parametrisation 1 everywhere.
    /// </summary>
    public IReadOnlyDictionary<string, double> LearningRateScales()
    {
        double hidden = 1.0 / Config.WidthMultiplier;
        return named_parameters().ToDictionary(p => p.name, p => IsHiddenMatrix(p.name) ? hidden : 1.0);
    }

    /// <summary>Mean next-token cross-entropy (nats) of logits (B, T, V) against int64 targets (B, T).</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor targets)
    {
        long v = logits.shape[^1];
        return nn.functional.cross_entropy(logits.reshape(-1, v), targets.reshape(-1));
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

    /// <summary>
    /// Replaces the <see cref="Linear"/> projections whose name (<c>blocks.{i}.attn.qkv</c>, <c>blocks.{i}.attn.proj</c>,
    /// <c>blocks.{i}.mlp.fc</c>, <c>blocks.{i}.mlp.proj</c>, <c>head</c>) satisfies <paramref name="match"/> by
    /// <paramref name="wrap"/>(name, linear), which forward then uses: how adapters such as LoRA attach. A wrapper that
    /// keeps the original as a child keeps its parameters under the same prefix (e.g. <c>blocks.0.attn.qkv.base.weight</c>).
    /// Returns the names replaced; projections already replaced (not a Linear any more) are skipped.
    /// </summary>
    public IReadOnlyList<string> ReplaceLinears(Func<string, bool> match, Func<string, Linear, nn.Module<Tensor, Tensor>> wrap)
    {
        ArgumentNullException.ThrowIfNull(match);
        ArgumentNullException.ThrowIfNull(wrap);
        var replaced = new List<string>();
        for (int i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i];
            foreach (var (child, module) in block.Attention.Projections().ToList())
                if (module is Linear linear && match($"blocks.{i}.attn.{child}"))
                {
                    block.Attention.Replace(child, wrap($"blocks.{i}.attn.{child}", linear));
                    replaced.Add($"blocks.{i}.attn.{child}");
                }
            foreach (var (child, module) in block.Mlp.Projections().ToList())
                if (module is Linear linear && match($"blocks.{i}.mlp.{child}"))
                {
                    block.Mlp.Replace(child, wrap($"blocks.{i}.mlp.{child}", linear));
                    replaced.Add($"blocks.{i}.mlp.{child}");
                }
        }
        if (head is Linear headLinear && match("head"))
        {
            var wrapped = wrap("head", headLinear);
            register_module("head", null!);
            register_module("head", wrapped);
            head = wrapped;
            replaced.Add("head");
        }
        return replaced;
    }

    /// <summary>True for the token and position embedding tables.</summary>
    public static bool IsEmbedding(string parameterName) =>
        parameterName.StartsWith("tok_emb.", StringComparison.Ordinal) || parameterName.StartsWith("pos_emb.", StringComparison.Ordinal);

    /// <summary>True for the matrices muP treats as hidden (both dimensions grow with width).</summary>
    public static bool IsHiddenMatrix(string parameterName) =>
        parameterName.StartsWith("blocks.", StringComparison.Ordinal) && parameterName.EndsWith(".weight", StringComparison.Ordinal) &&
        (parameterName.Contains(".attn.qkv.", StringComparison.Ordinal) || parameterName.Contains(".attn.proj.", StringComparison.Ordinal) ||
         parameterName.Contains(".mlp.fc.", StringComparison.Ordinal) || parameterName.Contains(".mlp.proj.", StringComparison.Ordinal));

    private void Initialise(long seed)
    {
        // A private generator: the same seed gives the same weights whatever else touched the global RNG.
        using var generator = new Generator((ulong)seed);
        double hiddenStd = Config.InitStd / Math.Sqrt(Config.WidthMultiplier);
        double residualStd = hiddenStd / Math.Sqrt(2.0 * Config.Depth); // nanoGPT: residual projections scaled by 1/sqrt(2L)
        using var _ = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else if (name.Contains("ln", StringComparison.Ordinal)) p.FillInPlace(1.0); // layer-norm gains (ln_1, ln_2, ln_f, q_ln, k_ln)
            else if (IsHiddenMatrix(name))
                p.normal_(0, name.EndsWith(".proj.weight", StringComparison.Ordinal) ? residualStd : hiddenStd, generator);
            else p.normal_(0, Config.InitStd, generator);
        }
    }
}

/// <summary>One pre-layernorm block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).</summary>
public sealed class ProxyBlock : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly LayerNorm ln_1;
    private readonly ProxyAttention attn;
    private readonly LayerNorm ln_2;
    private readonly ProxyMlp mlp;
#pragma warning restore IDE1006

    /// <summary>Builds a block for <paramref name="config"/>.</summary>
    public ProxyBlock(ProxyModelConfig config) : base("ProxyBlock")
    {
        ln_1 = nn.LayerNorm([config.Width], bias: config.Bias);
        attn = new ProxyAttention(config);
        ln_2 = nn.LayerNorm([config.Width], bias: config.Bias);
        mlp = new ProxyMlp(config);
        RegisterComponents();
    }

    /// <summary>The attention sub-layer.</summary>
    public ProxyAttention Attention => attn;

    /// <summary>The MLP sub-layer.</summary>
    public ProxyMlp Mlp => mlp;

    /// <summary>Record statistics on the next forward (set by the model).</summary>
    public bool CaptureStatistics { get; set; }

    /// <summary>RMS of this block's output from the last capturing forward.</summary>
    public Tensor? LastOutputRms { get; private set; }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        attn.CaptureStatistics = CaptureStatistics;
        x = x.Plus(attn.forward(ln_1.forward(x)));
        x = x.Plus(mlp.forward(ln_2.forward(x)));
        if (CaptureStatistics)
        {
            using var _ = no_grad();
            LastOutputRms = x.detach().Squared().mean().sqrt();
        }
        return x;
    }
}

/// <summary>
/// Multi-head causal self-attention with one fused <c>qkv</c> projection and an output <c>proj</c>; optional
/// layer norms <c>q_ln</c>/<c>k_ln</c> on each head's queries and keys (qk-layernorm).
/// </summary>
public sealed class ProxyAttention : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private nn.Module<Tensor, Tensor> qkv;
    private nn.Module<Tensor, Tensor> proj;
    private readonly LayerNorm? q_ln;
    private readonly LayerNorm? k_ln;
#pragma warning restore IDE1006
    private readonly int _heads;
    private readonly int _headDim;
    private readonly double _scale;
    private readonly double _queryFactor;

    /// <summary>Builds the attention layer for <paramref name="config"/>.</summary>
    public ProxyAttention(ProxyModelConfig config) : base("ProxyAttention")
    {
        _heads = config.Heads;
        _headDim = config.EffectiveHeadDim;
        int inner = _heads * _headDim;
        qkv = nn.Linear(config.Width, 3L * inner, hasBias: config.Bias);
        proj = nn.Linear(inner, config.Width, hasBias: config.Bias);
        if (config.QkLayerNorm)
        {
            q_ln = nn.LayerNorm([_headDim], bias: config.Bias);
            k_ln = nn.LayerNorm([_headDim], bias: config.Bias);
        }
        // muP scales attention by 1/d_head (logits stay O(1) as width grows); the standard choice is 1/sqrt(d_head).
        _scale = config.MupBaseWidth is null ? 1.0 / Math.Sqrt(_headDim) : 1.0 / _headDim;
        _queryFactor = _scale * Math.Sqrt(_headDim); // SDPA applies 1/sqrt(d_head) itself
        RegisterComponents();
    }

    /// <summary>The projections by child name (<c>qkv</c>, <c>proj</c>).</summary>
    internal IEnumerable<(string Name, nn.Module<Tensor, Tensor> Module)> Projections() => [("qkv", qkv), ("proj", proj)];

    /// <summary>Swaps a projection (used by <see cref="ProxyTransformer.ReplaceLinears"/>).</summary>
    internal void Replace(string child, nn.Module<Tensor, Tensor> module)
    {
        register_module(child, null!); // TorchSharp removes a child registered under a null module
        register_module(child, module);
        if (child == "qkv") qkv = module; else if (child == "proj") proj = module; else throw new ArgumentException($"ProxyAttention has no projection '{child}'.", nameof(child));
    }

    /// <summary>The factor applied to q·k before the softmax.</summary>
    public double Scale => _scale;

    /// <summary>Record the max attention logit on the next forward.</summary>
    public bool CaptureStatistics { get; set; }

    /// <summary>Max attention logit (over batch, heads and causal positions) of the last capturing forward.</summary>
    public Tensor? LastMaxLogit { get; private set; }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        long b = x.shape[0], t = x.shape[1];
        var parts = qkv.forward(x).view(b, t, 3, _heads, _headDim).permute(2, 0, 3, 1, 4); // (3, B, H, T, hd)
        var q = parts[0];
        var k = parts[1];
        var v = parts[2];
        if (q_ln is not null && k_ln is not null)
        {
            q = q_ln.forward(q);
            k = k_ln.forward(k);
        }
        if (CaptureStatistics) LastMaxLogit = MaxLogit(q, k, t);
        if (_queryFactor != 1.0) q = q.Times(_queryFactor);
        var y = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        return proj.forward(y.transpose(1, 2).reshape(b, t, _heads * _headDim));
    }

    private Tensor MaxLogit(Tensor q, Tensor k, long t)
    {
        using var _ = no_grad();
        var logits = q.detach().matmul(k.detach().transpose(-2, -1)).TimesInPlace(_scale);
        using var future = ones(t, t, dtype: ScalarType.Bool, device: q.device).triu_(1);
        return logits.MaskedFillInPlace(future, double.NegativeInfinity).max();
    }
}

/// <summary>The MLP sub-layer: <c>fc</c> (width to 4x width), GELU, <c>proj</c> (back to width).</summary>
public sealed class ProxyMlp : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private nn.Module<Tensor, Tensor> fc;
    private nn.Module<Tensor, Tensor> proj;
#pragma warning restore IDE1006

    /// <summary>The projections by child name (<c>fc</c>, <c>proj</c>).</summary>
    internal IEnumerable<(string Name, nn.Module<Tensor, Tensor> Module)> Projections() => [("fc", fc), ("proj", proj)];

    /// <summary>Swaps a projection (used by <see cref="ProxyTransformer.ReplaceLinears"/>).</summary>
    internal void Replace(string child, nn.Module<Tensor, Tensor> module)
    {
        register_module(child, null!); // TorchSharp removes a child registered under a null module
        register_module(child, module);
        if (child == "fc") fc = module; else if (child == "proj") proj = module; else throw new ArgumentException($"ProxyMlp has no projection '{child}'.", nameof(child));
    }

    /// <summary>Builds the MLP for <paramref name="config"/>.</summary>
    public ProxyMlp(ProxyModelConfig config) : base("ProxyMlp")
    {
        fc = nn.Linear(config.Width, 4L * config.Width, hasBias: config.Bias);
        proj = nn.Linear(4L * config.Width, config.Width, hasBias: config.Bias);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => proj.forward(nn.functional.gelu(fc.forward(x)));
}
