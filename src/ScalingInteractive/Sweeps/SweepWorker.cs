using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using ScalingInteractive.Hosting;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Sweeps;

/// <summary>
/// Runs one shard of a <see cref="SweepSpec"/> into a folder run store: the body of the ScalingInteractive.Worker app
/// (<c>dotnet ScalingInteractive.Worker.dll --spec spec.json --shard i/n --store DIR</c>) and of local execution.
/// Each finished run is appended (and flushed) to the shard's own file <c>shard-000i.jsonl</c> as it ends; runs already
/// recorded in any shard file are skipped, so a requeued or restarted task redoes only what is missing; diverged runs
/// are recorded as diverged; SIGTERM (scancel, a Kubernetes eviction) cancels the run in progress, which leaves nothing.
/// </summary>
public static class SweepWorker
{
    /// <summary>Exit code of a worker stopped by SIGTERM/Ctrl+C (128 + 15, as a shell reports it).</summary>
    public const int CancelledExitCode = 143;

    /// <summary>Exit code for wrong arguments or an unreadable spec.</summary>
    public const int UsageExitCode = 2;

    /// <summary>The shard file a worker writes: <c>shard-0003.jsonl</c>.</summary>
    public static string ShardFileName(int index) => $"shard-{index:D4}.jsonl";

    /// <summary>
    /// Runs shard <paramref name="index"/> of <paramref name="count"/> of <paramref name="spec"/> into the folder store
    /// <paramref name="storeFolder"/>: of stage <paramref name="stage"/>, or of every stage in order (in one process,
    /// where shard 0 of 1 holds every run). Returns the store (every shard's records, as one store).
    /// </summary>
    public static RunStore RunShard(SweepSpec spec, int index, int count, string storeFolder, IProgressSink? progress = null,
        CancellationToken cancellationToken = default, int? stage = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        if (stage is int s && !spec.Stages.Contains(s)) throw new ArgumentException($"Stage {s} is not a stage of this spec; its stages are {string.Join(", ", spec.Stages)}.", nameof(stage));
        var store = spec.OpenStore(storeFolder, ShardFileName(index));
        if (spec.Threads > 0) TorchSharp.torch.set_num_threads(spec.Threads);
        var device = TorchRuntime.ResolveDevice(spec.Device);
        spec.Experiment.RunShard(new ExperimentContext(store, device, Progress: progress, CancellationToken: cancellationToken), index, count, stage);
        return store;
    }

    /// <summary>
    /// The worker's command line: <c>--spec FILE --shard I/N --store DIR [--device D] [--threads T]</c>. I may be a
    /// number or an environment variable (<c>$JOB_COMPLETION_INDEX/4</c>, <c>${SLURM_ARRAY_TASK_ID}/4</c>, useful
    /// where no shell expands it); or give <c>--shards N</c> alone and the index is read from
    /// <c>SLURM_ARRAY_TASK_ID</c> or <c>JOB_COMPLETION_INDEX</c>. Returns the exit code (0 done, 1 failed,
    /// 2 usage, 143 cancelled); messages go to <paramref name="output"/> and <paramref name="error"/>.
    /// </summary>
    public static int Main(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        // scancel and Kubernetes send SIGTERM first: stop between steps so the run in progress leaves no record.
        using var cancellation = new SignalCancellation();
        WorkerArguments parsed;
        SweepSpec spec;
        try
        {
            parsed = WorkerArguments.Parse(args, Environment.GetEnvironmentVariable);
            spec = SweepSpec.Load(parsed.Spec);
            if (parsed.Device is not null) spec = spec with { Device = parsed.Device };
            if (parsed.Threads is int t) spec = spec with { Threads = t };
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or UserErrorException)
        {
            error.WriteLine("ScalingInteractive.Worker: " + e.Message);
            error.WriteLine(WorkerArguments.Usage);
            return UsageExitCode;
        }
        var clock = Stopwatch.StartNew();
        string prefix = parsed.Stage is int stageShown ? $"[stage {stageShown} shard {parsed.Index}/{parsed.Count}]" : $"[shard {parsed.Index}/{parsed.Count}]";
        var mine = (parsed.Stage is int only ? [only] : spec.Stages).SelectMany(s => spec.Shard(s, parsed.Index, parsed.Count)).ToList();
        output.WriteLine($"{prefix} {mine.Count} runs of {spec.Kind} '{spec.Name}' ({spec.Runs.Count} in all{(parsed.Stage is int st ? $", stage {st}" : "")}), device {spec.Device}, store {Path.GetFullPath(parsed.Store)}, host {Environment.MachineName}, pid {Environment.ProcessId}");
        output.Flush();
        try
        {
            var store = RunShard(spec, parsed.Index, parsed.Count, parsed.Store, new LineProgress(output, prefix), cancellation.Token, parsed.Stage);
            var keys = mine.Select(r => r.Key).ToList();
            output.WriteLine($"{prefix} done in {clock.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s: {keys.Count(store.Contains)}/{keys.Count} runs recorded");
            return 0;
        }
        catch (OperationCanceledException)
        {
            output.WriteLine($"{prefix} cancelled after {clock.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s; finished runs are kept, the run in progress is redone on restart");
            return CancelledExitCode;
        }
        catch (Exception e) when (UserErrors.MessageOf(e) is { } message)
        {
            error.WriteLine($"{prefix} failed: {message}");
            return 1;
        }
        catch (Exception e)
        {
            error.WriteLine($"{prefix} failed: {e}");
            return 1;
        }
    }

