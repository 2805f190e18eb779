using ScalingInteractive.Checkpoints;
using System.Text.Json;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;

/// <summary>
/// A model checkpoint in safetensors: one file, or shards as Hugging Face writes them (<c>save_pretrained</c> with
/// <c>max_shard_size</c>): <c>model.safetensors.index.json</c> = <c>{"metadata": {...}, "weight_map": {tensor: shard file}}</c>
/// next to <c>model-00001-of-0000N.safetensors</c> files. Every shard is opened and validated on open, and the index is
/// checked against the shards' headers before any tensor is read.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    /// <summary>File name of a sharded checkpoint's index as transformers writes it (SAFE_WEIGHTS_INDEX_NAME).</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>Largest index accepted (50 MB; real ones are kilobytes to a few megabytes).</summary>
    public const long MaxIndexBytes = 50_000_000;

    private readonly Dictionary<string, SafetensorsFile> _shardOf;

    private SafetensorsCheckpoint(string path, string? indexPath, IReadOnlyList<SafetensorsFile> shards, Dictionary<string, SafetensorsFile> shardOf, IReadOnlyList<string> names)
    {
        Path = path;
        IndexPath = indexPath;
        Shards = shards;
        _shardOf = shardOf;
        Names = names;
    }

    /// <summary>The path given to <see cref="Open"/>, made absolute.</summary>
    public string Path { get; }

    /// <summary>The index file of a sharded checkpoint; null for a single file.</summary>
    public string? IndexPath { get; }

    /// <summary>The opened files (one for a single file), in the order of first appearance in the index.</summary>
    public IReadOnlyList<SafetensorsFile> Shards { get; }

    /// <summary>Tensor names: index order for a sharded checkpoint, header order for a single file.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>True when the checkpoint has a tensor of this name.</summary>
    public bool Contains(string name) => _shardOf.ContainsKey(name);

    /// <summary>
    /// Opens a checkpoint from a <c>.safetensors</c> file, an index <c>.json</c> file, or a folder holding
    /// <see cref="IndexFileName"/> (else <c>model.safetensors</c>, else its only <c>.safetensors</c> file). Throws
    /// <see cref="FileNotFoundException"/> for a missing path or shard and <see cref="InvalidDataException"/> naming
    /// the file and tensor for a bad index: not a JSON object with a <c>weight_map</c> of strings, a shard name that is
    /// not a plain file name in the index's folder, a tensor listed but absent from its shard, a tensor present in
    /// two shards, or a shard tensor the index does not list.
    /// </summary>
    public static SafetensorsCheckpoint Open(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            string index = System.IO.Path.Combine(full, IndexFileName);
            if (File.Exists(index)) return OpenIndex(full, index);
            string single = System.IO.Path.Combine(full, "model.safetensors");
            if (File.Exists(single)) return OpenSingle(full, single);
            var files = Directory.GetFiles(full, "*.safetensors");
            var indexes = Directory.GetFiles(full, "*.safetensors.index.json");
            if (indexes.Length == 1) return OpenIndex(full, indexes[0]);
            if (files.Length == 1 && indexes.Length == 0) return OpenSingle(full, files[0]);
            throw new FileNotFoundException($"Folder '{path}' holds neither {IndexFileName} nor model.safetensors nor a single .safetensors file " +
                                            $"({files.Length} .safetensors, {indexes.Length} index files): pass the file or index to open.", full);
        }
        if (!File.Exists(full)) throw new FileNotFoundException($"Checkpoint '{path}' does not exist.", full);
        return full.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? OpenIndex(full, full) : OpenSingle(full, full);
    }

    private static SafetensorsCheckpoint OpenSingle(string path, string file)
    {
        var opened = SafetensorsFile.Open(file);
        return new SafetensorsCheckpoint(path, null, [opened], opened.Tensors.ToDictionary(t => t.Name, _ => opened, StringComparer.Ordinal), opened.Names.ToList());
    }

    private static SafetensorsCheckpoint OpenIndex(string path, string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);
        string folder = System.IO.Path.GetDirectoryName(indexPath)!;
        var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var order = new List<SafetensorsFile>();
        try
        {
            foreach (var (tensor, shard) in weightMap)
            {
                if (shards.ContainsKey(shard)) continue;
                string shardPath = System.IO.Path.Combine(folder, shard);
                if (!File.Exists(shardPath))
                    throw new FileNotFoundException($"'{indexPath}' maps tensor '{tensor}' to shard '{shard}', which does not exist in '{folder}'.", shardPath);
                var opened = SafetensorsFile.Open(shardPath);
                shards[shard] = opened;
                order.Add(opened);
            }
            // Every shard header against the index: duplicates across shards, tensors the index does not list.
            var foundIn = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (shard, file) in shards)
                foreach (var name in file.Names)
                {
                    if (foundIn.TryGetValue(name, out var first))
                        throw new InvalidDataException($"Tensor '{name}' is stored in two shards of '{indexPath}': '{first}' and '{shard}'.");
                    foundIn[name] = shard;
                }
            foreach (var (name, shard) in foundIn)
            {
                if (!weightMap.TryGetValue(name, out var listed))
                    throw new InvalidDataException($"Shard '{shard}' holds tensor '{name}', which '{indexPath}' does not list in its weight_map.");
                if (listed != shard)
                    throw new InvalidDataException($"'{indexPath}' maps tensor '{name}' to shard '{listed}' but it is stored in '{shard}'.");
            }
            var shardOf = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var (tensor, shard) in weightMap)
            {
                if (!shards[shard].Contains(tensor))
                    throw new InvalidDataException($"'{indexPath}' lists tensor '{tensor}' in shard '{shard}', but that shard has no such tensor.");
                shardOf[tensor] = shards[shard];
            }
            return new SafetensorsCheckpoint(path, indexPath, order, shardOf, weightMap.Keys.ToList());
        }
        catch
        {
            foreach (var f in order) f.Dispose();
            throw;
        }
    }

    /// <summary>Reads and validates the index: tensor name -> shard file name, in index order.</summary>
    private static OrderedDictionary<string, string> ReadWeightMap(string indexPath)
    {
        var length = new FileInfo(indexPath).Length;
        if (length > MaxIndexBytes)
            throw new InvalidDataException($"'{indexPath}' is {length} bytes; a safetensors index is a small JSON file (at most {MaxIndexBytes} bytes accepted).");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(indexPath), new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw new InvalidDataException($"'{indexPath}' is not valid JSON ({e.Message.Split(" Path:")[0]}).", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"'{indexPath}' must hold a JSON object with a 'weight_map'.");
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"'{indexPath}' has no 'weight_map' object mapping tensor names to shard files.");
            var result = new OrderedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException($"'{indexPath}': weight_map entry '{entry.Name}' must be a shard file name, not {entry.Value.ValueKind}.");
                string shard = entry.Value.GetString()!;
                // A plain file name next to the index: no folders, no way out of the checkpoint's folder.
                if (shard.Length == 0 || shard != System.IO.Path.GetFileName(shard) || shard is "." or ".." || shard.Contains('/') || shard.Contains('\\'))
                    throw new InvalidDataException($"'{indexPath}': tensor '{entry.Name}' maps to '{shard}', which is not a file name in the index's folder.");
                if (!result.TryAdd(entry.Name, shard))
                    throw new InvalidDataException($"'{indexPath}': weight_map lists tensor '{entry.Name}' twice.");
            }
            if (result.Count == 0) throw new InvalidDataException($"'{indexPath}': weight_map is empty.");
            return result;
        }
    }

    /// <summary>The shard holding a tensor; throws <see cref="KeyNotFoundException"/> naming the checkpoint when absent.</summary>
    public SafetensorsFile ShardOf(string name) =>
        _shardOf.TryGetValue(name, out var file) ? file
            : throw new KeyNotFoundException($"Checkpoint '{Path}' has no tensor '{name}'. It holds {Names.Count} tensors" +
                                             (Names.Count > 0 ? ", e.g. " + string.Join(", ", Names.Take(5)) : "") + ".");

    /// <summary>The header entry of a tensor.</summary>
    public SafetensorInfo Info(string name) => ShardOf(name).Info(name);

    /// <summary>A tensor (see <see cref="SafetensorsFile.ToTensor"/>: a view of the file where the dtype and device allow).</summary>
    public Tensor ToTensor(string name, Device? device = null, ScalarType? dtype = ScalarType.Float32, bool positionalRead = false) =>
        ShardOf(name).ToTensor(name, device, dtype, positionalRead);

    /// <summary>A tensor's values as floats.</summary>
    public float[] ReadFloats(string name) => ShardOf(name).ReadFloats(name);

    /// <summary>All (or the included) tensors as float32 tensors on <paramref name="device"/>, by name.</summary>
    public Dictionary<string, Tensor> ToTensors(Device? device = null, Func<string, bool>? include = null) =>
        Names.Where(n => include?.Invoke(n) ?? true).ToDictionary(n => n, n => ToTensor(n, device), StringComparer.Ordinal);

    /// <summary>Releases every shard (tensors already returned stay valid, see <see cref="SafetensorsFile.Dispose"/>).</summary>
    public void Dispose()
    {
        foreach (var shard in Shards) shard.Dispose();
    }
}
