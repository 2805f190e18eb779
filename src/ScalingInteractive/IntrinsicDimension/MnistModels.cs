using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>The fully connected 784-200-200-10 network of Li et al. 2018 (199,210 parameters), ReLU activations.</summary>
public sealed class MnistMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1, fc2, fc3;

    /// <summary>Creates the network with TorchSharp's default initialisation (seed it with torch.manual_seed first).</summary>
    public MnistMlp(int hidden = 200) : base(nameof(MnistMlp))
    {
        fc1 = nn.Linear(784, hidden);
        fc2 = nn.Linear(hidden, hidden);
        fc3 = nn.Linear(hidden, 10);
        RegisterComponents();
    }

    /// <summary>Images [N, 1, 28, 28] (or [N, 784]) to logits [N, 10].</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = images.reshape(images.shape[0], 784);
        x = nn.functional.relu(fc1.forward(x));
        x = nn.functional.relu(fc2.forward(x));
        return fc3.forward(x).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// LeNet-style CNN of Li et al. 2018 (44,426 parameters): conv 5x5 to 6 channels, max-pool, conv 5x5 to 16, max-pool,
/// fully connected 256-120-84-10, ReLU activations.
/// </summary>
public sealed class MnistLeNet : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1, conv2;
    private readonly Linear fc1, fc2, fc3;

    /// <summary>Creates the network with TorchSharp's default initialisation.</summary>
    public MnistLeNet() : base(nameof(MnistLeNet))
    {
        conv1 = nn.Conv2d(1, 6, 5);
        conv2 = nn.Conv2d(6, 16, 5);
        fc1 = nn.Linear(16 * 4 * 4, 120);
        fc2 = nn.Linear(120, 84);
        fc3 = nn.Linear(84, 10);
        RegisterComponents();
    }

    /// <summary>Images [N, 1, 28, 28] to logits [N, 10].</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = nn.functional.max_pool2d(nn.functional.relu(conv1.forward(images)), 2);
        x = nn.functional.max_pool2d(nn.functional.relu(conv2.forward(x)), 2);
        x = x.flatten(1);
        x = nn.functional.relu(fc1.forward(x));
        x = nn.functional.relu(fc2.forward(x));
        return fc3.forward(x).MoveToOuterDisposeScope();
    }
}
