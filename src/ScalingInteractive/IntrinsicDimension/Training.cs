using System.Diagnostics;
using TorchSharp;
using ScalingInteractive.Commands;
using ScalingInteractive.Training;
using static TorchSharp.torch;
using FitSchedule = ScalingInteractive.Core.LearningRateSchedule;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>
/// A task for intrinsic-dimension probes: it builds the model (theta0 for a seed), draws training batches and their loss,
/// and measures a validation metric where higher is better (accuracy).
/// </summary>
public interface IIntrinsicTask : IDisposable
{
    /// <summary>Short name used in keys and tables, e.g. <c>mnist-mlp</c>.</summary>
    string Name { get; }

    /// <summary>What <see cref="Evaluate"/> measures, e.g. "validation accuracy".</summary>
    string MetricName { get; }

    /// <summary>The device of the data and models.</summary>
    Device Device { get; }

    /// <summary>The model at its starting point theta0 for <paramref name="seed"/> (random or pretrained), on <see cref="Device"/>.</summary>
    nn.Module<Tensor, Tensor> CreateModel(int seed);

    /// <summary>The training loss of the model on one batch drawn with <paramref name="random"/>.</summary>
    Tensor BatchLoss(nn.Module<Tensor, Tensor> model, Random random, int batchSize);

    /// <summary>The validation metric (higher is better), computed without gradients.</summary>
    double Evaluate(nn.Module<Tensor, Tensor> model);
}

/// <summary>Optimisation settings of one run.</summary>
/// <param name="Steps">Optimiser steps.</param>
/// <param name="LearningRate">Adam learning rate for z (subspace runs).</param>
/// <param name="FullLearningRate">Adam learning rate for the full-parameter baseline.</param>
/// <param name="BatchSize">Examples (or sequences) per step.</param>
public sealed record SubspaceTrainingOptions(int Steps = 1000, double LearningRate = 1e-2, double FullLearningRate = 1e-3, int BatchSize = 128)
{
    /// <summary>Throws a clear message for a non-positive setting.</summary>
    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"Steps must be at least 1 (got {Steps}).", nameof(Steps));
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentException($"LearningRate must be a positive number (got {LearningRate}).", nameof(LearningRate));
        if (!(FullLearningRate > 0) || double.IsInfinity(FullLearningRate)) throw new ArgumentException($"FullLearningRate must be a positive number (got {FullLearningRate}).", nameof(FullLearningRate));
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be at least 1 (got {BatchSize}).", nameof(BatchSize));
    }

    /// <summary>
    /// The optimiser of these probes: the package's <see cref="AdamW"/> as plain Adam (Li et al. and Aghajanyan et al.
    /// use Adam): betas (0.9, 0.999), no weight decay, no clipping.
    /// </summary>
    public static AdamWOptions Adam { get; } = new() { Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8, WeightDecay = 0, GradClip = 0 };
}

/// <summary>
/// The configuration that identifies one intrinsic-dimension run in a store (training settings live in the store's
/// identity). Its <see cref="Key"/> is the one key function of such runs: training and the sweep both use it.
/// </summary>
/// <param name="Task">Task name.</param>
/// <param name="Projection">dense, sparse, fastfood, identity, or full for the baseline.</param>
/// <param name="Dimension">d (0 for the full baseline: its D is a property of the model, not of the configuration).</param>
/// <param name="Said">One scale per tensor.</param>
/// <param name="PerTensor">One projection per tensor.</param>
/// <param name="Seed">Seed of theta0, P and the batches.</param>
public sealed record SubspaceRunConfig(string Task, string Projection, long Dimension, bool Said, bool PerTensor, int Seed)
{
    /// <summary>The full-parameter baseline of <paramref name="task"/> for <paramref name="seed"/>.</summary>
    public static SubspaceRunConfig Full(string task, int seed) => new(task, "full", 0, false, false, seed);

    /// <summary>The run-store key (unchanged from earlier stores: the hash of task, projection, d, said, perTensor, seed).</summary>
    public string Key => SubspaceTraining.Key(Task, Projection, Dimension, Said, PerTensor, Seed);
}

