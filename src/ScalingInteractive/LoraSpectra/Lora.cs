using ScalingInteractive.Training;
using ScalingInteractive.Core;
using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;

/// <summary>LoRA settings (Hu et al. 2021; rank-stabilised scaling of Kalajdzievski 2023).</summary>
public sealed record LoraOptions
{
    /// <summary>Rank r of the update B A.</summary>
    public int Rank { get; init; } = 8;

    /// <summary>alpha; null means 2 r (the setting Shuttleworth et al. use).</summary>
    public double? Alpha { get; init; }

    /// <summary>Rank-stabilised LoRA: scale alpha / sqrt(r) instead of alpha / r.</summary>
    public bool RankStabilized { get; init; }

    /// <summary>Dropout on the LoRA branch's input (<see cref="LoraLinear"/> only).</summary>
    public double Dropout { get; init; }

    /// <summary>
    /// Regular expressions matched against module names (for example <c>attn</c>, <c>mlp</c>, <c>blocks\.0\.attn\.qkv$</c>);
    /// a Linear whose name matches any is adapted. Default: every Linear except an output head named <c>head</c> or <c>lm_head</c>.
    /// </summary>
    public IReadOnlyList<string> TargetPatterns { get; init; } = [@"^(?!.*(^|\.)(lm_)?head$)"];

    /// <summary>The effective alpha.</summary>
    public double EffectiveAlpha => Alpha ?? 2.0 * Rank;

    /// <summary>The factor multiplying B A: alpha / r, or alpha / sqrt(r) for rsLoRA.</summary>
    public double Scaling => RankStabilized ? EffectiveAlpha / Math.Sqrt(Rank) : EffectiveAlpha / Rank;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (Rank < 1) throw new ArgumentException($"LoRA rank is {Rank}; it must be at least 1.", nameof(Rank));
        if (Alpha is { } a && !(a > 0)) throw new ArgumentException($"LoRA alpha is {a}; it must be positive.", nameof(Alpha));
        if (!(Dropout is >= 0 and < 1)) throw new ArgumentException($"LoRA dropout is {Dropout}; it must lie in [0, 1).", nameof(Dropout));
        if (TargetPatterns.Count == 0) throw new ArgumentException("LoRA needs at least one target pattern (a regular expression over module names).", nameof(TargetPatterns));
        foreach (var p in TargetPatterns)
        {
            try { _ = new Regex(p); }
            catch (ArgumentException e) { throw new ArgumentException($"LoRA target pattern '{p}' is not a valid regular expression: {e.Message}", nameof(TargetPatterns)); }
        }
    }

    /// <summary>True when a module name is targeted.</summary>
    public bool Targets(string moduleName) => TargetPatterns.Any(p => Regex.IsMatch(moduleName, p));
}

/// <summary>
/// A TorchSharp <see cref="Linear"/> with a LoRA branch: y = base(x) + scaling * B A dropout(x). A starts Kaiming-uniform
/// (a = sqrt 5, as PEFT and nn.Linear), B at zero, so the module starts equal to the base layer; the base weight and
/// bias are frozen.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // parameter names follow PEFT (lora_A, lora_B, base_layer)
    private readonly Linear base_layer;
    private readonly Parameter lora_A;
    private readonly Parameter lora_B;
    private readonly Dropout? dropout;
#pragma warning restore IDE1006

    /// <summary>Wraps <paramref name="baseLayer"/> (its parameters are frozen).</summary>
    public LoraLinear(Linear baseLayer, LoraOptions options) : base("LoraLinear")
    {
        options.Validate();
        Options = options;
        base_layer = baseLayer;
        var weight = baseLayer.weight ?? throw new ArgumentException("The base Linear has no weight.", nameof(baseLayer));
        long outFeatures = weight.shape[0], inFeatures = weight.shape[1];
        var a = empty(new long[] { options.Rank, inFeatures }, weight.dtype, weight.device);
        nn.init.kaiming_uniform_(a, Math.Sqrt(5));
        lora_A = new Parameter(a);
        lora_B = new Parameter(zeros(new long[] { outFeatures, options.Rank }, weight.dtype, weight.device));
        if (options.Dropout > 0) dropout = nn.Dropout(options.Dropout);
        RegisterComponents();
        foreach (var p in baseLayer.parameters()) p.requires_grad = false;
    }

    /// <summary>The settings.</summary>
    public LoraOptions Options { get; }

    /// <summary>The wrapped layer.</summary>
    public Linear BaseLayer => base_layer;

    /// <summary>A, shape [r, in].</summary>
    public Parameter A => lora_A;

    /// <summary>B, shape [out, r].</summary>
    public Parameter B => lora_B;

    /// <summary>True while scaling * B A is folded into the base weight.</summary>
    public bool Merged { get; private set; }

    /// <summary>The update scaling * B A (shape of the base weight).</summary>
    public Tensor DeltaWeight() => lora_B.matmul(lora_A).Times(Options.Scaling);

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var y = base_layer.forward(input);
        if (Merged) return y;
        var x = dropout is null ? input : dropout.forward(input);
        return y.Plus(nn.functional.linear(nn.functional.linear(x, lora_A), lora_B).Times(Options.Scaling));
    }

    /// <summary>Folds the update into the base weight (inference without the extra matmuls).</summary>
    public void Merge()
    {
        if (Merged) return;
        using var noGrad = no_grad();
        using var delta = DeltaWeight();
        base_layer.weight!.PlusInPlace(delta);
        Merged = true;
    }

    /// <summary>Removes the update from the base weight again.</summary>
    public void Unmerge()
    {
        if (!Merged) return;
        using var noGrad = no_grad();
        using var delta = DeltaWeight();
        base_layer.weight!.sub_(delta);
        Merged = false;
    }

    /// <summary>Number of LoRA parameters, r (in + out).</summary>
    public long TrainableParameterCount => lora_A.numel() + lora_B.numel();
}

