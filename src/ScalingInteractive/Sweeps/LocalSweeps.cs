using System.Collections.Immutable;
using ScalingInteractive.Proxies;

namespace ScalingInteractive.Sweeps;

/// <summary>Running a <see cref="SweepSpec"/> in this process, with the same folder layout and handle as a Slurm sweep.</summary>
public static class LocalSweeps
{
    /// <summary>
    /// Writes the spec into <paramref name="folder"/> and runs every run here (one shard, <c>shard-0000.jsonl</c>),
    /// skipping runs already recorded; returns the handle (scheduler <c>local</c>) that <see cref="SlurmSweeps.Status"/>
    /// and <see cref="SlurmSweeps.Collect"/> take like a Slurm one.
    /// </summary>
    public static SweepHandle Run(SweepSpec spec, string folder, IProgressSink? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string root = Path.GetFullPath(folder);
        Directory.CreateDirectory(root);
        var handle = new SweepHandle
        {
            Scheduler = "local",
            Folder = root,
            SpecPath = spec.Validate().Save(Path.Combine(root, "spec.json")),
            StoreFolder = Directory.CreateDirectory(Path.Combine(root, "store")).FullName,
            LogFolder = Directory.CreateDirectory(Path.Combine(root, "logs")).FullName,
            Shards = 1,
        };
        handle.Save();
        SweepWorker.RunShard(spec, 0, 1, handle.StoreFolder, progress, cancellationToken);
        return handle;
    }
}