/// <summary>One finished run: a subspace run at dimension d, or a full-parameter baseline (projection "full").</summary>
/// <param name="Key">Run-store key (task, projection, d, SAID, scope, seed).</param>
/// <param name="Task">Task name.</param>
/// <param name="Projection">dense, sparse, fastfood, identity, or full for the baseline.</param>
/// <param name="Dimension">d (D for the baseline).</param>
/// <param name="Said">Trained with one scale per tensor.</param>
/// <param name="PerTensor">One projection per parameter tensor.</param>
/// <param name="Seed">Seed of theta0, P and the batches.</param>
/// <param name="Metric">Validation metric at the end (higher is better).</param>
/// <param name="FinalLoss">Mean training loss over the last 10% of steps.</param>
/// <param name="Seconds">Wall time of the run.</param>
/// <param name="Diverged">The run broke the package's <see cref="DivergenceRule"/> (the run stopped there; FinalLoss is NaN).</param>
/// <param name="ParameterCount">D, the model's trainable parameters.</param>
public sealed record SubspaceRun(string Key, string Task, string Projection, long Dimension, bool Said, bool PerTensor, int Seed,
    double Metric, double FinalLoss, double Seconds, bool Diverged, long ParameterCount)
{
    /// <summary>The series this run belongs to, e.g. <c>fastfood</c>, <c>dense per-tensor</c>, <c>fastfood SAID</c>.</summary>
    public string SeriesName => Projection == "full" ? "full" : Projection + (PerTensor ? " per-tensor" : "") + (Said ? " SAID" : "");
}

/// <summary>Training loops: in a random subspace and with all parameters.</summary>
public static class SubspaceTraining
{
    /// <summary>The number of trainable parameters (D) of a module.</summary>
    public static long ParameterCount(nn.Module module) => module.parameters().Where(p => p.requires_grad).Sum(p => p.numel());

    /// <summary>Trains <paramref name="task"/>'s model for <paramref name="seed"/> in a d-dimensional random subspace.</summary>
    public static SubspaceRun TrainSubspace(IIntrinsicTask task, long d, ProjectionOptions projection, bool said, int seed, SubspaceTrainingOptions options,
        CancellationToken cancellationToken = default, IProgressSink? progress = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        options.Validate();
        var clock = Stopwatch.StartNew();
        using var model = CreateSeeded(task, seed);
        long full = ParameterCount(model);
        using var subspace = new SubspaceModel(model, d, projection with { Seed = ProjectionSeed(seed) }, said, task.Device);
        var outcome = Train(task, model, new SubspaceParametrisation(subspace), options.LearningRate, seed, options, progress, cancellationToken);
        double metric = task.Evaluate(model);
        var config = new SubspaceRunConfig(task.Name, projection.Kind.ToString().ToLowerInvariant(), d, said, projection.PerTensor, seed);
        return new SubspaceRun(config.Key, task.Name, config.Projection, d, said, projection.PerTensor, seed,
            metric, outcome.Diverged ? double.NaN : outcome.TailLoss, clock.Elapsed.TotalSeconds, outcome.Diverged, full);
    }

    // Default initialisations draw from LibTorch's one global generator: seeding it and creating the model is one step
    // that no other thread (another worker of a sweep) may interleave with.
    private static readonly object GlobalGeneratorGate = new();

    private static nn.Module<Tensor, Tensor> CreateSeeded(IIntrinsicTask task, int seed)
    {
        lock (GlobalGeneratorGate)
        {
            manual_seed(seed);
            return task.CreateModel(seed);
        }
    }

    /// <summary>The full-parameter baseline: the same model, data and steps, Adam on all parameters.</summary>
    public static SubspaceRun TrainFull(IIntrinsicTask task, int seed, SubspaceTrainingOptions options, CancellationToken cancellationToken = default,
        IProgressSink? progress = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        options.Validate();
        var clock = Stopwatch.StartNew();
        using var model = CreateSeeded(task, seed);
        long full = ParameterCount(model);
        var outcome = Train(task, model, new FullParametrisation(model), options.FullLearningRate, seed, options, progress, cancellationToken);
        double metric = task.Evaluate(model);
        return new SubspaceRun(SubspaceRunConfig.Full(task.Name, seed).Key, task.Name, "full", full, false, false, seed,
            metric, outcome.Diverged ? double.NaN : outcome.TailLoss, clock.Elapsed.TotalSeconds, outcome.Diverged, full);
    }

