using ScalingInteractive.IntrinsicDimension;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.IntrinsicDimension;

public class SubspaceModelTests
{
    private sealed class Toy : nn.Module<Tensor, Tensor>
    {
        private readonly Linear fc1, fc2;

        public Toy() : base(nameof(Toy))
        {
            fc1 = nn.Linear(4, 6);
            fc2 = nn.Linear(6, 3);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => fc2.forward(nn.functional.tanh(fc1.forward(x)));
    }

    private static (Tensor X, Tensor Y) ToyData()
    {
        using var g = new Generator(99);
        var x = randn([32, 4], generator: g);
        var y = randint(0, 3, [32], generator: g);
        return (x, y);
    }

    private static Toy NewToy(int seed)
    {
        manual_seed(seed);
        return new Toy();
    }

    [Fact]
    public void Gradients_flow_to_z_only_and_theta0_never_changes()
    {
        var (x, y) = ToyData();
        using var model = NewToy(1);
        var initial = model.parameters().Select(p => p.detach().clone()).ToList();
        using var subspace = new SubspaceModel(model, 10, new ProjectionOptions(ProjectionKind.Fastfood, Seed: 3), said: false, CPU);
        var theta0 = subspace.Theta0.clone();
        using var opt = optim.Adam(subspace.TrainableParameters, 0.05);
        for (int i = 0; i < 20; i++)
        {
            using var scope = NewDisposeScope();
            subspace.WriteParameters();
            nn.functional.cross_entropy(model.forward(x), y).backward();
            subspace.PullGradients();
            Assert.All(model.parameters(), p => Assert.True(p.grad is null || p.grad.abs().max().item<float>() == 0)); // cleared after pulling
            opt.step();
        }
        Assert.True(subspace.Theta0.eq(theta0).all().item<bool>());
        Assert.True(theta0.eq(cat(initial.Select(t => t.flatten()).ToList(), 0)).all().item<bool>());
        Assert.True(subspace.Z.abs().sum().item<float>() > 0);
        subspace.WriteParameters();
        var theta = cat(model.parameters().Select(p => p.detach().flatten()).ToList(), 0);
        Assert.True(theta.allclose(theta0 + subspace.Projection.Apply(subspace.Z.detach()), atol: 1e-6));
    }

    [Fact]
    public void Z_gradient_equals_autograd_through_theta0_plus_Pz()
    {
        var (x, y) = ToyData();
        using var model = NewToy(2);
        using var subspace = new SubspaceModel(model, 7, new ProjectionOptions(ProjectionKind.Dense, Seed: 4), said: false, CPU);
        manual_seed(5);
        using (no_grad()) subspace.Z.copy_(randn(7) * 0.3);
        subspace.WriteParameters();
        nn.functional.cross_entropy(model.forward(x), y).backward();
        subspace.PullGradients();
        var ours = subspace.Z.grad!.clone();

        // Independent: build theta = theta0 + B^T z with autograd and run the same network functionally.
        var z = subspace.Z.detach().clone().requires_grad_(true);
        var basis = ((DenseProjection)subspace.Projection).Basis;
        var theta = subspace.Theta0 + matmul(z, basis);
        var shapes = model.parameters().Select(p => p.shape).ToList();
        var parts = new List<Tensor>();
        long at = 0;
        foreach (var s in shapes)
        {
            long n = s.Aggregate(1L, (a, b) => a * b);
            parts.Add(theta.narrow(0, at, n).view(s));
            at += n;
        }
        var h = nn.functional.tanh(nn.functional.linear(x, parts[0], parts[1]));
        nn.functional.cross_entropy(nn.functional.linear(h, parts[2], parts[3]), y).backward();
        Assert.True(ours.allclose(z.grad!, rtol: 1e-4, atol: 1e-6), $"{ours.str()} vs {z.grad!.str()}");
    }

