using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Sweeps;

/// <summary>
/// Where a sweep's text comes from, written into its spec so a worker on another machine builds the same corpus:
/// the built-in synthetic grammar (size and seed), or a UTF-8 file by absolute path (which must be readable where
/// the workers run: a shared file system on a cluster).
/// </summary>
public sealed record SweepCorpus
{
    /// <summary><c>synthetic</c> or <c>file</c>.</summary>
    public string Source { get; init; } = "synthetic";

    /// <summary>Absolute path of the text file (<see cref="Source"/> <c>file</c>).</summary>
    public string? Path { get; init; }

    /// <summary>Bytes of synthetic text.</summary>
    public int Bytes { get; init; } = 1_000_000;

    /// <summary>Seed of the synthetic grammar.</summary>
    public int Seed { get; init; }

    /// <summary>Fraction of the text kept for validation (files; the synthetic corpus always uses 0.1).</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>
    /// The corpus a <c>--corpus</c> value names (<c>synthetic</c>, <c>shakespeare</c>, a path or a file name in the data
    /// folder; see <see cref="TextCorpus.Resolve"/>), with files resolved to absolute paths.
    /// </summary>
    public static SweepCorpus FromName(string? nameOrPath, string? dataDirectory = null)
    {
        string source = string.IsNullOrWhiteSpace(nameOrPath) ? "synthetic" : nameOrPath.Trim();
        if (source.Equals("synthetic", StringComparison.OrdinalIgnoreCase)) return new SweepCorpus();
        string folder = dataDirectory ?? Hosting.NotebookSession.DataDirectory;
        if (source.Equals("shakespeare", StringComparison.OrdinalIgnoreCase)) source = TextCorpus.TinyShakespeareFile;
        foreach (string candidate in new[] { source, System.IO.Path.Combine(folder, source) })
            if (File.Exists(candidate)) return new SweepCorpus { Source = "file", Path = System.IO.Path.GetFullPath(candidate) };
        throw new FileNotFoundException($"Corpus '{nameOrPath}' is neither 'synthetic', 'shakespeare' nor an existing file (also looked in the data folder '{folder}').", source);
    }

    /// <summary>Builds the corpus.</summary>
    public TextCorpus Load() => Source.ToLowerInvariant() switch
    {
        "synthetic" => TextCorpus.Synthetic(Bytes, Seed),
        "file" => TextCorpus.FromFile(Path ?? throw new InvalidDataException("A sweep spec's corpus has source 'file' but no 'path'."), ValidationFraction),
        _ => throw new InvalidDataException($"A sweep spec's corpus source '{Source}' is not known; use 'synthetic' or 'file'."),
    };
}

/// <summary>
/// A sweep as data: a self-contained JSON document with every run (its key and full configuration), the corpus
/// reference, the device and the LibTorch threads. A worker (<see cref="SweepWorker"/>, the ScalingInteractive.Worker
/// app) runs one shard of it into a folder run store, so the same spec runs in this process, as a Slurm job array or
/// as a Kubernetes indexed Job. Shard <c>i</c> of <c>n</c> holds the runs at positions <c>i, i+n, i+2n, ...</c>: each
/// shard gets a spread of sizes and learning rates, so shards take similar times.
/// </summary>
public sealed record SweepSpec
{
    /// <summary>Format version written into every spec.</summary>
    public const int CurrentFormat = 1;

    /// <summary>The format version.</summary>
    public int Format { get; init; } = CurrentFormat;

    /// <summary>The kind of runs: <c>proxy-sweep</c> (the only kind so far; see README "Sweeps on a cluster").</summary>
    public string Kind { get; init; } = ProxySweep.StoreKind;

    /// <summary>The sweep's name (also the name in the run store's identity).</summary>
    public string Name { get; init; } = "sweep";

    /// <summary>Device for every run: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>LibTorch CPU threads per worker (0 keeps LibTorch's choice).</summary>
    public int Threads { get; init; } = 1;

    /// <summary>The corpus every run trains on.</summary>
    public SweepCorpus Corpus { get; init; } = new();

    /// <summary>The runs, in order.</summary>
    public IReadOnlyList<ProxyRunSpec> Runs { get; init; } = [];

