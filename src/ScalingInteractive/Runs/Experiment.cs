using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace ScalingInteractive.Runs;

/// <summary>
/// One run of an experiment, as data: its key (a hash of its configuration, the key of its record in the store), its
/// stage (runs of a stage may read the records and checkpoints of earlier stages, e.g. fine-tuning runs read the
/// pre-training run's checkpoint by key) and its configuration.
/// </summary>
/// <param name="Key">The run's key in the store.</param>
/// <param name="Stage">0 first; a stage starts when every run of the stages before it has finished.</param>
/// <param name="Config">The run's configuration (kind-specific JSON; its hash is the key).</param>
public sealed record PlannedRun(string Key, int Stage, JsonObject Config);

/// <summary>Where and how a worker runs runs of an experiment.</summary>
/// <param name="Store">The run store (a folder store with one shard file per worker, or a single file); every finished run is appended to it.</param>
/// <param name="Device">Device of every tensor.</param>
/// <param name="Workers">Runs trained at once on threads (null: the device's default, <see cref="Runs.Workers.DefaultFor"/>).</param>
/// <param name="Progress">Told runs done and a status.</param>
/// <param name="CancellationToken">Checked between steps.</param>
public sealed record ExperimentContext(RunStore Store, Device Device, int? Workers = null, IProgressSink? Progress = null, CancellationToken CancellationToken = default)
{
    /// <summary>The store's path: its folder for a folder store, its file for a single-file store.</summary>
    public string Folder => Store.Path;

    /// <summary>
    /// Where run <paramref name="key"/> keeps its checkpoint, which later runs read by key: <c>STORE/checkpoints/KEY.safetensors</c>
    /// for a folder store, <c>FILE.checkpoints/KEY.safetensors</c> beside a single-file store (see
    /// <see cref="CheckpointPathIn"/>); written aside and renamed into place before the run's record is appended.
    /// </summary>
    public string CheckpointPath(string key) => CheckpointPathIn(Store.Path, Store.IsFolder, key);

    /// <summary>
    /// The checkpoint path of run <paramref name="key"/> in the store at <paramref name="storePath"/> (a folder store when
    /// <paramref name="folderStore"/>, else a single file, whose checkpoints live in the folder <c>FILE.checkpoints</c> beside it).
    /// </summary>
    public static string CheckpointPathIn(string storePath, bool folderStore, string key)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(storePath);
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        string full = System.IO.Path.GetFullPath(storePath);
        return folderStore ? System.IO.Path.Combine(full, "checkpoints", key + ".safetensors") : System.IO.Path.Combine(full + ".checkpoints", key + ".safetensors");
    }

    /// <summary>The worker count in effect.</summary>
    public int WorkerCount => Workers ?? Runs.Workers.DefaultFor(Device);
}

/// <summary>
/// An experiment as data: runs in stages with their keys and configurations, the settings they share, what a store of
/// its runs must agree on, how to run some of its runs, and how to read its result back from a store. Proxy sweeps,
/// intrinsic-dimension sweeps and the LoRA experiment are experiments; the same worker runs any of them, in this process
/// or as shards of a Slurm job array (Sweeps).
/// </summary>
public interface IExperiment
{
    /// <summary>The kind, e.g. <c>proxy-sweep</c>: also the store's kind.</summary>
    string Kind { get; }

    /// <summary>The experiment's name (part of its store's identity).</summary>
    string Name { get; }

    /// <summary>Every run, in order.</summary>
    IReadOnlyList<PlannedRun> Runs { get; }

    /// <summary>The experiment's settings and runs as JSON (the spec file's body; each run carries its key and stage).</summary>
    JsonObject ToJson();

    /// <summary>Throws <see cref="InvalidDataException"/> naming the first invalid setting or run.</summary>
    void Validate();

    /// <summary>What every record of a store of this experiment must agree on (the store header's identity).</summary>
    JsonObject StoreIdentity();

    /// <summary>
    /// Runs the given runs (all of one stage; those the store holds already are skipped), appending each record as its
    /// run ends. Records and checkpoints of earlier stages are read from the store.
    /// </summary>
    void Run(IReadOnlyList<PlannedRun> runs, ExperimentContext context);

    /// <summary>The experiment's result read from a store (a rich result: the same object the local command shows).</summary>
    object Collect(RunStore store);
}

/// <summary>Runs an experiment's stages in order in this process (what the worker does for one shard).</summary>
public static class Experiments
{
    /// <summary>The stages of <paramref name="experiment"/>, in order.</summary>
    public static IReadOnlyList<int> Stages(this IExperiment experiment) => experiment.Runs.Select(r => r.Stage).Distinct().Order().ToList();

    /// <summary>
    /// Runs shard <paramref name="index"/> of <paramref name="count"/> of every stage in order (shard i of a stage holds its
    /// runs at positions i, i+n, ...). One shard of a later stage needs every shard of the earlier stages finished: in
    /// one process, run every shard (count 1); on a cluster, one job array per stage (Sweeps.SlurmSweeps).
    /// </summary>
    public static void RunShard(this IExperiment experiment, ExperimentContext context, int index = 0, int count = 1, int? stage = null)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        ArgumentNullException.ThrowIfNull(context);
        foreach (int s in stage is int only ? [only] : experiment.Stages())
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            // Each kind skips the runs already in the store itself (and says how many), so a restart redoes only the rest.
            var runs = Shard(experiment, s, index, count);
            if (runs.Count > 0) experiment.Run(runs, context);
        }
    }

    /// <summary>The runs of stage <paramref name="stage"/> in shard <paramref name="index"/> of <paramref name="count"/>.</summary>
    public static IReadOnlyList<PlannedRun> Shard(this IExperiment experiment, int stage, int index, int count)
    {
        if (count <= 0) throw new ArgumentException($"The shard count must be positive; got {count}.", nameof(count));
        if (index < 0 || index >= count) throw new ArgumentException($"Shard index {index} is outside 0..{count - 1}.", nameof(index));
        return experiment.Runs.Where(r => r.Stage == stage).Where((_, i) => i % count == index).ToList();
    }
}
