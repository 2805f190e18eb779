using ScalingInteractive.IntrinsicDimension;
using ScalingInteractive.LoraSpectra;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.Training;

/// <summary>
/// What the optimiser trains and how it reaches the module: all parameters (<see cref="FullParametrisation"/>), a
/// random subspace theta0 + P z (<see cref="SubspaceParametrisation"/>) or low-rank adapters W0 + s B A
/// (<see cref="LoraParametrisation"/>). The module's forward and backward are always its own; the hooks move values
/// in before the forward and gradients out after the backward.
/// </summary>
public interface IParametrisation
{
    /// <summary><c>full</c>, <c>subspace</c> or <c>lora</c>.</summary>
    string Kind { get; }

    /// <summary>The tensors the optimiser steps, by name.</summary>
    IReadOnlyList<(string Name, Tensor Parameter)> Trainable { get; }

    /// <summary>Per-name learning-rate multipliers (muP), or null for 1 everywhere.</summary>
    IReadOnlyDictionary<string, double>? LearningRateScales { get; }

    /// <summary>Before each forward: write the trained values into the module.</summary>
    void BeforeForward();

    /// <summary>After each backward: turn the module's gradients into gradients of <see cref="Trainable"/>.</summary>
    void AfterBackward();

    /// <summary>After the last step: leave the module holding the trained weights.</summary>
    void Finish();
}

/// <summary>Every parameter of the module with requires_grad trains directly.</summary>
public sealed class FullParametrisation : IParametrisation
{
    /// <summary>Trains <paramref name="module"/>'s parameters; <paramref name="learningRateScales"/> as in muP (null: 1).</summary>
    public FullParametrisation(nn.Module module, IReadOnlyDictionary<string, double>? learningRateScales = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        Trainable = module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, (Tensor)p.parameter)).ToList();
        LearningRateScales = learningRateScales;
    }

    /// <inheritdoc />
    public string Kind => "full";

    /// <inheritdoc />
    public IReadOnlyList<(string Name, Tensor Parameter)> Trainable { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double>? LearningRateScales { get; }

    /// <inheritdoc />
    public void BeforeForward() { }

    /// <inheritdoc />
    public void AfterBackward() { }

    /// <inheritdoc />
    public void Finish() { }
}

/// <summary>Random-subspace training through a <see cref="SubspaceModel"/>: only z (and the SAID scales) train.</summary>
/// <param name="subspace">The subspace wrapper of the module.</param>
public sealed class SubspaceParametrisation(SubspaceModel subspace) : IParametrisation
{
    private readonly SubspaceModel _subspace = subspace ?? throw new ArgumentNullException(nameof(subspace));

    /// <inheritdoc />
    public string Kind => "subspace";

    /// <inheritdoc />
    public IReadOnlyList<(string Name, Tensor Parameter)> Trainable =>
        _subspace.Lambdas is null ? [("z", _subspace.Z)] : [("z", _subspace.Z), ("lambdas", _subspace.Lambdas)];

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double>? LearningRateScales => null;

    /// <inheritdoc />
    public void BeforeForward() => _subspace.WriteParameters();

    /// <inheritdoc />
    public void AfterBackward() => _subspace.PullGradients();

    /// <inheritdoc />
    public void Finish() => _subspace.WriteParameters();
}

/// <summary>LoRA through a <see cref="LoraAttachment"/>: only the A and B matrices train.</summary>
/// <param name="attachment">The attached adapters.</param>
public sealed class LoraParametrisation(LoraAttachment attachment) : IParametrisation
{
    private readonly LoraAttachment _attachment = attachment ?? throw new ArgumentNullException(nameof(attachment));

    /// <inheritdoc />
    public string Kind => "lora";

    /// <inheritdoc />
    public IReadOnlyList<(string Name, Tensor Parameter)> Trainable =>
        _attachment.Targets.SelectMany(t => new[] { (t.Name + ".lora_A", (Tensor)t.A), (t.Name + ".lora_B", (Tensor)t.B) }).ToList();

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double>? LearningRateScales => null;

    /// <inheritdoc />
    public void BeforeForward() => _attachment.Sync();

    /// <inheritdoc />
    public void AfterBackward() => _attachment.PullGradients();

    /// <inheritdoc />
    public void Finish() => _attachment.Sync();
}
