using System.Diagnostics;
using ScalingInteractive.Proxies;
using ScalingInteractive.Sweeps;

namespace ScalingInteractive.Tests.Sweeps;

/// <summary>Tiny sweeps and helpers shared by the sweep tests.</summary>
internal static class SweepFixtures
{
    /// <summary>
    /// A 12-run proxy sweep: widths 16 and 32 x 3 learning rates x 2 seeds, <paramref name="steps"/> steps of batch 8 x
    /// 32 tokens on a 200 kB synthetic corpus, 1 LibTorch thread.
    /// </summary>
    public static SweepSpec TwelveRuns(string name, int steps = 30) => SweepSpec.ForProxyRuns(name,
        new ProxySweepSpec
        {
            Widths = [16, 32],
            LearningRates = [1e-3, 3e-3, 1e-2],
            Seeds = [0, 1],
            Training = new ProxyTrainingOptions { Steps = steps, BatchSize = 8, SequenceLength = 32, LogEvery = 10, WarmupSteps = 0 },
        }.Runs(),
        new CorpusSource { Bytes = 200_000 }, device: "cpu", threads: 1);

    /// <summary>The proxy runs of a proxy-sweep spec.</summary>
    public static IReadOnlyList<ProxyRunSpec> ProxyRuns(SweepSpec spec) => ((ProxySweepExperiment)spec.Experiment).ProxyRuns;

    /// <summary>The same spec with other proxy runs.</summary>
    public static SweepSpec WithRuns(SweepSpec spec, IEnumerable<ProxyRunSpec> runs) =>
        spec with { Experiment = (ProxySweepExperiment)spec.Experiment with { ProxyRuns = runs.ToList() } };

    /// <summary>The worker dll built next to the tests (the test project references the worker project).</summary>
    public static string WorkerDll
    {
        get
        {
            string path = Path.Combine(AppContext.BaseDirectory, SweepWorkerLocator.WorkerAssembly);
            Assert.True(File.Exists(path), $"{path} is missing: the test project references src/ScalingInteractive.Worker, whose build puts it there.");
            return path;
        }
    }

    /// <summary>Starts the worker as a child process.</summary>
    public static Process StartWorker(params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(WorkerDll);
        foreach (string a in arguments) start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1";
        return Process.Start(start)!;
    }

    /// <summary>
    /// Returns when the real Slurm can be used. Otherwise the test is reported as skipped with the reason (outside CI),
    /// or fails (CI=true: .ci/run starts a cluster with .ci/start-slurm.sh, so a missing one is a broken CI).
    /// </summary>
    public static void RequireSlurm() =>
        Needs.Tool("Slurm", SlurmSweeps.Unavailable(), "start one with .ci/start-slurm.sh (as root)");

    /// <summary>A status with a failed task and a torn store line, for the display tests.</summary>
    public static SweepStatus StatusSample() => new(
        new SweepHandle { Folder = "/shared/sweeps/<demo>", Shards = 2, Submissions = [new SlurmSubmission("41", [0, 1], new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc))] },
        [new SweepTaskStatus(0, "41", "COMPLETED", 0, 4, 4, null), new SweepTaskStatus(1, "41", "CANCELLED", 143, 1, 4, "[shard 1/2] cancelled <after> 2 s")],
        5, 8, [new ScalingInteractive.Runs.BadRunLine(3, "{\"key\":", "not valid JSON") { File = "/shared/sweeps/demo/store/shard-0001.jsonl" }], 0,
        new DateTime(2026, 1, 1, 0, 1, 0, DateTimeKind.Utc));

    public static string TempFolder(string prefix) => Directory.CreateTempSubdirectory(prefix).FullName;
}