/// <summary>One adapted layer of a <see cref="LoraAttachment"/>.</summary>
/// <param name="Name">Layer name, e.g. <c>blocks.0.attn.qkv</c>.</param>
/// <param name="Weight">The model's weight matrix [out, in] (a parameter).</param>
/// <param name="BaseWeight">A frozen copy of the pre-trained weight W0.</param>
/// <param name="A">LoRA A, [r, in].</param>
/// <param name="B">LoRA B, [out, r] (starts at zero).</param>
public sealed record LoraTarget(string Name, Tensor Weight, Tensor BaseWeight, Parameter A, Parameter B);

/// <summary>
/// LoRA attached to the weight matrices of an existing model chosen by layer name (<see cref="LoraOptions.TargetPatterns"/>),
/// without changing the model's code. TorchSharp's <see cref="Linear"/> is sealed and models call it directly, so the
/// branch cannot be spliced into the forward pass; instead the adapter works in weight space, which is exact for
/// LoRA without dropout: before each forward <see cref="Sync"/> writes W = W0 + s B A into the layer, and after
/// backward <see cref="PullGradients"/> maps the layer's gradient G = dL/dW to dL/dB = s G Aᵀ and dL/dA = s Bᵀ G
/// (the chain rule through W = W0 + s B A). Every other parameter of the model is frozen.
/// </summary>
public sealed class LoraAttachment : IDisposable
{
    private readonly List<(Parameter Parameter, bool RequiresGrad)> _frozen = new();
    private bool _disposed;

    private LoraAttachment(nn.Module model, LoraOptions options, List<LoraTarget> targets)
    {
        Model = model;
        Options = options;
        Targets = targets;
    }

    /// <summary>The adapted model.</summary>
    public nn.Module Model { get; }

    /// <summary>The settings.</summary>
    public LoraOptions Options { get; }

    /// <summary>The adapted layers.</summary>
    public IReadOnlyList<LoraTarget> Targets { get; }

    /// <summary>
    /// The weight matrices of <paramref name="model"/> LoRA can adapt, by layer name (the parameter name without
    /// <c>.weight</c>): every two-dimensional <c>*.weight</c> but embeddings, e.g. <c>blocks.0.attn.qkv</c> of a proxy
    /// transformer or the Linear layers of any module.
    /// </summary>
    public static IReadOnlyList<(string Name, Parameter Weight)> Matrices(nn.Module model) =>
        model.named_parameters()
            .Where(p => p.name.EndsWith(".weight", StringComparison.Ordinal) && p.parameter.dim() == 2 && !p.name.Contains("emb", StringComparison.Ordinal))
            .Select(p => (p.name[..^".weight".Length], p.parameter)).ToList();

