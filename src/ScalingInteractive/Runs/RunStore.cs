using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace ScalingInteractive.Runs;

/// <summary>A line of a run store that could not be read (kept out of <see cref="RunStore.Records"/>, reported).</summary>
/// <param name="LineNumber">1-based line number in the file.</param>
/// <param name="Text">The line (cut to 200 characters).</param>
/// <param name="Reason">Why it was rejected.</param>
public sealed record BadRunLine(int LineNumber, string Text, string Reason)
{
    /// <summary>The file the line is in (set for stores read from a folder of shard files; null for a single-file store).</summary>
    public string? File { get; init; }
}

/// <summary>
/// An append-only JSON Lines file of finished runs, shared by every long experiment (proxy sweeps, intrinsic-
/// dimension sweeps, LoRA experiments). Line 1 is a header naming the store's kind and identity (the settings that
/// must match for runs to be comparable); each further line is one finished run with a unique <c>key</c>.
/// Each run is appended and flushed to disk as soon as it ends, so an interrupt loses at most the run in progress;
/// reopening the store skips finished keys. A corrupt or truncated line (a crash mid-write) is reported in
/// <see cref="BadLines"/> and the good lines are kept.
/// </summary>
public sealed class RunStore
{
    private const int SchemaVersion = 1;
    private readonly Dictionary<string, JsonObject> _records = new(StringComparer.Ordinal);
    private readonly List<string> _order = new();
    private readonly List<BadRunLine> _badLines = new();
    private readonly object _gate = new();

    private string? _writePath;
    private string? _currentFile;

    private RunStore(string path, string kind, JsonObject identity)
    {
        Path = path;
        Kind = kind;
        Identity = identity;
        _writePath = path;
    }

    /// <summary>The file appends go to: <see cref="Path"/> for a single-file store, this process's shard file for a
    /// folder store opened with a shard name, null for a read-only folder view.</summary>
    public string? WritePath => _writePath;

    /// <summary>True for a folder of shard files (<see cref="OpenFolder"/>), false for a single-file store (<see cref="Open"/>).</summary>
    public bool IsFolder { get; private init; }

    /// <summary>The files the store was read from (one for a single-file store; every shard file for a folder store).</summary>
    public IReadOnlyList<string> Files { get; private set; } = [];

    /// <summary>Records whose key was already read from an earlier line or shard (kept once; the first one wins across shards).</summary>
    public int DuplicateRecords { get; private set; }

    /// <summary>The file path.</summary>
    public string Path { get; }

    /// <summary>What kind of runs the store holds, e.g. <c>proxy-sweep</c>.</summary>
    public string Kind { get; }

    /// <summary>The settings every run in this store shares (for example the corpus and step count).</summary>
    public JsonObject Identity { get; }

    /// <summary>Finished runs in file order.</summary>
    public IReadOnlyList<JsonObject> Records { get { lock (_gate) return _order.Select(k => _records[k]).ToList(); } }

    /// <summary>Lines that could not be read.</summary>
    public IReadOnlyList<BadRunLine> BadLines => _badLines;

    /// <summary>Number of finished runs.</summary>
    public int Count { get { lock (_gate) return _order.Count; } }

    /// <summary>
    /// Opens (or creates) a store. An existing file must have the same <paramref name="kind"/> and
    /// <paramref name="identity"/>; otherwise a clear <see cref="InvalidDataException"/> says what differs.
    /// </summary>
    public static RunStore Open(string path, string kind, object? identity = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var identityNode = IdentityNode(identity);
        var store = new RunStore(System.IO.Path.GetFullPath(path), kind, identityNode);
        if (!File.Exists(store.Path) || new FileInfo(store.Path).Length == 0)
        {
            string? folder = System.IO.Path.GetDirectoryName(store.Path);
            if (!string.IsNullOrEmpty(folder)) Directory.CreateDirectory(folder);
            var header = new JsonObject { ["store"] = kind, ["schema"] = SchemaVersion, ["identity"] = identityNode.DeepClone() };
            File.WriteAllText(store.Path, header.ToJsonString() + "\n");
            store.Files = [store.Path];
            return store;
        }
        store.Load(store.Path, lastWins: true);
        store.Files = [store.Path];
        return store;
    }

    /// <summary>The file name pattern of shard files in a folder store.</summary>
    public const string ShardFilePattern = "shard-*.jsonl";