    // The one trainer with a constant rate, the probes' Adam and batches drawn from Random(seed) (as before).
    private static TrainingOutcome Train(IIntrinsicTask task, nn.Module<Tensor, Tensor> model, IParametrisation parametrisation, double learningRate,
        int seed, SubspaceTrainingOptions options, IProgressSink? progress, CancellationToken cancellationToken)
    {
        var random = new Random(seed);
        var hooks = new TrainerHooks { Loss = _ => task.BatchLoss(model, random, options.BatchSize) };
        var trainer = TrainerOptions.Single(FitSchedule.Constant(learningRate, options.Steps), SubspaceTrainingOptions.Adam, logEvery: Math.Max(1, options.Steps / 20));
        return Trainer.Train(parametrisation, hooks, trainer, progress, cancellationToken).Single();
    }

    /// <summary>The run-store key of a run (<see cref="SubspaceRunConfig.Key"/>; the full baseline has d = 0).</summary>
    public static string Key(string task, string projection, long d, bool said, bool perTensor, int seed) =>
        Runs.RunKeys.Of(new SubspaceKeyFields(task, projection, d, said, perTensor, seed), IntrinsicJson.Default.SubspaceKeyFields);

    /// <summary>The projection's seed for a run seed (distinct from the model's initialisation seed).</summary>
    public static long ProjectionSeed(int seed) => 7919L * (seed + 1);
}

/// <summary>MNIST classification with the 784-200-200-10 MLP or the LeNet-style CNN; metric: validation accuracy.</summary>
public sealed class MnistTask : IIntrinsicTask
{
    private readonly bool _ownsData;

    /// <summary>Creates the task over loaded data (<paramref name="ownsData"/>: dispose the data with the task).</summary>
    /// <param name="data">Training and validation tensors, on <paramref name="device"/>.</param>
    /// <param name="architecture"><c>mlp</c> or <c>cnn</c>.</param>
    /// <param name="device">Device of the data and models.</param>
    /// <param name="ownsData">Dispose the data with the task.</param>
    public MnistTask(MnistData data, string architecture, Device device, bool ownsData = false)
    {
        Data = data ?? throw new ArgumentNullException(nameof(data));
        Architecture = architecture?.ToLowerInvariant() switch
        {
            "mlp" => "mlp",
            "cnn" or "lenet" => "cnn",
            _ => throw new ArgumentException($"architecture '{architecture}' is not known; use mlp (784-200-200-10) or cnn (LeNet-style).", nameof(architecture)),
        };
        Device = device;
        _ownsData = ownsData;
    }

    /// <summary>The data.</summary>
    public MnistData Data { get; }

    /// <summary><c>mlp</c> or <c>cnn</c>.</summary>
    public string Architecture { get; }

    /// <inheritdoc />
    public string Name => "mnist-" + Architecture;

    /// <inheritdoc />
    public string MetricName => "validation accuracy";

    /// <inheritdoc />
    public Device Device { get; }

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> CreateModel(int seed)
    {
        manual_seed(seed);
        nn.Module<Tensor, Tensor> model = Architecture == "mlp" ? new MnistMlp() : new MnistLeNet();
        return model.to(Device);
    }

    /// <inheritdoc />
    public Tensor BatchLoss(nn.Module<Tensor, Tensor> model, Random random, int batchSize)
    {
        var index = new long[batchSize];
        for (int i = 0; i < batchSize; i++) index[i] = random.NextInt64(Data.TrainCount);
        using var scope = NewDisposeScope();
        var idx = tensor(index, device: Device);
        var logits = model.forward(Data.TrainImages.index_select(0, idx));
        return nn.functional.cross_entropy(logits, Data.TrainLabels.index_select(0, idx)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public double Evaluate(nn.Module<Tensor, Tensor> model) => Accuracy(model, Data.ValidationImages, Data.ValidationLabels);

    /// <summary>Classification accuracy of <paramref name="model"/> on images and labels, in chunks of 1,000.</summary>
    public static double Accuracy(nn.Module<Tensor, Tensor> model, Tensor images, Tensor labels)
    {
        using var _ = no_grad();
        long n = labels.shape[0], correct = 0;
        for (long at = 0; at < n; at += 1000)
        {
            using var scope = NewDisposeScope();
            long m = Math.Min(1000, n - at);
            var predicted = model.forward(images.narrow(0, at, m)).argmax(1);
            correct += predicted.eq(labels.narrow(0, at, m)).sum().item<long>();
        }
        return (double)correct / n;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsData) Data.Dispose();
    }
}
