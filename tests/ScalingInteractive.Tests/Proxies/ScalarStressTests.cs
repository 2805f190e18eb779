using ScalingInteractive.Proxies;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.Proxies;

/// <summary>
/// Issue 16's crash, made to happen on purpose: "toFloat at c10/core/Scalar.h" from <c>Tensor.add</c> in the ensemble
/// forward, seen in long Slurm arrays with two worker threads. A temporary TorchSharp scalar was finalised while LibTorch
/// read it; a thread that collects garbage non-stop makes that happen within seconds on the old code (measured: the
/// first of these rounds failed after 7.8 s). The shape is the failing grid's: widths 16 with head size 8, several
/// learning rates, two workers training sub-ensembles at once.
/// </summary>
public class ScalarStressTests(ITestOutputHelper output)
{
    [Fact]
    public void Two_workers_train_ensembles_while_another_thread_collects_garbage_non_stop()
    {
        var corpus = TextCorpus.Synthetic(200_000, 0);
        var model = new ProxyModelConfig { Width = 16, Depth = 2, Heads = 2, HeadDim = 8, ContextLength = 32 };
        var training = new ProxyTrainingOptions { Steps = 300, BatchSize = 8, SequenceLength = 32, LogEvery = 10, ValidationBatches = 1 };
        double seconds = double.Parse(Environment.GetEnvironmentVariable("SI_STRESS_SECONDS") ?? "20", System.Globalization.CultureInfo.InvariantCulture);
        var runs = new[] { 1e-3, 1e-2, 1e-1, 3e-3 }.Select(lr => (model, training with { LearningRate = lr })).ToList();
        using var stop = new CancellationTokenSource();
        long collections = 0;
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Interlocked.Increment(ref collections);
            }
        }) { IsBackground = true };
        collector.Start();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        IReadOnlyList<ProxyRunResult> results;
        try
        {
            do results = ProxyTrainer.Train(runs, corpus, CPU, workers: 2);
            while (clock.Elapsed.TotalSeconds < seconds);
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
        output.WriteLine($"rounds of 4 runs x {training.Steps} steps in {clock.Elapsed.TotalSeconds:F1} s with {collections} forced collections");
        Assert.True(collections > 100, $"only {collections} collections: the stress did not stress");
        Assert.All(results.Take(3), r => Assert.False(r.Diverged, r.DivergenceReason));
    }
}