    /// <summary>
    /// A token cancelled by SIGTERM or SIGINT. A signal can arrive while the worker is ending (a task log showed
    /// ObjectDisposedException from a handler that cancelled a disposed source): the handler and Dispose share a lock,
    /// and a signal after Dispose is ignored.
    /// </summary>
    internal sealed class SignalCancellation : IDisposable
    {
        private readonly CancellationTokenSource _source = new();
        private readonly PosixSignalRegistration[] _registrations;
        private readonly object _gate = new();
        private bool _disposed;

        public SignalCancellation()
        {
            _registrations =
            [
                PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
                PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
            ];
        }

        public CancellationToken Token => _source.Token;

        /// <summary>What the handler does: keep the process alive (the loop stops between steps) and cancel.</summary>
        internal void OnSignal(PosixSignalContext? context)
        {
            if (context is not null) context.Cancel = true;
            lock (_gate)
                if (!_disposed) _source.Cancel();
        }

        public void Dispose()
        {
            foreach (var registration in _registrations) registration.Dispose();
            lock (_gate)
            {
                if (_disposed) return;
                _disposed = true;
                _source.Dispose();
            }
        }
    }

    /// <summary>Progress as plain lines (at most one per run and one per 10 s): what a batch log should hold.</summary>
    private sealed class LineProgress(TextWriter output, string prefix) : IProgressSink
    {
        private readonly Stopwatch _sinceLine = Stopwatch.StartNew();
        private int _lastDone = -1;

        public void Report(int done, string? status = null, string? best = null)
        {
            if (done == _lastDone && _sinceLine.Elapsed < TimeSpan.FromSeconds(10)) return;
            _lastDone = done;
            _sinceLine.Restart();
            output.WriteLine($"{prefix} {done} done; {status}{(string.IsNullOrEmpty(best) ? "" : "; " + best)}");
            output.Flush();
        }

        public void Complete(string? status = null)
        {
            output.WriteLine($"{prefix} {status}");
            output.Flush();
        }
    }
}

/// <summary>The worker's parsed command line.</summary>
/// <param name="Spec">Spec file.</param>
/// <param name="Index">Shard index.</param>
/// <param name="Count">Shard count.</param>
/// <param name="Store">Store folder.</param>
/// <param name="Device">Device override.</param>
/// <param name="Threads">Threads override.</param>
/// <param name="Stage">The stage to run (null: every stage, in order).</param>
public sealed record WorkerArguments(string Spec, int Index, int Count, string Store, string? Device, int? Threads, int? Stage = null)
{
    /// <summary>Environment variables that carry the shard index when only <c>--shards N</c> is given.</summary>
    public static readonly string[] IndexVariables = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

