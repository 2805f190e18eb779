using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Sweeps;

/// <summary>
/// An experiment as data: a self-contained JSON document with every run (its key, stage and full configuration), the
/// experiment's shared settings (the corpus, a task, a pre-training recipe), the device and the LibTorch threads. A
/// worker (<see cref="SweepWorker"/>, the ScalingInteractive.Worker app) runs one shard of one stage into a folder run
/// store, so the same spec runs in this process, as Slurm job arrays (one per stage, each waiting for the one before)
/// or as Kubernetes indexed Jobs. Shard <c>i</c> of <c>n</c> holds a stage's runs at positions <c>i, i+n, ...</c>: each
/// shard gets a spread of sizes and learning rates, so shards take similar times. Kinds: <c>proxy-sweep</c>,
/// <c>intrinsic-dimension</c> and <c>lora-experiment</c> (<see cref="ExperimentKinds"/>).
/// </summary>
public sealed record SweepSpec
{
    /// <summary>Format version written into every spec (1: proxy sweeps without stages, still read).</summary>
    public const int CurrentFormat = 2;

    /// <summary>The format version.</summary>
    public int Format { get; init; } = CurrentFormat;

    /// <summary>The experiment: its runs and settings.</summary>
    public required IExperiment Experiment { get; init; }

    /// <summary>Device for every run: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>LibTorch CPU threads per worker (0 keeps LibTorch's choice).</summary>
    public int Threads { get; init; } = 1;

    /// <summary>The kind of experiment (also the store's kind).</summary>
    public string Kind => Experiment.Kind;

    /// <summary>The experiment's name (also in the run store's identity).</summary>
    public string Name => Experiment.Name;

    /// <summary>Every run, in order.</summary>
    public IReadOnlyList<PlannedRun> Runs => Experiment.Runs;

    /// <summary>Run keys in order.</summary>
    public IReadOnlyList<string> Keys => Runs.Select(r => r.Key).ToList();

    /// <summary>The stages, in order.</summary>
    public IReadOnlyList<int> Stages => Experiment.Stages();

    /// <summary>A spec of <paramref name="experiment"/> on <paramref name="device"/> with <paramref name="threads"/> LibTorch threads per worker.</summary>
    public static SweepSpec For(IExperiment experiment, string device = "cpu", int threads = 1) =>
        new SweepSpec { Experiment = experiment ?? throw new ArgumentNullException(nameof(experiment)), Device = device, Threads = threads }.Validate();