    /// <summary>A spec of proxy runs (from <see cref="ProxySweepSpec.Runs"/> or the <see cref="ProxyExperiments"/> builders).</summary>
    public static SweepSpec ForProxyRuns(string name, IEnumerable<ProxyRunSpec> runs, SweepCorpus? corpus = null, string device = "cpu", int threads = 1)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var list = runs.ToList();
        if (list.Count == 0) throw new ArgumentException("A sweep needs at least one run.", nameof(runs));
        var duplicate = list.GroupBy(r => r.Key).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Run key {duplicate.Key} appears {duplicate.Count()} times: two runs have the same configuration.", nameof(runs));
        return new SweepSpec { Name = name, Runs = list, Corpus = corpus ?? new SweepCorpus(), Device = device, Threads = threads }.Validate();
    }

    /// <summary>Checks the spec; returns it. Throws <see cref="InvalidDataException"/> naming what is wrong.</summary>
    public SweepSpec Validate()
    {
        if (Format != CurrentFormat) throw new InvalidDataException($"Sweep spec format {Format} is not supported; this ScalingInteractive reads format {CurrentFormat}.");
        if (Kind != ProxySweep.StoreKind) throw new InvalidDataException($"Sweep spec kind '{Kind}' is not supported; accepted: {ProxySweep.StoreKind}.");
        if (Runs.Count == 0) throw new InvalidDataException("The sweep spec has no runs.");
        if (Threads < 0) throw new InvalidDataException($"threads must be 0 or more; got {Threads}.");
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < Runs.Count; i++)
        {
            var run = Runs[i] ?? throw new InvalidDataException($"Run {i} of the sweep spec is empty.");
            try
            {
                run.Model.Validate();
                run.Training.Validate();
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"Run {i} of the sweep spec ({run.Experiment}, {run.Setting}) is not valid: {e.Message}");
            }
            if (seen.TryGetValue(run.Key, out int first))
                throw new InvalidDataException($"Runs {first} and {i} of the sweep spec have the same key {run.Key} (the same configuration twice); a sweep runs each configuration once.");
            seen[run.Key] = i;
        }
        return this;
    }

    /// <summary>Run keys in order.</summary>
    public IReadOnlyList<string> Keys => Runs.Select(r => r.Key).ToList();

    /// <summary>The runs of shard <paramref name="index"/> of <paramref name="count"/> (positions index, index+count, ...).</summary>
    public IReadOnlyList<ProxyRunSpec> Shard(int index, int count)
    {
        if (count <= 0) throw new ArgumentException($"The shard count must be positive; got {count}.", nameof(count));
        if (index < 0 || index >= count) throw new ArgumentException($"Shard index {index} is outside 0..{count - 1}.", nameof(index));
        return Runs.Where((_, i) => i % count == index).ToList();
    }

    /// <summary>The identity of the sweep's run store (the same fields <see cref="ProxySweep.OpenStore"/> writes).</summary>
    public static JsonObject StoreIdentity(TextCorpus corpus, string name) => new()
    {
        ["name"] = name,
        ["corpus"] = corpus.Name,
        ["trainTokens"] = corpus.TrainTokens,
        ["validationTokens"] = corpus.ValidationTokens,
    };

    /// <summary>Opens the folder run store of this spec (read-only view, or writing <paramref name="writeShard"/>).</summary>
    public RunStore OpenStore(string folder, TextCorpus? corpus = null, string? writeShard = null) =>
        RunStore.OpenFolder(folder, Kind, StoreIdentity(corpus ?? Corpus.Load(), Name), writeShard);

    /// <summary>The JSON text of the spec (each run carries its key, checked on load).</summary>
    public string ToJson()
    {
        var node = new JsonObject
        {
            ["format"] = Format,
            ["kind"] = Kind,
            ["name"] = Name,
            ["device"] = Device,
            ["threads"] = Threads,
            ["corpus"] = JsonSerializer.SerializeToNode(Corpus, SweepsJson.Default.SweepCorpus),
            ["runs"] = new JsonArray(Runs.Select(r => (JsonNode)JsonSerializer.SerializeToNode(r, ProxiesJson.Default.ProxyRunSpec)!).ToArray()),
        };
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
        var runs = new List<ProxyRunSpec>();
        if (root["runs"] is not JsonArray array) throw new InvalidDataException($"Sweep spec '{origin}' has no \"runs\" list.");
        var positions = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (node, i) in array.Select((n, i) => (n, i)))
        {
            if (node is not JsonObject run) throw new InvalidDataException($"Sweep spec '{origin}': run {i} is not a JSON object.");
            if (run["key"] is not JsonValue keyValue || keyValue.GetValueKind() != JsonValueKind.String)
                throw new InvalidDataException($"Sweep spec '{origin}': run {i} has no string \"key\". Every run carries the key of its configuration, " +
                                               "checked on load so that an edited run is caught; write specs with SweepSpec.Save or #!sweep-submit.");
            string stored = keyValue.GetValue<string>();
            var parsed = Read(() => run.Deserialize(ProxiesJson.Default.ProxyRunSpec), origin, $"run {i}")
                ?? throw new InvalidDataException($"Sweep spec '{origin}': run {i} is empty.");
            string key = Read(() => parsed.Key, origin, $"run {i}");
            if (stored != key)
                throw new InvalidDataException($"Sweep spec '{origin}': run {i} has key {stored} but its configuration gives {key}; the spec was edited or written by another version.");
            if (positions.TryGetValue(key, out int first))
                throw new InvalidDataException($"Sweep spec '{origin}': runs {first} and {i} have the same key {key} (the same configuration twice); a sweep runs each configuration once.");
            positions[key] = i;
            runs.Add(parsed);
        }
        return new SweepSpec
        {
            Format = Field(root, "format", 0, origin),
            Kind = Field(root, "kind", "", origin),
            Name = Field(root, "name", "sweep", origin),
            Device = Field(root, "device", "cpu", origin),
            Threads = Field(root, "threads", 1, origin),
            Corpus = Read(() => root["corpus"]?.Deserialize(SweepsJson.Default.SweepCorpus), origin, "corpus") ?? new SweepCorpus(),
            Runs = runs,
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
