using System.Diagnostics;
using ScalingInteractive.Commands;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Sweeps;
using ScalingInteractive.Tests.Commands;
using Xunit.Abstractions;

namespace ScalingInteractive.Tests.Sweeps;

/// <summary>
/// Sweeps as job arrays on a real Slurm (the single-node cluster .ci/start-slurm.sh starts; found through SLURM_CONF or
/// /tmp/si-slurm/slurm.conf). Outside CI, where no cluster answers, each test passes with a note; in CI it fails.
/// </summary>
[Trait("Category", "Slurm")]
public class SlurmSweepTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(4);
    private readonly string _dir = SweepFixtures.TempFolder("si-slurm-test-");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } // a task still finishing its log
    }

    private SlurmOptions Options(int shards = 3) => new() { Shards = shards, CpusPerTask = 1, Time = "00:10:00", Worker = SweepFixtures.WorkerDll };

    [SkippableFact]
    public async Task Twelve_runs_as_a_three_task_array_give_the_keys_and_final_losses_of_a_local_run()
    {
        SweepFixtures.RequireSlurm();
        var spec = SweepFixtures.TwelveRuns("array12");

        var clock = Stopwatch.StartNew();
        var handle = SlurmSweeps.Submit(spec, Options(), Path.Combine(_dir, "slurm"));
        var status = await SlurmSweeps.WaitAsync(handle, s => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1} s  {s.Summary}"), TimeSpan.FromSeconds(1), Patience);
        output.WriteLine($"3-task array: {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(status.IsComplete, status.ToText());
        Assert.All(status.Tasks, t => Assert.Equal("COMPLETED", t.State));
        Assert.All(status.Tasks, t => Assert.Equal(0, t.ExitCode));

        clock.Restart();
        var local = LocalSweeps.Run(spec, Path.Combine(_dir, "local"));
        output.WriteLine($"local: {clock.Elapsed.TotalSeconds:F1} s");

        var cluster = Assert.IsType<ProxySweepResult>(SlurmSweeps.Collect(handle));
        var here = Assert.IsType<ProxySweepResult>(SlurmSweeps.Collect(local));
        Assert.Equal(spec.Keys.Order(), cluster.Rows.Select(r => r.Key).Order());
        Assert.Empty(cluster.BadLines);
        Assert.Equal(12, File.ReadLines(Path.Combine(handle.StoreFolder, "shard-0000.jsonl")).Skip(1).Count()
                         + File.ReadLines(Path.Combine(handle.StoreFolder, "shard-0001.jsonl")).Skip(1).Count()
                         + File.ReadLines(Path.Combine(handle.StoreFolder, "shard-0002.jsonl")).Skip(1).Count());
        // Same seeds, same single LibTorch thread, same binaries on the same CPU: the losses are bit-identical, not
        // merely close (a cluster with other CPUs or thread counts would need a tolerance; the stored doubles round-trip exactly).
        var byKey = here.Rows.ToDictionary(r => r.Key);
        foreach (var row in cluster.Rows)
        {
            Assert.False(row.Diverged, row.Key);
            Assert.Equal(byKey[row.Key].FinalLoss, row.FinalLoss);
            Assert.Equal(byKey[row.Key].CurveLoss, row.CurveLoss);
        }
        // Fits and charts take the collected result like a local one.
        Assert.Equal(2, cluster.Sensitivities.Count); // one setting x two widths
        Assert.Contains("<", cluster.ToHtml());
        // A later session reattaches from the folder.
        Assert.Equal(handle, SweepHandle.Load(handle.Folder) with { Submissions = handle.Submissions });
        Assert.Equal(handle.Submissions.Single().JobId, SweepHandle.Load(handle.Folder).JobId);
    }

    [SkippableFact]
    public async Task A_cancelled_task_is_resubmitted_alone_and_nothing_is_lost_or_duplicated()
    {
        SweepFixtures.RequireSlurm();
        var spec = SweepFixtures.TwelveRuns("cancel12", steps: 400);
        var handle = SlurmSweeps.Submit(spec, Options(), Path.Combine(_dir, "slurm"));
        var clock = Stopwatch.StartNew();

        // Cancel task 1 once it has recorded a run but not all four.
        SweepStatus status;
        while (true)
        {
            status = SlurmSweeps.Status(handle);
            if (status.Tasks[1].RunsDone >= 1) break;
            Assert.True(clock.Elapsed < Patience, "task 1 recorded no run in time: " + status.ToText());
            await Task.Delay(200);
        }
        Assert.True(status.Tasks[1].RunsDone < 4, "task 1 finished before it could be cancelled: " + status.ToText());
        SlurmSweeps.Cancel(handle, task: 1);
        status = await SlurmSweeps.WaitAsync(handle, null, TimeSpan.FromSeconds(1), Patience);
        output.WriteLine(status.ToText());
        var cancelled = status.Tasks[1];
        Assert.Equal("CANCELLED", cancelled.State);
        Assert.True(cancelled.NeedsResubmit);
        Assert.NotNull(cancelled.LogTail);
        Assert.Equal(["COMPLETED", "COMPLETED"], new[] { status.Tasks[0].State, status.Tasks[2].State });
        Assert.False(status.IsComplete);

        var again = SlurmSweeps.ResubmitMissing(handle);
        Assert.Equal(2, again.Submissions.Count);
        Assert.Equal([1], again.Submissions[1].Tasks); // only the shard that lacked records
        status = await SlurmSweeps.WaitAsync(again, null, TimeSpan.FromSeconds(1), Patience);
        output.WriteLine(status.ToText());
        Assert.True(status.IsComplete);
        Assert.Same(again, SlurmSweeps.ResubmitMissing(again)); // nothing left to resubmit

        var store = SlurmSweeps.OpenStore(again);
        Assert.Equal(spec.Keys.Order(), store.Records.Select(r => r["key"]!.GetValue<string>()).Order());
        Assert.Equal(0, store.DuplicateRecords);
        Assert.Empty(store.BadLines);
        int lines = Directory.GetFiles(again.StoreFolder, "shard-*.jsonl").Sum(f => File.ReadLines(f).Count(l => l.Length > 0) - 1);
        Assert.Equal(12, lines);
    }

    [Fact]
    public void Submitting_to_slurm_without_sbatch_says_so_and_local_stays_the_default()
    {
        var command = CommandCatalog.Get("#!sweep-submit");
        Assert.Equal("local", command.FindParameter("--scheduler")!.Default);
        string? path = Environment.GetEnvironmentVariable("PATH");
        try
        {
            Environment.SetEnvironmentVariable("PATH", _dir); // no Slurm commands here
            var host = new TestHost { Variables = { ["spec"] = SweepFixtures.TwelveRuns("nosbatch") } };
            var error = Assert.ThrowsAny<Exception>(() => CommandCatalog.InvokeAsync("#!sweep-submit --spec spec --scheduler slurm --shards 3", host).GetAwaiter().GetResult());
            string message = CommandCatalog.UserErrorMessage(error)!;
            Assert.Contains("sbatch was not found on PATH", message);
            Assert.Contains("--scheduler local", message);
        }
        finally
        {
            Environment.SetEnvironmentVariable("PATH", path);
        }
    }
}

