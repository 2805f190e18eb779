using ScalingInteractive.Training;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.Training;

/// <summary>A single run over bare tensors (name, tensor, muP multiplier), for optimiser tests against closed forms.</summary>
internal sealed class TensorParametrisation(params (string Name, Tensor Value, double Scale)[] tensors) : IParametrisation
{
    public string Kind => "tensors";

    public int Members => 1;

    public IReadOnlyList<TrainableTensor> Trainable { get; } =
        tensors.Select(t => new TrainableTensor(t.Name, t.Value) { RateScale = t.Scale, Decays = t.Value.dim() >= 2 }).ToList();

    public void BeforeForward() { }

    public void AfterBackward() { }

    public void Finish() { }

    /// <summary>An AdamW over these tensors with <paramref name="options"/>.</summary>
    public AdamW Optimizer(AdamWOptions options) => new(this, [options]);
}
