using System.Runtime.ExceptionServices;
using static TorchSharp.torch;

namespace ScalingInteractive.Runs;

/// <summary>
/// Independent runs of a sweep trained at once on worker threads. On a CPU, tiny models use the cores better as
/// independent runs each on one LibTorch thread than as one run whose small kernels are split across threads (measured
/// on 2 cores: `-- proxies --ensemble` in the bench), so the sweeps (<see cref="Proxies.ProxySweep"/>, the
/// intrinsic-dimension sweep, the LoRA experiment) take a worker count whose default is <see cref="DefaultFor"/>.
/// </summary>
public static class Workers
{
    /// <summary>
    /// On a CPU, cores / LibTorch threads (<c>torch.get_num_threads()</c>), at least 1: with one LibTorch thread on 2
    /// cores, 2 workers; with LibTorch's default (all cores), 1. On a GPU, 1.
    /// </summary>
    public static int DefaultFor(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return device.type == TorchSharp.DeviceType.CPU ? Math.Max(1, Environment.ProcessorCount / Math.Max(1, get_num_threads())) : 1;
    }

    /// <summary>
    /// Calls <paramref name="job"/>(i, token) for every i in [0, <paramref name="count"/>) on <paramref name="workers"/>
    /// threads (the calling thread is one of them), each taking the next index. The first failure cancels the token the
    /// other jobs see (they stop at their next check) and is rethrown once every worker has stopped; a cancelled
    /// <paramref name="cancellationToken"/> ends in <see cref="OperationCanceledException"/>. Worker threads start with
    /// the caller's execution context (so a notebook's display context flows to progress reports).
    /// </summary>
    public static void Run(int count, int workers, Action<int, CancellationToken> job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (workers < 1) throw new ArgumentException($"workers must be at least 1; got {workers}.", nameof(workers));
        int next = -1;
        var gate = new object();
        Exception? error = null;
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        void Work()
        {
            try
            {
                for (int i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
                {
                    failed.Token.ThrowIfCancellationRequested();
                    job(i, failed.Token);
                }
            }
            catch (Exception e)
            {
                // A worker cancelled because another failed reports OperationCanceledException: keep the real failure.
                lock (gate) if (error is null or OperationCanceledException) error = e;
                failed.Cancel();
            }
        }
        var threads = Enumerable.Range(1, Math.Max(0, Math.Min(workers, count) - 1))
            .Select(w => new Thread(Work) { IsBackground = true, Name = $"sweep worker {w}" }).ToList();
        threads.ForEach(t => t.Start());
        Work();
        threads.ForEach(t => t.Join());
        cancellationToken.ThrowIfCancellationRequested();
        if (error is not null) ExceptionDispatchInfo.Throw(error);
    }
}
