using System.Collections.Immutable;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Hosting;
using ScalingInteractive.Display;
using ScalingInteractive.Core;
using ScalingInteractive.Sweeps;

namespace ScalingInteractive.Commands;

/// <summary>Resolving the --spec and --handle values the sweep commands take.</summary>
internal static class SweepCommandValues
{
    public const string SpecKinds = "a SweepSpec, an experiment (e.g. a LoraExperimentSpec), a ProxySweepSpec or a list of ProxyRunSpec (C# variables), or a spec.json file";

    public static SweepSpec Spec(CommandArguments a, ICommandHost host)
    {
        object value = a.GetVariableOrPath("--spec", host, SpecKinds)!;
        string name = a.Get<string>("--name") ?? "sweep";
        return value switch
        {
            SweepSpec s => s,
            IExperiment experiment => SweepSpec.For(experiment), // e.g. a LoraExperimentSpec: one job array per stage on Slurm
            ProxySweepSpec p => SweepSpec.ForProxyRuns(name, p.Runs()),
            IEnumerable<ProxyRunSpec> runs => SweepSpec.ForProxyRuns(name, runs),
            string path when File.Exists(path) => SweepSpec.Load(path),
            _ => throw new CommandException($"{a.Command.Name}: --spec is a {value.GetType().Name}; it takes {SpecKinds}."),
        };
    }

    public static SweepHandle Handle(CommandArguments a, ICommandHost host)
    {
        object value = a.GetVariableOrPath("--handle", host, "a SweepHandle (the variable #!sweep-submit set) or a sweep folder")!;
        return value switch
        {
            SweepHandle h => h,
            string path => SweepHandle.Load(path),
            _ => throw new CommandException($"{a.Command.Name}: --handle is a {value.GetType().Name}; it takes a SweepHandle (the variable #!sweep-submit set) or a sweep folder."),
        };
    }

    public static readonly CommandParameter HandleParameter =
        new("--handle", typeof(string), "The sweep: the SweepHandle variable #!sweep-submit set (bare name), or the sweep's folder.") { Required = true, AllowImplicitName = true, AcceptsVariable = true };

    /// <summary>Shows the status, updated in place every poll until no task is queued or running (or the cell is cancelled).</summary>
    public static async Task<SweepStatus> WatchAsync(SweepHandle handle, ICommandHost host, double pollSeconds)
    {
        var status = SlurmSweeps.Status(handle);
        var display = host.Display(status);
        while (!status.IsFinished)
        {
            await Task.Delay(TimeSpan.FromSeconds(pollSeconds), host.CancellationToken).ConfigureAwait(false);
            status = SlurmSweeps.Status(handle);
            display.Update(status);
        }
        return status;
    }

    public static readonly CommandParameter Poll = new("--poll", typeof(double), "Seconds between status updates.") { Default = 2.0, Minimum = 0.2 };
}

/// <summary>
/// <c>#!sweep-submit</c>: runs a sweep spec locally (the default) or submits it to Slurm as a job array (one task per
/// shard) and sets a <see cref="SweepHandle"/> variable for <c>#!sweep-status</c> and <c>#!sweep-collect</c>.
/// </summary>
public sealed class SweepSubmitCommand : MagicCommand
{
    /// <inheritdoc />
    public override string Name => "#!sweep-submit";

    /// <inheritdoc />
    public override string Description => "Runs a sweep spec here (--scheduler local, the default) or submits it to Slurm as a job array of --shards tasks (--scheduler slurm); sets a SweepHandle for #!sweep-status and #!sweep-collect.";