    /// <summary>One-paragraph usage text.</summary>
    public const string Usage =
        "usage: dotnet ScalingInteractive.Worker.dll --spec spec.json --shard I/N --store DIR [--stage S] [--device cpu|cuda|cuda:N] [--threads T]\n" +
        "  I may be a number or an environment variable ($JOB_COMPLETION_INDEX/4); or give --shards N and the index is read from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX.";

    /// <summary>Parses the worker's arguments; <paramref name="environment"/> resolves index variables.</summary>
    public static WorkerArguments Parse(IReadOnlyList<string> args, Func<string, string?> environment)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        string[] known = ["--spec", "--shard", "--shards", "--store", "--stage", "--device", "--threads"];
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            string? inline = null;
            int eq = name.IndexOf('=');
            if (name.StartsWith("--", StringComparison.Ordinal) && eq > 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
            if (!known.Contains(name)) throw new ArgumentException($"Unknown argument '{args[i]}'; accepted: {string.Join(", ", known)}.");
            string? value = inline ?? (i + 1 < args.Count ? args[++i] : null);
            if (value is null) throw new ArgumentException($"{name} needs a value.");
            values[name] = value;
        }
        if (!values.TryGetValue("--spec", out string? spec)) throw new ArgumentException("--spec is required: the sweep spec file (JSON) written by SweepSpec.Save or #!sweep-submit.");
        if (!values.TryGetValue("--store", out string? store)) throw new ArgumentException("--store is required: the run-store folder every shard writes into.");
        int index, count;
        if (values.TryGetValue("--shard", out string? shard))
        {
            var parts = shard.Split('/');
            if (parts.Length != 2) throw new ArgumentException($"--shard '{shard}' is not I/N (e.g. 0/3, or $JOB_COMPLETION_INDEX/3).");
            count = PositiveInt("--shard count", parts[1]);
            index = ParseIndex(parts[0].Trim(), environment, shard);
        }
        else if (values.TryGetValue("--shards", out string? shards))
        {
            count = PositiveInt("--shards", shards);
            string? variable = IndexVariables.FirstOrDefault(v => !string.IsNullOrEmpty(environment(v)));
            if (variable is null) throw new ArgumentException($"--shards {count} without --shard needs the index in {string.Join(" or ", IndexVariables)}; neither is set.");
            index = ParseIndex("$" + variable, environment, "$" + variable);
        }
        else throw new ArgumentException("Give --shard I/N (or --shards N with the index in SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX).");
        if (index < 0 || index >= count) throw new ArgumentException($"Shard index {index} is outside 0..{count - 1} (from --shard '{(values.TryGetValue("--shard", out var s) ? s : "")}').");
        int? threads = values.TryGetValue("--threads", out string? t) ? int.TryParse(t, CultureInfo.InvariantCulture, out int n) && n >= 0 ? n : throw new ArgumentException($"--threads '{t}' is not a whole number >= 0.") : null;
        int? stage = values.TryGetValue("--stage", out string? st) ? int.TryParse(st, NumberStyles.None, CultureInfo.InvariantCulture, out int sv) ? sv : throw new ArgumentException($"--stage '{st}' is not a whole number >= 0.") : null;
        return new WorkerArguments(spec, index, count, store, values.GetValueOrDefault("--device"), threads, stage);
    }

    private static int ParseIndex(string text, Func<string, string?> environment, string original)
    {
        if (text.StartsWith('$'))
        {
            string name = text.TrimStart('$').Trim('{', '}', '(', ')');
            string? value = environment(name);
            if (string.IsNullOrWhiteSpace(value)) throw new ArgumentException($"--shard '{original}': the environment variable {name} is not set (Kubernetes sets JOB_COMPLETION_INDEX in indexed Jobs, Slurm SLURM_ARRAY_TASK_ID in job arrays).");
            text = value.Trim();
        }
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int index) ? index
            : throw new ArgumentException($"--shard '{original}': the index '{text}' is not a whole number >= 0.");
    }

    private static int PositiveInt(string what, string text) =>
        int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n
            : throw new ArgumentException($"{what} '{text}' is not a positive whole number.");
}
