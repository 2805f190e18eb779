using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Sweeps;

/// <summary>How a sweep is submitted to Slurm: one job array, one task per shard.</summary>
public sealed record SlurmOptions
{
    /// <summary>Array tasks (shards); at most the number of runs.</summary>
    public int Shards { get; init; } = 1;

    /// <summary><c>--partition</c> (null: the cluster's default).</summary>
    public string? Partition { get; init; }

    /// <summary><c>--time</c> per task, Slurm syntax (e.g. <c>01:00:00</c>; null: the partition's limit).</summary>
    public string? Time { get; init; }

    /// <summary><c>--cpus-per-task</c>; also the LibTorch threads of each worker unless the spec says otherwise.</summary>
    public int CpusPerTask { get; init; } = 1;

    /// <summary><c>--mem</c> (e.g. <c>4G</c>; null: the partition's default).</summary>
    public string? Memory { get; init; }

    /// <summary>GPUs per task: <c>--gres=gpu:N</c>; the spec's device must then be <c>cuda</c> (or <c>cuda:N</c>/<c>auto</c>).</summary>
    public int Gpus { get; init; }

    /// <summary>At most this many tasks at once (<c>--array=0-N%P</c>; null: no limit).</summary>
    public int? ArrayParallelism { get; init; }

    /// <summary>Further sbatch options passed through as written, e.g. <c>--account=proj</c>, <c>--qos=short</c>.</summary>
    public IReadOnlyList<string> ExtraSbatchOptions { get; init; } = [];

    /// <summary><c>--job-name</c> (null: the spec's name).</summary>
    public string? JobName { get; init; }

    /// <summary>
    /// How tasks start the worker: the path of ScalingInteractive.Worker.dll (run with <c>dotnet</c>) or of an
    /// executable. Null: <see cref="SweepWorkerLocator.Resolve"/> (SCALING_INTERACTIVE_WORKER, a worker next to this
    /// library, else one published once from the package into the cache folder).
    /// </summary>
    public string? Worker { get; init; }

    /// <summary>Checks the options; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public SlurmOptions Validate(SweepSpec spec)
    {
        if (Shards < 1) throw new ArgumentException($"Shards (array tasks) must be at least 1; got {Shards}.", nameof(Shards));
        int largest = spec.Stages.Max(stage => spec.Runs.Count(r => r.Stage == stage));
        if (Shards > largest) throw new ArgumentException($"Shards {Shards} is more than the {largest} runs of the sweep's largest stage: some tasks would have nothing to do. Use at most {largest}.", nameof(Shards));
        if (CpusPerTask < 1) throw new ArgumentException($"CpusPerTask must be at least 1; got {CpusPerTask}.", nameof(CpusPerTask));
        if (Gpus < 0) throw new ArgumentException($"Gpus must be 0 or more; got {Gpus}.", nameof(Gpus));
        if (ArrayParallelism is < 1) throw new ArgumentException($"ArrayParallelism must be at least 1 when given; got {ArrayParallelism}.", nameof(ArrayParallelism));
        if (Gpus > 0 && spec.Device.StartsWith("cpu", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"Gpus {Gpus} asks Slurm for GPUs but the sweep's device is '{spec.Device}': use device cuda (--device cuda) so the runs use them.", nameof(Gpus));
        if (Gpus == 0 && spec.Device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"The sweep's device is '{spec.Device}' but no GPUs are requested: set Gpus (--gpus N, sbatch --gres=gpu:N).", nameof(Gpus));
        foreach (string option in ExtraSbatchOptions)
            if (!option.StartsWith('-') || option.Contains('\n'))
                throw new ArgumentException($"Extra sbatch option '{option}' is not an option (it must start with '-' and be one line), e.g. --account=myproject.", nameof(ExtraSbatchOptions));
        return this;
    }
}

/// <summary>One <c>sbatch</c> of a sweep: a stage's first array, or a resubmission of shards that lacked records.</summary>
/// <param name="JobId">The array job id.</param>
/// <param name="Tasks">Array task indices (= shard indices of the stage) in this submission.</param>
/// <param name="SubmittedAt">When (UTC).</param>
/// <param name="Stage">The stage the array runs (it waits for the array of the stage before: afterok).</param>
public sealed record SlurmSubmission(string JobId, IReadOnlyList<int> Tasks, DateTime SubmittedAt, int Stage = 0);

/// <summary>
/// A sweep submitted to Slurm (or run locally): where its spec, script, store and logs are, and its submissions.
/// Saved as <c>handle.json</c> in its folder, so a later notebook session reattaches with <see cref="Load"/>.
/// </summary>
public sealed record SweepHandle
{
    /// <summary>The handle file in a sweep folder.</summary>
    public const string FileName = "handle.json";