    [Fact]
    public void Said_gradients_match_autograd_and_lambdas_count_in_d()
    {
        var (x, y) = ToyData();
        using var model = NewToy(3);
        using var subspace = new SubspaceModel(model, 10, new ProjectionOptions(ProjectionKind.Sparse, Seed: 4), said: true, CPU);
        Assert.Equal(6, subspace.Z.shape[0]); // 10 - 4 tensors
        Assert.Equal(4, subspace.Lambdas!.shape[0]);
        manual_seed(6);
        using (no_grad())
        {
            subspace.Z.copy_(randn(6) * 0.5);
            subspace.Lambdas.copy_(tensor(new[] { 0.5f, 1.5f, -1f, 2f }));
        }
        subspace.WriteParameters();
        nn.functional.cross_entropy(model.forward(x), y).backward();
        subspace.PullGradients();

        var z = subspace.Z.detach().clone().requires_grad_(true);
        var lambdas = subspace.Lambdas.detach().clone().requires_grad_(true);
        var pz = subspace.Projection.Apply(z); // autograd through gather / scatter
        var shapes = model.parameters().Select(p => p.shape).ToList();
        var parts = new List<Tensor>();
        long at = 0;
        for (int t = 0; t < shapes.Count; t++)
        {
            long n = shapes[t].Aggregate(1L, (a, b) => a * b);
            parts.Add((subspace.Theta0.narrow(0, at, n) + lambdas[t] * pz.narrow(0, at, n)).view(shapes[t]));
            at += n;
        }
        var h = nn.functional.tanh(nn.functional.linear(x, parts[0], parts[1]));
        nn.functional.cross_entropy(nn.functional.linear(h, parts[2], parts[3]), y).backward();
        Assert.True(subspace.Z.grad!.allclose(z.grad!, rtol: 1e-4, atol: 1e-6));
        Assert.True(subspace.Lambdas.grad!.allclose(lambdas.grad!, rtol: 1e-4, atol: 1e-6));
    }

    [Fact]
    public void Identity_subspace_with_d_equal_D_reproduces_full_training()
    {
        var (x, y) = ToyData();
        using var full = NewToy(4);
        using var viaSubspace = NewToy(4);
        using (var sgd = optim.SGD(full.parameters(), 0.1))
            for (int i = 0; i < 25; i++)
            {
                using var scope = NewDisposeScope();
                sgd.zero_grad();
                nn.functional.cross_entropy(full.forward(x), y).backward();
                sgd.step();
            }
        long d = SubspaceTraining.ParameterCount(viaSubspace);
        using var subspace = new SubspaceModel(viaSubspace, d, new ProjectionOptions(ProjectionKind.Identity), said: false, CPU);
        using (var sgd = optim.SGD(subspace.TrainableParameters, 0.1))
            for (int i = 0; i < 25; i++)
            {
                using var scope = NewDisposeScope();
                subspace.WriteParameters();
                nn.functional.cross_entropy(viaSubspace.forward(x), y).backward();
                subspace.PullGradients();
                sgd.step();
            }
        subspace.WriteParameters();
        foreach (var (a, b) in full.parameters().Zip(viaSubspace.parameters()))
            Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Bad_modules_and_dimensions_are_refused()
    {
        using var frozen = NewToy(5);
        foreach (var p in frozen.parameters()) p.requires_grad = false;
        var e = Assert.Throws<ArgumentException>(() => new SubspaceModel(frozen, 5, new ProjectionOptions(), false, CPU));
        Assert.Contains("no trainable parameters", e.Message);
        using var relu = nn.ReLU();
        Assert.Contains("no trainable parameters", Assert.Throws<ArgumentException>(() => new SubspaceModel(relu, 5, new ProjectionOptions(), false, CPU)).Message);
        using var toy = NewToy(5);
        Assert.Contains("at least 1", Assert.Throws<ArgumentException>(() => new SubspaceModel(toy, 0, new ProjectionOptions(), false, CPU)).Message);
        Assert.Contains("4 tensors", Assert.Throws<ArgumentException>(() => new SubspaceModel(toy, 4, new ProjectionOptions(), true, CPU)).Message);
        Assert.Contains("d <= D", Assert.Throws<ArgumentException>(() => new SubspaceModel(toy, 100, new ProjectionOptions(ProjectionKind.Dense), false, CPU)).Message);
    }

    [SkippableFact]
    public void Cuda_requested_without_a_gpu_gets_a_clear_message()
    {
        Skip.If(cuda.is_available(), "the check is about machines without a GPU; this one has one");
        var e = Assert.Throws<ScalingInteractive.Hosting.TorchUnavailableException>(() => ScalingInteractive.Hosting.TorchRuntime.ResolveDevice("cuda"));
        Assert.Contains("CUDA is not available", e.Message);
    }
}