    /// <summary>
    /// Opens a run store that many processes write at once: a folder of shard files (<c>shard-0003.jsonl</c>, one per
    /// writing process, each with the usual header), read back as one store. Records are deduplicated by key (the first
    /// shard in name order wins); a corrupt or half-written line in one shard costs at most that run and is reported in
    /// <see cref="BadLines"/> with its file. With <paramref name="writeShard"/> (a file name such as
    /// <c>shard-0003.jsonl</c>) appends go to that file only, so no two processes ever write the same file; without it
    /// the store is a read-only view. Every shard must have the same <paramref name="kind"/> and <paramref name="identity"/>.
    /// </summary>
    public static RunStore OpenFolder(string folder, string kind, object? identity = null, string? writeShard = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var identityNode = IdentityNode(identity);
        string full = System.IO.Path.GetFullPath(folder);
        if (File.Exists(full)) throw new InvalidDataException($"Run store folder '{full}' is a file; a sharded store is a folder of shard-NNNN.jsonl files.");
        Directory.CreateDirectory(full);
        var store = new RunStore(full, kind, identityNode) { _writePath = null, IsFolder = true };
        if (writeShard is not null)
        {
            if (writeShard.Contains('/') || writeShard.Contains('\\') || !writeShard.StartsWith("shard-", StringComparison.Ordinal) || !writeShard.EndsWith(".jsonl", StringComparison.Ordinal))
                throw new ArgumentException($"A shard file name looks like shard-0003.jsonl; got '{writeShard}'.", nameof(writeShard));
            store._writePath = System.IO.Path.Combine(full, writeShard);
            if (!File.Exists(store._writePath) || new FileInfo(store._writePath).Length == 0)
            {
                // Written aside and renamed into place: a reader in another process never sees half a header.
                var header = new JsonObject { ["store"] = kind, ["schema"] = SchemaVersion, ["identity"] = identityNode.DeepClone() };
                string partial = $"{store._writePath}.{Environment.ProcessId}.partial";
                File.WriteAllText(partial, header.ToJsonString() + "\n");
                File.Move(partial, store._writePath, overwrite: true);
            }
        }
        var files = Directory.GetFiles(full, ShardFilePattern).Order(StringComparer.Ordinal).ToList();
        foreach (string file in files)
        {
            if (new FileInfo(file).Length == 0) continue; // a shard whose header is being written right now
            store.Load(file, lastWins: false);
        }
        store.Files = files;
        return store;
    }

    // A JsonObject as given; any other object by reflection (notebooks), with a clear message where reflection is off.
    private static JsonObject IdentityNode(object? identity)
    {
        if (identity is null) return new JsonObject();
        if (identity is JsonObject node) return node;
        EnsureReflection("a run store identity that is not a JsonObject");
        return JsonSerializer.SerializeToNode(identity, identity.GetType(), JsonOptions)!.AsObject();
    }

    /// <summary>
    /// Throws a clear <see cref="NotSupportedException"/> when the process turned reflection-based serialisation off (C#
    /// file-based apps and native AOT do) and <paramref name="what"/> needs it.
    /// </summary>
    internal static void EnsureReflection(string what)
    {
        if (!JsonSerializer.IsReflectionEnabledByDefault)
            throw new NotSupportedException($"{what} is serialised by reflection, which this app turns off (a C# file-based app or native AOT: " +
                                            "PublishAot=true). Pass a JsonObject, or the overload that takes a JsonTypeInfo<T> from your own JsonSerializerContext.");
    }

