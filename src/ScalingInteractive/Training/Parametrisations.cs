using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.Training;

/// <summary>
/// A tensor the optimiser steps, with its leading dimension the members (runs trained at once; 1 for a single run):
/// seen as [K, n]. Learning-rate multipliers (muP) and weight decay apply per tensor, or per element through rows
/// (a flat buffer that holds many parameters: <see cref="IMemberBatchedModel"/>).
/// </summary>
/// <param name="Name">Name (a parameter name, <c>z</c>, <c>blocks.0.attn.qkv.lora_A</c>, <c>flat</c>).</param>
/// <param name="Value">The values (leading dimension K when K &gt; 1).</param>
public sealed record TrainableTensor(string Name, Tensor Value)
{
    /// <summary>Learning-rate multiplier of the whole tensor (muP; default 1).</summary>
    public double RateScale { get; init; } = 1;

    /// <summary>Per-element learning-rate multipliers [1, n] (replaces <see cref="RateScale"/>).</summary>
    public Tensor? RateScaleRow { get; init; }

    /// <summary>Weight decay applies to the whole tensor (matrices and embeddings, as in nanoGPT).</summary>
    public bool Decays { get; init; }

    /// <summary>Per-element weight-decay mask [1, n], 1 where it applies (replaces <see cref="Decays"/>).</summary>
    public Tensor? DecayRow { get; init; }
}

/// <summary>
/// What the optimiser trains and how it reaches the model: all parameters (<see cref="FullParametrisation"/>), a random
/// subspace theta0 + P z (IntrinsicDimension.SubspaceParametrisation) or low-rank adapters W0 + s B A
/// (LoraSpectra.LoraParametrisation). The model's forward and backward are always its own; the hooks move values in
/// before the forward and gradients out after the backward.
/// </summary>
public interface IParametrisation
{
    /// <summary><c>full</c>, <c>subspace</c> or <c>lora</c>.</summary>
    string Kind { get; }

    /// <summary>Runs trained at once (K, the leading dimension of every trainable tensor); 1 for a single run.</summary>
    int Members { get; }

    /// <summary>The tensors the optimiser steps.</summary>
    IReadOnlyList<TrainableTensor> Trainable { get; }

    /// <summary>Before each forward: write the trained values into the model.</summary>
    void BeforeForward();

    /// <summary>After each backward: turn the model's gradients into gradients of <see cref="Trainable"/>.</summary>
    void AfterBackward();

    /// <summary>After the last step: leave the model holding the trained weights.</summary>
    void Finish();

    /// <summary>The gradient of trainable tensor <paramref name="index"/> after <see cref="AfterBackward"/> (null: none this step).</summary>
    Tensor? Gradient(int index) => Trainable[index].Value.grad;

    /// <summary>Clears every gradient for the next step.</summary>
    void ClearGradients()
    {
        foreach (var t in Trainable)
        {
            using var g = t.Value.grad;
            g?.zero_();
        }
    }

    /// <summary>
    /// Keeps only the members at <paramref name="keep"/> (indices into the current members): how a diverged run of an
    /// ensemble is frozen while the others go on. Single runs never need it.
    /// </summary>
    void KeepMembers(long[] keep) =>
        throw new NotSupportedException($"The {Kind} parametrisation trains one run; it cannot drop members.");
}

/// <summary>
/// A model whose K members' parameters live in one flat [K, P] buffer (every named parameter a view of it), so the
/// optimiser works on one tensor whatever the parameter count: the proxy transformer.
/// </summary>
public interface IMemberBatchedModel
{
    /// <summary>Members K.</summary>
    long Members { get; }

    /// <summary>All members' parameters [K, P].</summary>
    Tensor Flat { get; }

    /// <summary>Per-element learning-rate multipliers [1, P] (muP).</summary>
    Tensor ScaleRow { get; }

    /// <summary>1 where weight decay applies, else 0 [1, P].</summary>
    Tensor DecayRow { get; }

    /// <summary>After a backward: every member's gradient as one [K, P] tensor; the parameters' own gradients are cleared.</summary>
    Tensor GatherGradients();

    /// <summary>Keeps only the members at <paramref name="keep"/>.</summary>
    void KeepMembers(long[] keep);
}

/// <summary>
/// Every parameter trains directly. A member-batched model (<see cref="IMemberBatchedModel"/>) trains as one flat
/// tensor; any other module as one tensor per parameter with requires_grad (a single run).
/// </summary>
public sealed class FullParametrisation : IParametrisation
{
    private readonly IMemberBatchedModel? _batched;
    private Tensor? _gradient;
    private IReadOnlyList<TrainableTensor> _trainable;

    /// <summary>Trains <paramref name="module"/>'s parameters; <paramref name="learningRateScales"/> as in muP (null: 1; a member-batched model carries its own).</summary>
    public FullParametrisation(nn.Module module, IReadOnlyDictionary<string, double>? learningRateScales = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        _batched = module as IMemberBatchedModel;
        _trainable = _batched is not null ? [Flat(_batched)] : module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => new TrainableTensor(p.name, p.parameter)
        {
            RateScale = learningRateScales is not null && learningRateScales.TryGetValue(p.name, out double s) ? s : 1.0,
            Decays = p.parameter.dim() >= 2,
        }).ToList();
    }

    private static TrainableTensor Flat(IMemberBatchedModel model) =>
        new("flat", model.Flat) { RateScaleRow = model.ScaleRow, DecayRow = model.DecayRow };

    /// <inheritdoc />
    public string Kind => "full";

    /// <inheritdoc />
    public int Members => _batched is null ? 1 : (int)_batched.Members;

    /// <inheritdoc />
    public IReadOnlyList<TrainableTensor> Trainable => _trainable;

    /// <inheritdoc />
    public void BeforeForward() { }

    /// <inheritdoc />
    public void AfterBackward()
    {
        if (_batched is not null) _gradient = _batched.GatherGradients(); // freed with the step's dispose scope
    }

    /// <inheritdoc />
    public void Finish() { }

    /// <inheritdoc />
    public Tensor? Gradient(int index) => _batched is null ? _trainable[index].Value.grad : _gradient;

    /// <inheritdoc />
    public void ClearGradients()
    {
        if (_batched is not null)
        {
            _gradient = null;
            return;
        }
        foreach (var t in _trainable)
        {
            using var g = t.Value.grad;
            g?.zero_();
        }
    }

    /// <inheritdoc />
    public void KeepMembers(long[] keep)
    {
        if (_batched is null) throw new NotSupportedException("A module that is not member-batched trains one run; it cannot drop members.");
        _batched.KeepMembers(keep);
        _trainable = [Flat(_batched)];
    }
}