    /// <inheritdoc />
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        new("--spec", typeof(string), "The sweep: " + SweepCommandValues.SpecKinds + " (bare variable name).") { Required = true, AllowImplicitName = true, AcceptsVariable = true },
        new("--scheduler", typeof(string), "Where the runs execute: local (this process) or slurm (a job array via sbatch).") { Default = "local", AllowedValues = ["local", "slurm"] },
        new("--folder", typeof(string), "Sweep folder for the spec, script, store and logs (on a file system the compute nodes see). Default: a new folder in the temp folder."),
        new("--shards", typeof(int), "Array tasks (shards) for slurm.") { Default = 1, Minimum = 1 },
        new("--partition", typeof(string), "sbatch --partition."),
        new("--time", typeof(string), "sbatch --time per task, e.g. 01:00:00."),
        new("--cpus-per-task", typeof(int), "sbatch --cpus-per-task (also the worker's LibTorch threads when the spec gives none).") { Default = 1, Minimum = 1 },
        new("--mem", typeof(string), "sbatch --mem per task, e.g. 4G."),
        new("--gpus", typeof(int), "GPUs per task (sbatch --gres=gpu:N); needs --device cuda.") { Default = 0, Minimum = 0 },
        new("--array-parallelism", typeof(int), "At most this many tasks at once (--array=0-N%P).") { Minimum = 1 },
        new("--sbatch-options", typeof(string[]), "Further sbatch options passed through (JSON list), e.g. [\"--account=proj\"]."),
        new("--worker", typeof(string), "Path of ScalingInteractive.Worker.dll for the tasks (default: SCALING_INTERACTIVE_WORKER, else one published once from the package)."),
        SharedParameters.Device with { Default = null, Description = "Device for the runs (overrides the spec's): cpu, cuda, cuda:N or auto." },
        SharedParameters.Name("SweepHandle", "sweep"),
    ];

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        var spec = SweepCommandValues.Spec(arguments, host);
        if (arguments.Get<string>("--device") is { } device) spec = spec with { Device = device };
        string name = arguments.Get<string>("--name") ?? "sweep";
        string folder = arguments.Get<string>("--folder")
            ?? Path.Combine(Path.GetTempPath(), "scaling-interactive", "sweeps", $"{name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        SweepHandle handle;
        if (arguments.Get<string>("--scheduler") == "slurm")
        {
            if (SlurmSweeps.Unavailable() is { } reason) throw new CommandException("#!sweep-submit --scheduler slurm: " + reason);
            var options = new SlurmOptions
            {
                Shards = arguments.Get<int>("--shards"),
                Partition = arguments.Get<string>("--partition"),
                Time = arguments.Get<string>("--time"),
                CpusPerTask = arguments.Get<int>("--cpus-per-task"),
                Memory = arguments.Get<string>("--mem"),
                Gpus = arguments.Get<int>("--gpus"),
                ArrayParallelism = arguments["--array-parallelism"] as int?,
                ExtraSbatchOptions = arguments.Get<string[]>("--sbatch-options") ?? [],
                Worker = arguments.Get<string>("--worker"),
            };
            try { options.Validate(spec); }
            catch (ArgumentException e) { throw new CommandException("#!sweep-submit: " + e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal)); }
            handle = await Task.Run(() => SlurmSweeps.Submit(spec, options, folder), host.CancellationToken).ConfigureAwait(false);
        }
        else
        {
            var progress = host.CreateProgress($"#!sweep-submit {name}: {spec.Runs.Count} runs here (local)", spec.Runs.Count);
            handle = await Task.Run(() => LocalSweeps.Run(spec, folder, progress, host.CancellationToken), host.CancellationToken).ConfigureAwait(false);
        }
        host.Display(SlurmSweeps.Status(handle));
        await host.SetVariableAsync(name, handle, typeof(SweepHandle)).ConfigureAwait(false);
    }
}

/// <summary><c>#!sweep-status</c>: the state of a sweep's tasks and runs, updated in place while it runs (with --watch).</summary>
public sealed class SweepStatusCommand : MagicCommand
{
    /// <inheritdoc />
    public override string Name => "#!sweep-status";

    /// <inheritdoc />
    public override string Description => "Shows a sweep's array tasks (squeue/sacct state, exit code, runs recorded per shard, log tails of failed tasks); with --watch, updated in place until no task is queued or running.";

    /// <inheritdoc />
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        SweepCommandValues.HandleParameter,
        new("--watch", typeof(bool), "Keep updating in place until every task has ended (interrupt the cell to stop watching; the sweep keeps running)."),
        SweepCommandValues.Poll,
        SharedParameters.Name("SweepStatus", "sweepStatus"),
    ];

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        var handle = SweepCommandValues.Handle(arguments, host);
        SweepStatus status;
        if (arguments.Get<bool>("--watch")) status = await SweepCommandValues.WatchAsync(handle, host, arguments.Get<double>("--poll")).ConfigureAwait(false);
        else host.Display(status = SlurmSweeps.Status(handle));
        await host.SetVariableAsync(arguments.Get<string>("--name") ?? "sweepStatus", status, typeof(SweepStatus)).ConfigureAwait(false);
    }
}

/// <summary><c>#!sweep-collect</c>: a sweep's recorded runs as the result its experiment gives locally (a proxy sweep: the <see cref="ProxySweepResult"/> of <c>#!proxy-sweep</c>).</summary>
public sealed class SweepCollectCommand : MagicCommand
{
    /// <inheritdoc />
    public override string Name => "#!sweep-collect";

    /// <inheritdoc />
    public override string Description => "Reads a sweep's store (every shard) into the result its experiment gives locally (a proxy sweep: the ProxySweepResult of #!proxy-sweep), so fits and charts work unchanged; --wait first watches the status until every task has ended.";

    /// <inheritdoc />
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        SweepCommandValues.HandleParameter,
        new("--wait", typeof(bool), "Watch the status (updated in place) until no task is queued or running, then collect."),
        SweepCommandValues.Poll,
        SharedParameters.Name("ProxySweepResult", "sweepResult"),
    ];

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        var handle = SweepCommandValues.Handle(arguments, host);
        if (arguments.Get<bool>("--wait")) await SweepCommandValues.WatchAsync(handle, host, arguments.Get<double>("--poll")).ConfigureAwait(false);
        var result = SlurmSweeps.Collect(handle);
        host.Display(result);
        // Declared with the result's own type (ProxySweepResult, IntrinsicDimensionReport, ...) so the next cell uses its members.
        await host.SetVariableAsync(arguments.Get<string>("--name") ?? "sweepResult", result, result.GetType()).ConfigureAwait(false);
    }
}
