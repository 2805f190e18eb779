using ScalingInteractive.Runs;
using Xunit;

namespace ScalingInteractive.Tests.Runs;

public class WorkersTests
{
    [Fact]
    public void EveryIndexRunsOnceAcrossTheWorkers()
    {
        var seen = new int[50];
        var threads = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
        Workers.Run(50, 3, (i, _) => { Interlocked.Increment(ref seen[i]); threads[Environment.CurrentManagedThreadId] = true; Thread.Sleep(2); });
        Assert.All(seen, n => Assert.Equal(1, n));
        Assert.True(threads.Count > 1, "the jobs ran on one thread only");
    }

    [Fact]
    public void TheFirstRealFailureIsRethrownAndStopsTheOthers()
    {
        int started = 0;
        var error = Assert.Throws<InvalidOperationException>(() => Workers.Run(1000, 2, (i, token) =>
        {
            Interlocked.Increment(ref started);
            if (i == 3) throw new InvalidOperationException("job 3 failed");
            Thread.Sleep(1);
            token.ThrowIfCancellationRequested(); // the other worker sees the cancellation at its next check
        }));
        Assert.Equal("job 3 failed", error.Message);
        Assert.True(started < 1000, $"{started} jobs started after the failure");
    }

    [Fact]
    public void CancellationAndBadCountsAreReported()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        int ran = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => Workers.Run(10, 2, (_, _) => Interlocked.Increment(ref ran), cancelled.Token));
        Assert.Equal(0, ran);
        var bad = Assert.Throws<ArgumentException>(() => Workers.Run(10, 0, (_, _) => { }));
        Assert.Contains("workers", bad.Message);
        Workers.Run(0, 4, (_, _) => throw new InvalidOperationException("no job to run")); // nothing to do: no thread, no call
    }
}