    /// <summary><c>slurm</c> or <c>local</c>.</summary>
    public string Scheduler { get; init; } = "slurm";

    /// <summary>The sweep folder (spec, sbatch script, store, logs).</summary>
    public string Folder { get; init; } = "";

    /// <summary>The spec file.</summary>
    public string SpecPath { get; init; } = "";

    /// <summary>The run-store folder (one shard file per task).</summary>
    public string StoreFolder { get; init; } = "";

    /// <summary>The sbatch script (null when run locally).</summary>
    public string? ScriptPath { get; init; }

    /// <summary>The folder of per-task logs and exit-code files.</summary>
    public string LogFolder { get; init; } = "";

    /// <summary>Shards (array tasks) per stage at most; a stage with fewer runs gets one task per run.</summary>
    public int Shards { get; init; } = 1;

    /// <summary>The shards of <paramref name="stage"/> of <paramref name="spec"/>: <see cref="Shards"/>, or fewer for a smaller stage.</summary>
    public int ShardsOf(SweepSpec spec, int stage) => Math.Max(1, Math.Min(Shards, spec.Runs.Count(r => r.Stage == stage)));

    /// <summary>Every submission, oldest first.</summary>
    public IReadOnlyList<SlurmSubmission> Submissions { get; init; } = [];

    /// <summary>The first submission's job id (null when run locally).</summary>
    public string? JobId => Submissions.Count > 0 ? Submissions[0].JobId : null;

    /// <summary>The spec (read from <see cref="SpecPath"/>).</summary>
    public SweepSpec LoadSpec() => SweepSpec.Load(SpecPath);

    /// <summary>Writes <c>handle.json</c> into <see cref="Folder"/>.</summary>
    public string Save()
    {
        string path = Path.Combine(Folder, FileName);
        File.WriteAllText(path + ".partial", JsonSerializer.Serialize(this, SweepsJson.Indented.SweepHandle));
        File.Move(path + ".partial", path, overwrite: true);
        return path;
    }

    /// <summary>Reattaches to a sweep: <paramref name="path"/> is its folder or its handle.json.</summary>
    public static SweepHandle Load(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, FileName) : path;
        if (!File.Exists(file)) throw new FileNotFoundException($"No sweep handle at '{path}': give the folder #!sweep-submit wrote (it holds {FileName}).", file);
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(file), SweepsJson.Default.SweepHandle)
                   ?? throw new InvalidDataException($"Sweep handle '{file}' is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Sweep handle '{file}' cannot be read: {e.Message}");
        }
    }

    /// <summary>The log file of an array task.</summary>
    public string LogPath(string jobId, int task) => Path.Combine(LogFolder, $"{jobId}_{task}.log");

    /// <summary>The exit-code file an array task writes when its worker ends.</summary>
    public string ExitPath(string jobId, int task) => Path.Combine(LogFolder, $"{jobId}_{task}.exit");
}

/// <summary>Thrown when Slurm's commands are missing or the cluster does not answer (shown as a message, not a stack trace).</summary>
public sealed class SlurmUnavailableException(string message) : NotSupportedException(message);

/// <summary>
/// Slurm as the engine of sweeps: <see cref="Submit"/> writes the spec and an sbatch script for a job array (one task
/// per shard, each running the worker) and submits it with <c>sbatch --parsable</c>; <see cref="Status"/> reads the
/// tasks' states from <c>squeue</c> (and <c>sacct</c> where accounting is on, else the exit-code files the script
/// writes) plus the runs finished per shard from the store; <see cref="Cancel"/> and <see cref="ResubmitMissing"/>
/// are one call each; <see cref="Collect"/> gives the result the experiment gives when run locally (for a proxy sweep,
/// the result a local <c>#!proxy-sweep</c> gives).
/// </summary>
public static class SlurmSweeps
{
    /// <summary>Where <c>.ci/start-slurm.sh</c> writes its configuration; used when SLURM_CONF is unset and /etc/slurm has none.</summary>
    public const string TestClusterConf = "/tmp/si-slurm/slurm.conf";

