namespace ScalingInteractive.Proxies;

/// <summary>
/// Shape and parametrisation of a <see cref="ProxyTransformer"/>: a small decoder-only GPT as used by
/// Wortsman et al. (2023) to reproduce large-scale training instabilities at small scale.
/// </summary>
public sealed record ProxyModelConfig
{
    /// <summary>Residual stream width d_model (default 64).</summary>
    public int Width { get; init; } = 64;

    /// <summary>Number of transformer blocks (default 2).</summary>
    public int Depth { get; init; } = 2;

    /// <summary>Attention heads per block (default 4).</summary>
    public int Heads { get; init; } = 4;

    /// <summary>Size of one head; null means <see cref="Width"/> / <see cref="Heads"/>.</summary>
    public int? HeadDim { get; init; }

    /// <summary>Vocabulary size (256 for byte-level tokens).</summary>
    public int VocabSize { get; init; } = 256;

    /// <summary>Longest sequence the learned position embedding covers (default 64).</summary>
    public int ContextLength { get; init; } = 64;

    /// <summary>Layer-normalise queries and keys (per head) before the dot product (Dehghani et al. 2023).</summary>
    public bool QkLayerNorm { get; init; }

    /// <summary>Biases in the linear layers and layer norms (nanoGPT's <c>bias</c> flag).</summary>
    public bool Bias { get; init; }

    /// <summary>
    /// Base width of muP (Yang et al. 2022); null means the standard parametrisation. With a base width b and
    /// m = Width / b: hidden matrices start with std <see cref="InitStd"/>/sqrt(m) and learn at rate/m, attention is
    /// scaled by 1/head_dim instead of 1/sqrt(head_dim), and the logits are multiplied by 1/m.
    /// </summary>
    public double? MupBaseWidth { get; init; }

    /// <summary>Standard deviation of the normal initialisation of weights (nanoGPT: 0.02).</summary>
    public double InitStd { get; init; } = 0.02;

    /// <summary>The head size in effect.</summary>
    public int EffectiveHeadDim => HeadDim ?? (Heads > 0 ? Width / Heads : 0);

    /// <summary>Width multiplier m = Width / MupBaseWidth (1 under the standard parametrisation).</summary>
    public double WidthMultiplier => MupBaseWidth is double b ? Width / b : 1.0;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public ProxyModelConfig Validate()
    {
        Positive(Width, nameof(Width));
        Positive(Depth, nameof(Depth));
        Positive(Heads, nameof(Heads));
        Positive(VocabSize, nameof(VocabSize));
        Positive(ContextLength, nameof(ContextLength));
        if (HeadDim is int h && h <= 0)
            throw new ArgumentException($"{nameof(HeadDim)} must be a positive integer or null (Width/Heads); got {h}.", nameof(HeadDim));
        if (HeadDim is null && Width % Heads != 0)
            throw new ArgumentException($"{nameof(Width)} {Width} is not divisible by {nameof(Heads)} {Heads}: choose a width that is a multiple of the head count, or set {nameof(HeadDim)} explicitly.", nameof(Width));
        if (MupBaseWidth is double b && (!double.IsFinite(b) || b <= 0))
            throw new ArgumentException($"{nameof(MupBaseWidth)} must be a positive width (or null for the standard parametrisation); got {b}.", nameof(MupBaseWidth));
        if (!double.IsFinite(InitStd) || InitStd <= 0)
            throw new ArgumentException($"{nameof(InitStd)} must be a positive finite standard deviation; got {InitStd}.", nameof(InitStd));
        return this;
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentException($"{name} must be a positive integer; got {value}.", name);
    }
}
