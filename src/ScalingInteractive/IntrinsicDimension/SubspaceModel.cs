using ScalingInteractive.Training;
using ScalingInteractive.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>
/// Random-subspace training of any TorchSharp module (Li et al. 2018): the module's D trainable parameters are frozen at
/// theta0 and re-expressed as theta = theta0 + P z, with z of dimension d starting at zero. With SAID (Aghajanyan et al.
/// 2020), theta_i = theta0_i + lambda_t (P z)_i with one trainable scalar lambda_t per parameter tensor t (initialised to
/// one), and the T scalars count in d, so z then has d - T entries.
/// </summary>
/// <remarks>
/// Works for any module without touching its forward pass: each step <see cref="WriteParameters"/> writes theta into
/// the module's own parameters (no autograd), the module's ordinary forward and backward give g = dL/dtheta, and
/// <see cref="PullGradients"/> turns it into dL/dz = P^T (lambda g) and dL/dlambda_t = sum over t of (P z)_i g_i.
/// An optimiser then steps <see cref="TrainableParameters"/> only; <see cref="Theta0"/> never changes.
/// </remarks>
public sealed class SubspaceModel : IDisposable
{
    private readonly Tensor _theta0;
    private readonly Tensor? _tensorIndex; // [D] int64: which tensor each parameter belongs to (SAID only)
    private readonly long[] _sizes;