    /// <summary>The slurm.conf Slurm's commands will be given (SLURM_CONF, else the test cluster's when /etc/slurm has none), or null for Slurm's default.</summary>
    public static string? SlurmConf()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("SLURM_CONF");
        if (!string.IsNullOrEmpty(fromEnvironment)) return fromEnvironment;
        if (!File.Exists("/etc/slurm/slurm.conf") && !File.Exists("/etc/slurm-llnl/slurm.conf") && File.Exists(TestClusterConf)) return TestClusterConf;
        return null;
    }

    /// <summary>Null when sbatch is on PATH and the cluster answers <c>sinfo</c>; otherwise why not, for the user.</summary>
    public static string? Unavailable()
    {
        if (FindOnPath("sbatch") is null)
            return "Slurm is not available here: sbatch was not found on PATH. Submit from a machine with Slurm's client commands (a cluster's login node), " +
                   "or run the sweep locally (the default: --scheduler local). For a single-node test cluster on Debian, run .ci/start-slurm.sh.";
        var (code, output) = RunTool("sinfo", ["-h", "-o", "%P %a"], TimeSpan.FromSeconds(15));
        if (code != 0)
            return $"Slurm is installed but the cluster does not answer (sinfo exited {code}: {Trim(output)}). Check SLURM_CONF ({SlurmConf() ?? "unset"}) and that slurmctld runs.";
        return null;
    }

    /// <summary>Throws <see cref="SlurmUnavailableException"/> with <see cref="Unavailable"/>'s message when Slurm cannot be used.</summary>
    public static void EnsureAvailable()
    {
        if (Unavailable() is { } reason) throw new SlurmUnavailableException(reason);
    }

    /// <summary>
    /// Writes <paramref name="spec"/>, an sbatch script and <c>handle.json</c> into <paramref name="folder"/> (created;
    /// it must be on a file system the compute nodes see) and submits one job array of
    /// <see cref="SlurmOptions.Shards"/> tasks. Returns the handle.
    /// </summary>
    public static SweepHandle Submit(SweepSpec spec, SlurmOptions options, string folder)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        spec.Validate();
        options.Validate(spec);
        EnsureAvailable();
        string root = Path.GetFullPath(folder);
        if (File.Exists(Path.Combine(root, SweepHandle.FileName)))
            throw new ArgumentException($"Folder '{root}' already holds a submitted sweep ({SweepHandle.FileName}): reattach with SweepHandle.Load(\"{root}\") and use ResubmitMissing, or choose another folder.", nameof(folder));
        Directory.CreateDirectory(root);
        string worker = SweepWorkerLocator.Resolve(options.Worker);
        var handle = new SweepHandle
        {
            Scheduler = "slurm",
            Folder = root,
            SpecPath = spec.Save(Path.Combine(root, "spec.json")),
            StoreFolder = Directory.CreateDirectory(Path.Combine(root, "store")).FullName,
            LogFolder = Directory.CreateDirectory(Path.Combine(root, "logs")).FullName,
            ScriptPath = Path.Combine(root, "sweep.sbatch"),
            Shards = options.Shards,
        };
        File.WriteAllText(handle.ScriptPath, Script(spec, options, handle, worker));
        // One array per stage, each waiting for the one before (afterok): fine-tuning runs read the pre-training run's checkpoint.
        var submissions = new List<SlurmSubmission>();
        foreach (int stage in spec.Stages)
            submissions.Add(Sbatch(handle, stage, Enumerable.Range(0, handle.ShardsOf(spec, stage)).ToList(), handle.ShardsOf(spec, stage), options.ArrayParallelism, submissions.LastOrDefault()?.JobId));
        handle = handle with { Submissions = submissions };
        handle.Save();
        return handle;
    }

    /// <summary>The sbatch script of a sweep (written by <see cref="Submit"/>).</summary>
    public static string Script(SweepSpec spec, SlurmOptions options, SweepHandle handle, string workerCommand)
    {
        var s = new StringBuilder();
        s.Append("#!/bin/bash\n");
        s.Append("# ScalingInteractive ").Append(spec.Kind).Append(" '").Append(spec.Name).Append("': one array task per shard of a stage; written by SlurmSweeps.Submit.\n");
        s.Append("# Usage: sbatch --array=0-(N-1) sweep.sbatch STAGE N   (N: the stage's shards)\n");
        s.Append("#SBATCH --job-name=").Append(Sanitise(options.JobName ?? spec.Name)).Append('\n');
        s.Append("#SBATCH --output=").Append(Path.Combine(handle.LogFolder, "%A_%a.log")).Append('\n');
        s.Append("#SBATCH --cpus-per-task=").Append(options.CpusPerTask).Append('\n');
        s.Append("#SBATCH --ntasks=1\n");
        if (options.Partition is { } p) s.Append("#SBATCH --partition=").Append(p).Append('\n');
        if (options.Time is { } t) s.Append("#SBATCH --time=").Append(t).Append('\n');
        if (options.Memory is { } m) s.Append("#SBATCH --mem=").Append(m).Append('\n');
        if (options.Gpus > 0) s.Append("#SBATCH --gres=gpu:").Append(options.Gpus).Append('\n');
        foreach (string extra in options.ExtraSbatchOptions) s.Append("#SBATCH ").Append(extra).Append('\n');
        int threads = spec.Threads > 0 ? spec.Threads : options.CpusPerTask;
        s.Append("export OMP_NUM_THREADS=").Append(threads).Append('\n');
        s.Append("export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1\n");
        // A handler (not an ignore: children would inherit that) lets bash outlive SIGTERM and record the worker's exit code.
        s.Append("trap 'echo \"task $SLURM_ARRAY_TASK_ID: SIGTERM (scancel or time limit)\" >&2' TERM\n");
        s.Append(workerCommand).Append(" --spec ").Append(Quote(handle.SpecPath))
         .Append(" --shard \"$SLURM_ARRAY_TASK_ID/$2\" --stage \"$1\"")
         .Append(" --store ").Append(Quote(handle.StoreFolder)).Append(" --threads ").Append(threads).Append(" &\n");
        // Waiting on a background child lets the TERM handler run at once; the worker gets TERM from Slurm itself.
        s.Append("worker=$!\nwait $worker; rc=$?\n");
        s.Append("while kill -0 $worker 2>/dev/null; do wait $worker; rc=$?; done\n");
        s.Append("echo $rc > ").Append(Quote(handle.LogFolder + "/")).Append("\"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}.exit\"\n");
        s.Append("exit $rc\n");
        return s.ToString();
    }

    private static SlurmSubmission Sbatch(SweepHandle handle, int stage, IReadOnlyList<int> tasks, int shards, int? parallelism, string? afterJob)
    {
        string array = Ranges(tasks) + (parallelism is int p ? "%" + p : "");
        var arguments = new List<string> { "--parsable", "--array=" + array };
        if (afterJob is not null) arguments.Add("--dependency=afterok:" + afterJob);
        arguments.AddRange([handle.ScriptPath!, stage.ToString(CultureInfo.InvariantCulture), shards.ToString(CultureInfo.InvariantCulture)]);
        var (code, output) = RunTool("sbatch", arguments, TimeSpan.FromSeconds(60), handle.Folder);
        if (code != 0) throw new SlurmUnavailableException($"sbatch refused the sweep (exit {code}): {Trim(output)}. The script is {handle.ScriptPath}.");
        string jobId = output.Trim().Split('\n').Last().Split(';')[0].Trim();
        if (jobId.Length == 0 || !jobId.All(char.IsAsciiDigit)) throw new SlurmUnavailableException($"sbatch --parsable printed '{Trim(output)}', not a job id.");
        return new SlurmSubmission(jobId, tasks, DateTime.UtcNow, stage);
    }

    /// <summary>The array's task states and the runs finished per shard.</summary>
    public static SweepStatus Status(SweepHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        var spec = handle.LoadSpec();
        // Task states and exit codes first, the store after: a task seen as ended has written its records before it
        // ended, so they are in the store read next. (Read the other way round, a task ending between the two reads
        // looked finished with its runs missing.)
        var queue = handle.Scheduler == "slurm" ? QueueStates(handle) : new Dictionary<(string, int), string>();
        var shards = spec.Stages.SelectMany(stage => Enumerable.Range(0, handle.ShardsOf(spec, stage)).Select(shard => (Stage: stage, Shard: shard))).ToList();
        SlurmSubmission? SubmissionOf(int stage, int shard) => handle.Submissions.LastOrDefault(s => s.Stage == stage && s.Tasks.Contains(shard));
        var exits = shards.Select(t => SubmissionOf(t.Stage, t.Shard) is { } sub ? ReadExit(handle.ExitPath(sub.JobId, t.Shard)) : null).ToArray();
        var store = spec.OpenStore(handle.StoreFolder);
        var tasks = new List<SweepTaskStatus>();
        for (int i = 0; i < shards.Count; i++)
        {
            var (stage, shard) = shards[i];
            var keys = spec.Shard(stage, shard, handle.ShardsOf(spec, stage)).Select(r => r.Key).ToList();
            int done = keys.Count(store.Contains);
            var submission = SubmissionOf(stage, shard);
            if (submission is null)
            {
                tasks.Add(new SweepTaskStatus(shard, null, handle.Scheduler == "local" ? "LOCAL" : "NOT SUBMITTED", null, done, keys.Count, null) { Stage = stage });
                continue;
            }
            int? exit = exits[i];
            string state = queue.TryGetValue((submission.JobId, shard), out string? q) ? q
                : exit switch
                {
                    0 => "COMPLETED",
                    SweepWorker.CancelledExitCode => "CANCELLED",
                    not null => "FAILED",
                    null when File.Exists(handle.LogPath(submission.JobId, shard)) => "ENDED (no exit code: killed?)",
                    null => "UNKNOWN (not in squeue, no log)",
                };
            // squeue keeps finished tasks for a while (MinJobAge): the exit file is more precise about why.
            if (exit is int e2 && state is "COMPLETED" or "COMPLETING" && e2 != 0) state = e2 == SweepWorker.CancelledExitCode ? "CANCELLED" : "FAILED";
            string? tail = state is "COMPLETED" or "PENDING" or "RUNNING" or "CONFIGURING" or "COMPLETING" ? null : Tail(handle.LogPath(submission.JobId, shard), 12);
            tasks.Add(new SweepTaskStatus(shard, submission.JobId, state, exit, done, keys.Count, tail) { Stage = stage });
        }
        return new SweepStatus(handle, tasks, store.Count, spec.Runs.Count, store.BadLines, store.DuplicateRecords, DateTime.UtcNow);
    }

    private static Dictionary<(string, int), string> QueueStates(SweepHandle handle)
    {
        var states = new Dictionary<(string, int), string>();
        string ids = string.Join(",", handle.Submissions.Select(s => s.JobId));
        var (sacctCode, sacct) = RunTool("sacct", ["-n", "-P", "-X", "-j", ids, "-o", "JobID,State"], TimeSpan.FromSeconds(20));
        if (sacctCode == 0) Parse(sacct, '|', states);
        var (code, queue) = RunTool("squeue", ["-h", "-r", "--states=all", "-j", ids, "-o", "%i|%T"], TimeSpan.FromSeconds(20));
        if (code == 0) Parse(queue, '|', states);
        return states;

        static void Parse(string text, char separator, Dictionary<(string, int), string> into)
        {
            foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var parts = line.Split(separator);
                if (parts.Length < 2) continue;
                var id = parts[0].Split('_');
                if (id.Length != 2 || !int.TryParse(id[1], CultureInfo.InvariantCulture, out int task)) continue; // pending ranges "12_[0-2]" need -r
                into[(id[0], task)] = parts[1].Split(' ')[0];
            }
        }
    }

    /// <summary>Cancels the sweep's tasks that are still queued or running (<c>scancel</c>); <paramref name="task"/> picks one array task.</summary>
    public static void Cancel(SweepHandle handle, int? task = null)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (handle.Scheduler != "slurm") throw new ArgumentException("This sweep ran locally: there is nothing to cancel in Slurm (interrupt the cell instead).", nameof(handle));
        EnsureAvailable();
        var targets = task is int t
            ? [(handle.Submissions.LastOrDefault(s => s.Tasks.Contains(t)) ?? throw new ArgumentException($"Task {t} was never submitted; tasks are 0..{handle.Shards - 1}.", nameof(task))).JobId + "_" + t]
            : handle.Submissions.Select(s => s.JobId).ToList();
        var (code, output) = RunTool("scancel", targets.ToArray(), TimeSpan.FromSeconds(30));
        if (code != 0) throw new SlurmUnavailableException($"scancel {string.Join(" ", targets)} failed (exit {code}): {Trim(output)}");
    }

    /// <summary>
    /// Submits again only the shards that lack records and are not queued or running (cancelled, failed, timed out,
    /// lost); their workers skip the runs already recorded. Returns the updated handle (saved), or the same handle when
    /// nothing is missing.
    /// </summary>
    public static SweepHandle ResubmitMissing(SweepHandle handle, int? arrayParallelism = null)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (handle.Scheduler != "slurm") throw new ArgumentException("This sweep ran locally: run it again locally to finish missing runs.", nameof(handle));
        var status = Status(handle);
        var spec = handle.LoadSpec();
        // From the first stage with ended shards that lack runs: that stage's missing shards, then every later stage's
        // unfinished shards again, each stage waiting for the one before (arrays still pending behind the failed stage
        // would wait forever: they are cancelled first).
        int? first = status.Tasks.Where(t => t.NeedsResubmit).Select(t => (int?)t.Stage).Min();
        if (first is null) return handle;
        EnsureAvailable();
        var stalled = status.Tasks.Where(t => t.Stage > first && t.IsActive && t.JobId is not null).Select(t => t.JobId!).Distinct().ToList();
        if (stalled.Count > 0) RunTool("scancel", stalled, TimeSpan.FromSeconds(30));
        var submissions = handle.Submissions.ToList();
        string? after = null;
        foreach (int stage in spec.Stages.Where(s => s >= first))
        {
            var missing = status.Tasks.Where(t => t.Stage == stage && t.RunsDone < t.RunsTotal && (stage > first || !t.IsActive)).Select(t => t.Shard).ToList();
            if (missing.Count == 0) continue;
            var submission = Sbatch(handle, stage, missing, handle.ShardsOf(spec, stage), arrayParallelism, after);
            submissions.Add(submission);
            after = submission.JobId;
        }
        var updated = handle with { Submissions = submissions };
        updated.Save();
        return updated;
    }

    /// <summary>The sweep's store (every shard, read as one; read-only).</summary>
    public static RunStore OpenStore(SweepHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        return handle.LoadSpec().OpenStore(handle.StoreFolder);
    }

    /// <summary>The runs recorded so far as the result a local <c>#!proxy-sweep</c> gives (fits and charts work unchanged).</summary>
    public static object Collect(SweepHandle handle) => handle.LoadSpec().Experiment.Collect(OpenStore(handle));

    /// <summary>
    /// Polls <see cref="Status"/> every <paramref name="poll"/> until no task is queued or running, telling
    /// <paramref name="onUpdate"/> each time; honours <paramref name="cancellationToken"/> (the sweep keeps running).
    /// </summary>
    public static async Task<SweepStatus> WaitAsync(SweepHandle handle, Action<SweepStatus>? onUpdate = null, TimeSpan? poll = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var status = Status(handle);
            onUpdate?.Invoke(status);
            if (status.IsFinished) return status;
            if (timeout is { } limit && clock.Elapsed > limit) throw new TimeoutException($"The sweep in {handle.Folder} was still running after {limit.TotalSeconds:F0} s ({status.RunsDone}/{status.RunsTotal} runs).");
            await Task.Delay(poll ?? TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Runs a Slurm client command with SLURM_CONF set as <see cref="SlurmConf"/> says; returns (exit code, stdout+stderr).</summary>
    public static (int ExitCode, string Output) RunTool(string tool, IReadOnlyList<string> arguments, TimeSpan timeout, string? workingDirectory = null)
    {
        if (FindOnPath(tool) is null) return (127, $"{tool} was not found on PATH");
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        if (workingDirectory is not null) start.WorkingDirectory = workingDirectory;
        if (SlurmConf() is { } conf) start.Environment["SLURM_CONF"] = conf;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            return (124, $"{tool} did not answer within {timeout.TotalSeconds:F0} s");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    internal static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);

    private static int? ReadExit(string path) =>
        File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), CultureInfo.InvariantCulture, out int code) ? code : null;

    private static string? Tail(string path, int lines)
    {
        if (!File.Exists(path)) return null;
        try { return string.Join("\n", File.ReadLines(path).TakeLast(lines)); }
        catch (IOException) { return null; }
    }

    /// <summary>0,1,2,5 -> "0-2,5".</summary>
    internal static string Ranges(IReadOnlyList<int> tasks)
    {
        var sorted = tasks.Distinct().Order().ToList();
        var parts = new List<string>();
        for (int i = 0; i < sorted.Count;)
        {
            int j = i;
            while (j + 1 < sorted.Count && sorted[j + 1] == sorted[j] + 1) j++;
            parts.Add(i == j ? sorted[i].ToString(CultureInfo.InvariantCulture) : $"{sorted[i]}-{sorted[j]}");
            i = j + 1;
        }
        return string.Join(",", parts);
    }

    private static string Quote(string path) => "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static string Sanitise(string name) => new(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());

    private static string Trim(string text) => text.Trim().Length > 400 ? text.Trim()[..400] + "..." : text.Trim();
}