/// <summary>A worker killed with SIGKILL mid-sweep (no chance to clean up) leaves a store that reads back; its restart finishes the shard.</summary>
public class WorkerKillTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = SweepFixtures.TempFolder("si-kill-");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_worker_killed_with_SIGKILL_mid_write_leaves_a_readable_store_and_a_restart_redoes_only_the_rest()
    {
        var spec = SweepFixtures.TwelveRuns("kill", steps: 400);
        string specPath = spec.Save(Path.Combine(_dir, "spec.json"));
        string store = Path.Combine(_dir, "store");
        string shard = Path.Combine(store, "shard-0000.jsonl");
        using (var worker = SweepFixtures.StartWorker("--spec", specPath, "--shard", "0/2", "--store", store))
        {
            var clock = Stopwatch.StartNew();
            while (!File.Exists(shard) || File.ReadLines(shard).Count() < 3)
            {
                if (worker.HasExited) Assert.Fail("the worker ended before it could be killed: " + await worker.StandardError.ReadToEndAsync());
                Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), "no runs recorded in 2 minutes");
                await Task.Delay(50);
            }
            output.WriteLine($"killing after {clock.Elapsed.TotalSeconds:F1} s, exited already: {worker.HasExited}");
            worker.Kill(); // SIGKILL on Linux
            await worker.WaitForExitAsync();
            output.WriteLine(await worker.StandardOutput.ReadToEndAsync());
            Assert.Equal(137, worker.ExitCode);
        }
        var afterKill = spec.OpenStore(store);
        int recorded = afterKill.Count;
        output.WriteLine($"{recorded} runs recorded before SIGKILL");
        Assert.InRange(recorded, 2, 5);
        // The kill may land between writes; make it land mid-write: the half line of the next run, no newline.
        string next = File.ReadLines(shard).Last();
        File.AppendAllText(shard, next[..(next.Length / 2)]);
        var torn = spec.OpenStore(store);
        Assert.Equal(recorded, torn.Count);
        Assert.Single(torn.BadLines);

        using (var restart = SweepFixtures.StartWorker("--spec", specPath, "--shard", "0/2", "--store", store))
        {
            string log = await restart.StandardOutput.ReadToEndAsync();
            await restart.WaitForExitAsync();
            output.WriteLine(log);
            Assert.Equal(0, restart.ExitCode);
            Assert.Contains($"{recorded}/6 runs already in the store", log);
        }
        var final = spec.OpenStore(store);
        Assert.Equal(spec.Shard(0, 0, 2).Select(r => r.Key).Order(), final.Records.Select(r => r["key"]!.GetValue<string>()).Order());
        Assert.Equal(0, final.DuplicateRecords);
        Assert.Single(final.BadLines); // still reported, costs nothing
    }
}