    /// <summary>A spec of proxy runs (from <see cref="ProxySweepSpec.Runs"/> or the <see cref="ProxyExperiments"/> builders).</summary>
    public static SweepSpec ForProxyRuns(string name, IEnumerable<ProxyRunSpec> runs, CorpusSource? corpus = null, string device = "cpu", int threads = 1)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var list = runs.ToList();
        if (list.Count == 0) throw new ArgumentException("A sweep needs at least one run.", nameof(runs));
        var duplicate = list.GroupBy(r => r.Key).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Run key {duplicate.Key} appears {duplicate.Count()} times: two runs have the same configuration.", nameof(runs));
        return For(new ProxySweepExperiment(name, corpus ?? new CorpusSource(), list), device, threads);
    }

    /// <summary>Checks the spec; returns it. Throws <see cref="InvalidDataException"/> naming what is wrong.</summary>
    public SweepSpec Validate()
    {
        if (Format is not (1 or CurrentFormat)) throw new InvalidDataException($"Sweep spec format {Format} is not supported; this ScalingInteractive reads formats 1 and {CurrentFormat}.");
        if (!ExperimentKinds.Names.Contains(Kind)) throw new InvalidDataException($"Sweep spec kind '{Kind}' is not supported; accepted: {string.Join(", ", ExperimentKinds.Names)}.");
        if (Threads < 0) throw new InvalidDataException($"threads must be 0 or more; got {Threads}.");
        Experiment.Validate();
        var runs = Runs;
        if (runs.Count == 0) throw new InvalidDataException("The sweep spec has no runs.");
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < runs.Count; i++)
        {
            if (runs[i].Stage < 0) throw new InvalidDataException($"Run {i} of the sweep spec has stage {runs[i].Stage}; stages are 0 or more.");
            if (seen.TryGetValue(runs[i].Key, out int first))
                throw new InvalidDataException($"Runs {first} and {i} of the sweep spec have the same key {runs[i].Key} (the same configuration twice); a sweep runs each configuration once.");
            seen[runs[i].Key] = i;
        }
        return this;
    }

    /// <summary>The runs of stage <paramref name="stage"/> in shard <paramref name="index"/> of <paramref name="count"/>.</summary>
    public IReadOnlyList<PlannedRun> Shard(int stage, int index, int count) => Experiment.Shard(stage, index, count);

    /// <summary>Opens the folder run store of this spec (read-only view, or writing <paramref name="writeShard"/>).</summary>
    public RunStore OpenStore(string folder, string? writeShard = null) => RunStore.OpenFolder(folder, Kind, Experiment.StoreIdentity(), writeShard);

    /// <summary>The JSON text of the spec (each run carries its key and stage, checked on load).</summary>
    public string ToJson()
    {
        var node = new JsonObject
        {
            ["format"] = CurrentFormat,
            ["kind"] = Kind,
            ["name"] = Name,
            ["device"] = Device,
            ["threads"] = Threads,
        };
        foreach (var (key, value) in Experiment.ToJson()) node[key] = value?.DeepClone();
        return node.ToJsonString(SweepsJson.Indented.Options);
    }

    /// <summary>Writes the spec to <paramref name="path"/> (atomically: a worker never reads half a spec).</summary>
    public string Save(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full + ".partial", ToJson());
        File.Move(full + ".partial", full, overwrite: true);
        return full;
    }

    /// <summary>Reads a spec; every run's stored key must match the key of its configuration.</summary>
    public static SweepSpec Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Sweep spec '{path}' was not found.", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>
    /// Parses spec JSON (<paramref name="origin"/> names it in messages). Every run must carry the key of its
    /// configuration (an edited run no longer matches it) and appear once; a field of the wrong type is named in an
    /// <see cref="InvalidDataException"/>, like every other problem, so the worker exits with a message, not a trace.
    /// </summary>
    public static SweepSpec Parse(string json, string origin = "spec")
    {
        JsonObject root;
        try { root = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException($"Sweep spec '{origin}' is not a JSON object."); }
        catch (JsonException e) { throw new InvalidDataException($"Sweep spec '{origin}' is not valid JSON: {e.Message}"); }
        int format = Field(root, "format", 0, origin);
        string kind = Field(root, "kind", "", origin);
        string name = Field(root, "name", "sweep", origin);
        if (root["runs"] is not JsonArray array) throw new InvalidDataException($"Sweep spec '{origin}' has no \"runs\" list.");
        IExperiment experiment;
        try
        {
            experiment = ExperimentKinds.Parse(kind, name, root, (read, part) => Read(read, origin, part));
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith("Sweep spec", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"Sweep spec '{origin}': {e.Message}");
        }
        var runs = experiment.Runs;
        if (runs.Count != array.Count) throw new InvalidDataException($"Sweep spec '{origin}': {array.Count} runs listed, {runs.Count} read.");
        for (int i = 0; i < runs.Count; i++)
        {
            if (array[i] is not JsonObject run) throw new InvalidDataException($"Sweep spec '{origin}': run {i} is not a JSON object.");
            if (run["key"] is not JsonValue keyValue || keyValue.GetValueKind() != JsonValueKind.String)
                throw new InvalidDataException($"Sweep spec '{origin}': run {i} has no string \"key\". Every run carries the key of its configuration, " +
                                               "checked on load so that an edited run is caught; write specs with SweepSpec.Save or #!sweep-submit.");
            string stored = keyValue.GetValue<string>();
            if (stored != runs[i].Key)
                throw new InvalidDataException($"Sweep spec '{origin}': run {i} has key {stored} but its configuration gives {runs[i].Key}; the spec was edited or written by another version.");
            int stage = run["stage"] is null ? 0 : Read(() => run["stage"]!.GetValue<int>(), origin, $"run {i}'s stage");
            if (stage != runs[i].Stage)
                throw new InvalidDataException($"Sweep spec '{origin}': run {i} is listed at stage {stage} but its kind puts it at stage {runs[i].Stage}.");
        }
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < runs.Count; i++)
        {
            if (seen.TryGetValue(runs[i].Key, out int first))
                throw new InvalidDataException($"Sweep spec '{origin}': runs {first} and {i} have the same key {runs[i].Key} (the same configuration twice); a sweep runs each configuration once.");
            seen[runs[i].Key] = i;
        }
        return new SweepSpec
        {
            Format = format,
            Experiment = experiment,
            Device = Field(root, "device", "cpu", origin),
            Threads = Field(root, "threads", 1, origin),
        }.Validate();
    }

    // A top-level field of the expected JSON type, or the default when absent.
    private static T Field<T>(JsonObject root, string name, T fallback, string origin)
    {
        var node = root[name];
        if (node is null) return fallback;
        if (node is JsonValue value && value.TryGetValue(out T? typed) && typed is not null) return typed;
        string expected = typeof(T) == typeof(string) ? "a string" : "a whole number";
        throw new InvalidDataException($"Sweep spec '{origin}': \"{name}\" must be {expected}; got {node.ToJsonString()}.");
    }

    // Deserialisation errors (a wrong-typed or malformed field) as an InvalidDataException naming the part and the path.
    private static T Read<T>(Func<T> read, string origin, string part)
    {
        try { return read(); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NotSupportedException)
        {
            throw new InvalidDataException($"Sweep spec '{origin}': {part} cannot be read: {e.Message}");
        }
    }
}

/// <summary>The experiment kinds a spec can hold, and how each is read from JSON.</summary>
public static class ExperimentKinds
{
    /// <summary>A reader of a kind: (experiment name, the spec's JSON, a guard that names the part on deserialisation errors).</summary>
    public delegate IExperiment Reader(string name, JsonObject body, Func<Func<object?>, string, object?> read);

    private static readonly Dictionary<string, Reader> Readers = new(StringComparer.Ordinal)
    {
        [ProxySweep.StoreKind] = (name, body, read) => ProxySweepExperiment.FromJson(name, body, read),
        [IntrinsicDimension.IntrinsicDimensionExperiment.StoreKind] = (name, body, read) => IntrinsicDimension.IntrinsicDimensionExperiment.FromJson(name, body, read),
        [LoraSpectra.LoraExperiment.StoreKind] = (name, body, read) => LoraSpectra.LoraExperimentSpec.FromJson(name, body, read),
    };

    /// <summary>The kinds, e.g. <c>proxy-sweep</c>.</summary>
    public static IReadOnlyList<string> Names => Readers.Keys.Order(StringComparer.Ordinal).ToList();

    /// <summary>Reads an experiment of <paramref name="kind"/>.</summary>
    public static IExperiment Parse(string kind, string name, JsonObject body, Func<Func<object?>, string, object?> read) =>
        Readers.TryGetValue(kind, out var reader) ? reader(name, body, read)
            : throw new InvalidDataException($"kind '{kind}' is not supported; accepted: {string.Join(", ", Names)}.");
}