    /// <summary>Wraps <paramref name="module"/>; its current parameter values become theta0.</summary>
    /// <param name="module">Any module; all parameters with requires_grad are re-expressed (others are left alone).</param>
    /// <param name="d">The subspace dimension (with SAID, including the one scalar per tensor).</param>
    /// <param name="projection">Kind, seed and scope of P.</param>
    /// <param name="said">Structure-aware intrinsic dimension: one trainable scale per parameter tensor.</param>
    /// <param name="device">The device of the module and of every tensor created here.</param>
    public SubspaceModel(nn.Module module, long d, ProjectionOptions projection, bool said, Device device)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(projection);
        Module = module;
        Targets = module.parameters().Where(p => p.requires_grad).ToList();
        if (Targets.Count == 0)
            throw new ArgumentException($"The module ({module.GetType().Name}) has no trainable parameters (none with requires_grad), so there is nothing to re-express in a subspace.", nameof(module));
        _sizes = Targets.Select(p => p.numel()).ToArray();
        FullDimension = _sizes.Sum();
        if (d < 1) throw new ArgumentException($"The subspace dimension d must be at least 1 (got {d}).", nameof(d));
        Said = said;
        int tensors = Targets.Count;
        if (said && d <= tensors)
            throw new ArgumentException($"With SAID the subspace dimension d counts one scale per parameter tensor, so it must exceed the {tensors} tensors of this module (got d = {d}).", nameof(d));
        SubspaceDimension = d;
        long zDimension = said ? d - tensors : d;
        Device = device;
        foreach (var p in Targets)
            if (p.device_type != device.type)
                throw new ArgumentException($"The module's parameters are on {p.device}, but the subspace is on {device}: move the module with .to(device) first.", nameof(module));
        Projection = SubspaceProjection.Create(_sizes, zDimension, projection, device);
        using (no_grad())
            _theta0 = cat(Targets.Select(p => p.detach().flatten()).ToList(), 0).clone();
        Z = new Parameter(zeros(zDimension, device: device));
        if (said)
        {
            Lambdas = new Parameter(ones(tensors, device: device));
            using var scope = NewDisposeScope();
            _tensorIndex = repeat_interleave(TorchScalars.Arange(tensors, device),
                tensor(_sizes, device: device)).MoveToOuterDisposeScope();
        }
    }

    /// <summary>The wrapped module.</summary>
    public nn.Module Module { get; }

    /// <summary>The re-expressed parameter tensors, in order.</summary>
    public IReadOnlyList<Parameter> Targets { get; }

    /// <summary>D: the number of re-expressed parameters.</summary>
    public long FullDimension { get; }

    /// <summary>d: trainable numbers (z, plus the per-tensor scales under SAID).</summary>
    public long SubspaceDimension { get; }

    /// <summary>True when one scale per tensor is trained (SAID).</summary>
    public bool Said { get; }

    /// <summary>The device of every tensor.</summary>
    public Device Device { get; }

    /// <summary>P, from R^(d or d - T) to R^D.</summary>
    public ISubspaceProjection Projection { get; }

    /// <summary>The subspace coordinates (zeros at the start).</summary>
    public Parameter Z { get; }

    /// <summary>The per-tensor scales under SAID (ones at the start), else null.</summary>
    public Parameter? Lambdas { get; }

    /// <summary>theta0, flattened in parameter order (a private copy; never modified).</summary>
    public Tensor Theta0 => _theta0;

    /// <summary>What an optimiser should step: z, and the scales under SAID.</summary>
    public IReadOnlyList<Parameter> TrainableParameters => Lambdas is null ? [Z] : [Z, Lambdas];

    /// <summary>theta - theta0 = P z (times lambda per tensor under SAID), flattened.</summary>
    public Tensor Offset()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var pz = Projection.Apply(Z.detach());
        if (Lambdas is not null) pz = pz * Lambdas.detach().index_select(0, _tensorIndex!);
        return pz.MoveToOuterDisposeScope();
    }

    /// <summary>Writes theta = theta0 + offset into the module's parameters (without autograd).</summary>
    public void WriteParameters()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var theta = _theta0.Plus(Offset());
        long at = 0;
        for (int t = 0; t < Targets.Count; t++)
        {
            Targets[t].copy_(theta.narrow(0, at, _sizes[t]).view(Targets[t].shape));
            at += _sizes[t];
        }
    }

    /// <summary>
    /// After the module's backward pass: sets the gradients of z (and lambda) from the parameters' gradients
    /// (replacing what was there), and clears the module's gradients. Parameters without a gradient count as zero.
    /// </summary>
    public void PullGradients()
    {
        using var scope = NewDisposeScope();
        Tensor g;
        using (no_grad())
        {
            g = cat(Targets.Select(p => p.grad is { } grad ? grad.flatten() : zeros(p.numel(), device: Device)).ToList(), 0);
        }
        Tensor gz, gl = empty(0);
        using (no_grad())
        {
            if (Lambdas is null)
            {
                gz = Projection.ApplyTranspose(g);
            }
            else
            {
                var pz = Projection.Apply(Z.detach());
                gz = Projection.ApplyTranspose(g * Lambdas.detach().index_select(0, _tensorIndex!));
                gl = zeros(Targets.Count, device: Device).IndexAddInPlace(0, _tensorIndex!, pz * g);
            }
        }
        SetGradient(Z, gz);
        if (Lambdas is not null) SetGradient(Lambdas, gl);
        foreach (var p in Targets) p.grad?.zero_();
    }

    // z.grad = value, through autograd of the linear surrogate sum(z * value): no reliance on a grad setter.
    private static void SetGradient(Parameter parameter, Tensor value)
    {
        parameter.grad?.zero_();
        using var scope = NewDisposeScope();
        (parameter * value.detach()).sum().backward();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Projection.Dispose();
        _theta0.Dispose();
        _tensorIndex?.Dispose();
        Z.Dispose();
        Lambdas?.Dispose();
    }
}

/// <summary>Random-subspace training through a <see cref="SubspaceModel"/>: only z (and the SAID scales) train.</summary>
/// <param name="subspace">The subspace wrapper of the module.</param>
public sealed class SubspaceParametrisation(SubspaceModel subspace) : IParametrisation
{
    private readonly SubspaceModel _subspace = subspace ?? throw new ArgumentNullException(nameof(subspace));

    /// <inheritdoc />
    public string Kind => "subspace";

    /// <inheritdoc />
    public IReadOnlyList<TrainableTensor> Trainable =>
        _subspace.Lambdas is null ? [new("z", _subspace.Z)] : [new("z", _subspace.Z), new("lambdas", _subspace.Lambdas)];

    /// <inheritdoc />
    public int Members => 1;

    /// <inheritdoc />
    public void BeforeForward() => _subspace.WriteParameters();

    /// <inheritdoc />
    public void AfterBackward() => _subspace.PullGradients();

    /// <inheritdoc />
    public void Finish() => _subspace.WriteParameters();
}