    private void Load(string file, bool lastWins)
    {
        _currentFile = file == Path ? null : file;
        int lineNumber = 0;
        bool headerSeen = false;
        foreach (string line in File.ReadLines(file))
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            JsonObject? node;
            try
            {
                node = JsonNode.Parse(line) as JsonObject;
            }
            catch (JsonException e)
            {
                Reject(lineNumber, line, "not valid JSON (" + e.Message.Split('.')[0] + "); a run interrupted while being written leaves such a line");
                continue;
            }
            if (!headerSeen)
            {
                headerSeen = true;
                CheckHeader(node);
                continue;
            }
            if (node?["key"] is not JsonValue keyValue || keyValue.GetValueKind() != JsonValueKind.String)
            {
                Reject(lineNumber, line, "no string \"key\" property");
                continue;
            }
            string key = keyValue.GetValue<string>();
            if (_records.ContainsKey(key))
            {
                DuplicateRecords++;
                if (!lastWins) continue;
            }
            else _order.Add(key);
            _records[key] = node;
        }
        if (!headerSeen) throw new InvalidDataException($"Run store '{file}' has no header line; it was not written by ScalingInteractive.");
    }

    private void CheckHeader(JsonObject? header)
    {
        string Path = _currentFile ?? this.Path; // the shard file in messages, for folder stores
        if (header?["store"]?.GetValue<string>() is not string kind || header["schema"] is null)
            throw new InvalidDataException($"Run store '{Path}': the first line is not a ScalingInteractive run-store header.");
        if (kind != Kind)
            throw new InvalidDataException($"Run store '{Path}' holds '{kind}' runs, not '{Kind}' runs: use another --store file.");
        var existing = header["identity"] as JsonObject ?? new JsonObject();
        var differences = Differences(existing, Identity).ToList();
        if (differences.Count > 0)
            throw new InvalidDataException($"Run store '{Path}' was written by another configuration ({string.Join("; ", differences)}). " +
                                           "Its runs would not be comparable: use another --store file, or the same settings.");
    }

    private static IEnumerable<string> Differences(JsonObject stored, JsonObject wanted)
    {
        foreach (var name in stored.Select(p => p.Key).Union(wanted.Select(p => p.Key)).Order(StringComparer.Ordinal))
        {
            string a = stored[name]?.ToJsonString() ?? "absent", b = wanted[name]?.ToJsonString() ?? "absent";
            if (a != b) yield return $"{name}: stored {a}, now {b}";
        }
    }

    private void Reject(int lineNumber, string line, string reason) =>
        _badLines.Add(new BadRunLine(lineNumber, line.Length > 200 ? line[..200] + "..." : line, reason) { File = _currentFile });

    /// <summary>True when a run with this key has finished.</summary>
    public bool Contains(string key) { lock (_gate) return _records.ContainsKey(key); }

    /// <summary>The record of a finished run, or null.</summary>
    public JsonObject? Find(string key) { lock (_gate) return _records.TryGetValue(key, out var r) ? r : null; }

    /// <summary>Reads every record as <typeparamref name="T"/> (System.Text.Json by reflection, camelCase names).</summary>
    public IReadOnlyList<T> Read<T>()
    {
        EnsureReflection($"RunStore.Read<{typeof(T).Name}>()");
        return Records.Select(r => r.Deserialize<T>(JsonOptions)!).ToList();
    }

    /// <summary>Reads every record as <typeparamref name="T"/> through <paramref name="typeInfo"/> (works without reflection).</summary>
    public IReadOnlyList<T> Read<T>(JsonTypeInfo<T> typeInfo) => Records.Select(r => r.Deserialize(typeInfo)!).ToList();

    /// <summary>Appends one finished run serialised through <paramref name="typeInfo"/> (works without reflection).</summary>
    public void Append<T>(T record, JsonTypeInfo<T> typeInfo) =>
        Append(JsonSerializer.SerializeToNode(record, typeInfo) as JsonObject ?? throw new ArgumentException("A run record must serialise to a JSON object.", nameof(record)));

    /// <summary>
    /// Appends one finished run (a <see cref="JsonObject"/>, or any object serialisable by System.Text.Json's reflection
    /// with a string <c>key</c> property) and flushes it to disk before returning.
    /// </summary>
    public void Append(object record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record is not JsonObject) EnsureReflection($"RunStore.Append({record.GetType().Name})");
        var node = record as JsonObject ?? JsonSerializer.SerializeToNode(record, record.GetType(), JsonOptions) as JsonObject
            ?? throw new ArgumentException("A run record must serialise to a JSON object.", nameof(record));
        if (node["key"] is not JsonValue key || key.GetValueKind() != JsonValueKind.String)
            throw new ArgumentException("A run record needs a string 'key' property that identifies the run.", nameof(record));
        string line = node.ToJsonString(JsonOptions);
        string path = _writePath ?? throw new InvalidOperationException($"Run store folder '{Path}' was opened read-only (no shard file to write); open it with a shard name to append.");
        lock (_gate)
        {
            using (var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read))
            {
                // A crash mid-write can leave a partial last line without a newline: start on a fresh line.
                if (stream.Length > 0 && LastByte(path) != (byte)'\n') stream.WriteByte((byte)'\n');
                byte[] bytes = Encoding.UTF8.GetBytes(line + "\n");
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            string k = key.GetValue<string>();
            if (!_records.ContainsKey(k)) _order.Add(k);
            _records[k] = node;
        }
    }

    private static byte LastByte(string path)
    {
        using var read = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (read.Length == 0) return (byte)'\n';
        read.Seek(-1, SeekOrigin.End);
        return (byte)read.ReadByte();
    }

    /// <summary>Serializer options used for records: camelCase, non-finite doubles as strings ("NaN", "Infinity").</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals |
                         System.Text.Json.Serialization.JsonNumberHandling.AllowReadingFromString,
        WriteIndented = false,
    };
}