    /// <summary>
    /// Attaches LoRA to every weight matrix of <paramref name="model"/> (<see cref="Matrices"/>) whose layer name matches a
    /// target pattern. Throws <see cref="ArgumentException"/> when none matches (listing the layer names) or when dropout
    /// is asked for.
    /// </summary>
    public static LoraAttachment Attach(nn.Module model, LoraOptions options)
    {
        options.Validate();
        if (options.Dropout > 0)
            throw new ArgumentException("LoRA dropout needs the LoRA branch in the forward pass: wrap layers in LoraLinear when building the model; weight-space attachment supports dropout 0 only.", nameof(options));
        var matrices = Matrices(model);
        var chosen = matrices.Where(l => options.Targets(l.Name)).ToList();
        if (chosen.Count == 0)
            throw new ArgumentException($"No weight matrix matches the LoRA target patterns [{string.Join(", ", options.TargetPatterns)}]. Layers: {string.Join(", ", matrices.Select(l => l.Name))}.", nameof(options));
        var targets = new List<LoraTarget>();
        var attachment = new LoraAttachment(model, options, targets);
        foreach (var p in model.parameters())
        {
            attachment._frozen.Add((p, p.requires_grad));
            p.requires_grad = false;
        }
        foreach (var (name, w) in chosen)
        {
            var a = empty(new long[] { options.Rank, w.shape[1] }, w.dtype, w.device);
            nn.init.kaiming_uniform_(a, Math.Sqrt(5));
            var b = zeros(new long[] { w.shape[0], options.Rank }, w.dtype, w.device);
            targets.Add(new LoraTarget(name, w, w.detach().clone(), new Parameter(a), new Parameter(b)));
            w.requires_grad = true; // G = dL/dW is what the LoRA gradients are computed from
        }
        return attachment;
    }

    /// <summary>The trainable LoRA parameters (A and B of every target), for the optimiser.</summary>
    public IEnumerable<Parameter> Parameters() => Targets.SelectMany(t => new[] { t.A, t.B });

    /// <summary>Number of trainable (LoRA) parameters.</summary>
    public long TrainableParameterCount => Targets.Sum(t => t.A.numel() + t.B.numel());

    /// <summary>Number of parameters of the model (LoRA parameters not included).</summary>
    public long ModelParameterCount => Model.parameters().Sum(p => p.numel());

    /// <summary>The update s B A of one target.</summary>
    public Tensor DeltaWeight(LoraTarget target) => target.B.matmul(target.A).Times(Options.Scaling);

    /// <summary>Writes W = W0 + s B A into every target layer; call before each forward pass.</summary>
    public void Sync()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var noGrad = no_grad();
        foreach (var t in Targets)
        {
            using var scope = NewDisposeScope();
            t.Weight.copy_(t.BaseWeight.Plus(DeltaWeight(t)));
        }
    }

    /// <summary>After backward: sets the gradients of A and B from the layers' weight gradients, then clears those.</summary>
    public void PullGradients()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var noGrad = no_grad();
        foreach (var t in Targets)
        {
            var weight = t.Weight;
            using var g = weight.grad;
            if (g is null) continue;
            var gradB = g.matmul(t.A.mT).Times(Options.Scaling);
            var gradA = t.B.mT.matmul(g).Times(Options.Scaling);
            SetGrad(t.B, gradB);
            SetGrad(t.A, gradA);
            weight.grad!.zero_();
        }
    }

    private static void SetGrad(Parameter p, Tensor value)
    {
        if (p.grad is { } existing) { existing.PlusInPlace(value); value.Dispose(); }
        else p.grad = value.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Ends the attachment: the layers keep the merged weights W0 + s B A (<paramref name="keepMerged"/>) or get W0
    /// back, and every parameter gets its former requires_grad.
    /// </summary>
    public void Detach(bool keepMerged = true)
    {
        if (_disposed) return;
        if (keepMerged) Sync();
        else
        {
            using var noGrad = no_grad();
            foreach (var t in Targets) t.Weight.copy_(t.BaseWeight);
        }
        foreach (var t in Targets) t.Weight.grad = null;
        foreach (var (p, requiresGrad) in _frozen) p.requires_grad = requiresGrad;
        Dispose();
    }

    /// <summary>Releases the base-weight copies and LoRA parameters (the model keeps whatever weights it holds).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in Targets)
        {
            t.BaseWeight.Dispose();
        }
    }
}

/// <summary>LoRA through a <see cref="LoraAttachment"/>: only the A and B matrices train.</summary>
/// <param name="attachment">The attached adapters.</param>
public sealed class LoraParametrisation(LoraAttachment attachment) : IParametrisation
{
    private readonly LoraAttachment _attachment = attachment ?? throw new ArgumentNullException(nameof(attachment));

    /// <inheritdoc />
    public string Kind => "lora";

    /// <inheritdoc />
    public IReadOnlyList<TrainableTensor> Trainable =>
        _attachment.Targets.SelectMany(t => new[] { new TrainableTensor(t.Name + ".lora_A", t.A) { Decays = true }, new TrainableTensor(t.Name + ".lora_B", t.B) { Decays = true } }).ToList();

    /// <inheritdoc />
    public int Members => 1;

    /// <inheritdoc />
    public void BeforeForward() => _attachment.Sync();

    /// <inheritdoc />
    public void AfterBackward() => _attachment.PullGradients();

    /// <inheritdoc />
    public void Finish() => _attachment.Sync();
}
