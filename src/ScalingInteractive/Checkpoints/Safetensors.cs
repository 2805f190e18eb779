using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.Checkpoints;

/// <summary>Element types of the safetensors format (the names in the header are the enum names, BOOL as <c>BOOL</c>).</summary>
public enum SafetensorDType
{
    /// <summary>IEEE 754 double.</summary>
    F64,
    /// <summary>IEEE 754 single.</summary>
    F32,
    /// <summary>IEEE 754 half.</summary>
    F16,
    /// <summary>bfloat16 (the upper 16 bits of a single).</summary>
    BF16,
    /// <summary>Signed 64-bit integer.</summary>
    I64,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>Unsigned 8-bit integer.</summary>
    U8,
    /// <summary>Boolean, one byte.</summary>
    BOOL,
}

/// <summary>One tensor entry of a safetensors header.</summary>
/// <param name="Name">Tensor name, e.g. <c>model.layers.0.self_attn.q_proj.weight</c>.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions (empty for a scalar).</param>
/// <param name="Begin">Start of the data, relative to the byte buffer after the header.</param>
/// <param name="End">End (exclusive) of the data, relative to the byte buffer.</param>
public sealed record SafetensorInfo(string Name, SafetensorDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (product of the shape; 1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>Size of the data in bytes.</summary>
    public long ByteLength => End - Begin;
}

/// <summary>
/// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping tensor
/// names to <c>{"dtype","shape","data_offsets":[begin,end]}</c> plus an optional <c>__metadata__</c> string map, then the
/// byte buffer. This class holds the format rules shared by the reader and the writer.
/// </summary>
public static class Safetensors
{
    /// <summary>Largest header accepted (100 MB): real headers are kilobytes to a few megabytes; a larger value is a corrupt or hostile file.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Bytes per element of a dtype.</summary>
    public static int ElementSize(SafetensorDType dtype) => dtype switch
    {
        SafetensorDType.F64 or SafetensorDType.I64 => 8,
        SafetensorDType.F32 or SafetensorDType.I32 => 4,
        SafetensorDType.F16 or SafetensorDType.BF16 or SafetensorDType.I16 => 2,
        _ => 1,
    };

    /// <summary>The TorchSharp scalar type of a dtype.</summary>
    public static ScalarType ToScalarType(SafetensorDType dtype) => dtype switch
    {
        SafetensorDType.F64 => ScalarType.Float64,
        SafetensorDType.F32 => ScalarType.Float32,
        SafetensorDType.F16 => ScalarType.Float16,
        SafetensorDType.BF16 => ScalarType.BFloat16,
        SafetensorDType.I64 => ScalarType.Int64,
        SafetensorDType.I32 => ScalarType.Int32,
        SafetensorDType.I16 => ScalarType.Int16,
        SafetensorDType.I8 => ScalarType.Int8,
        SafetensorDType.U8 => ScalarType.Byte,
        _ => ScalarType.Bool,
    };

    /// <summary>The dtype of a TorchSharp scalar type; throws <see cref="ArgumentException"/> for types safetensors cannot hold here.</summary>
    public static SafetensorDType FromScalarType(ScalarType type) => type switch
    {
        ScalarType.Float64 => SafetensorDType.F64,
        ScalarType.Float32 => SafetensorDType.F32,
        ScalarType.Float16 => SafetensorDType.F16,
        ScalarType.BFloat16 => SafetensorDType.BF16,
        ScalarType.Int64 => SafetensorDType.I64,
        ScalarType.Int32 => SafetensorDType.I32,
        ScalarType.Int16 => SafetensorDType.I16,
        ScalarType.Int8 => SafetensorDType.I8,
        ScalarType.Byte => SafetensorDType.U8,
        ScalarType.Bool => SafetensorDType.BOOL,
        _ => throw new ArgumentException($"Tensor type {type} cannot be written to safetensors here; accepted: float64/32/16, bfloat16, int64/32/16/8, uint8, bool.", nameof(type)),
    };

    /// <summary>Accepted dtype names, for messages.</summary>
    public static string AcceptedDTypes => string.Join(", ", Enum.GetNames<SafetensorDType>());

    /// <summary>
    /// Parses and validates a header. Every rule is checked before any tensor data is touched or allocated: known dtypes,
    /// non-negative shapes whose byte size matches the offsets, offsets inside the <paramref name="dataLength"/>-byte
    /// buffer, no overlaps, no holes (the format requires the buffer to be fully indexed), no duplicate names.
    /// Throws <see cref="InvalidDataException"/> naming the tensor and the problem.
    /// </summary>
    public static (IReadOnlyList<SafetensorInfo> Tensors, IReadOnlyDictionary<string, string> Metadata) ParseHeader(
        ReadOnlySpan<byte> json, long dataLength, string source)
    {
        if (!System.Text.Unicode.Utf8.IsValid(json))
            throw new InvalidDataException($"{source}: the header is not valid UTF-8 text.");
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 8 });
            document = JsonDocument.ParseValue(ref reader);
            if (reader.BytesConsumed < json.Length && json[(int)reader.BytesConsumed..].IndexOfAnyExcept(" \t\r\n"u8) >= 0)
                throw new InvalidDataException($"{source}: the JSON header has extra bytes after its closing brace.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: the header is not valid JSON ({e.Message.Split(" Path:")[0]}).", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{source}: the header must be a JSON object mapping tensor names to entries, not {root.ValueKind}.");
            var tensors = new List<SafetensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                if (!names.Add(property.Name))
                    throw new InvalidDataException($"{source}: the header names '{property.Name}' twice.");
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw new InvalidDataException($"{source}: __metadata__ must be an object of strings.");
                    foreach (var m in property.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new InvalidDataException($"{source}: __metadata__ value '{m.Name}' must be a string, not {m.Value.ValueKind}.");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                tensors.Add(ParseEntry(property.Name, property.Value, dataLength, source));
            }
            // Offsets: sorted by begin, each must start where the previous ended (no overlap, no hole).
            long expected = 0;
            SafetensorInfo? previous = null;
            foreach (var t in tensors.OrderBy(t => t.Begin).ThenBy(t => t.End))
            {
                if (t.Begin < expected)
                    throw new InvalidDataException($"{source}: tensor '{t.Name}' (bytes {t.Begin}..{t.End}) overlaps tensor '{previous!.Name}' (bytes {previous.Begin}..{previous.End}).");
                if (t.Begin > expected)
                    throw new InvalidDataException($"{source}: tensor '{t.Name}' starts at byte {t.Begin} but the previous data ends at {expected}: the buffer has a hole, which the format forbids.");
                expected = t.End;
                previous = t;
            }
            if (expected != dataLength)
                throw new InvalidDataException($"{source}: the tensors cover {expected} bytes but the data buffer after the header has {dataLength} bytes (truncated or padded file).");
            return (tensors, metadata);
        }
    }

    private static SafetensorInfo ParseEntry(string name, JsonElement entry, long dataLength, string source)
    {
        string where = $"{source}: tensor '{name}'";
        if (entry.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{where}: the entry must be an object with dtype, shape and data_offsets.");
        if (!entry.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{where}: missing string 'dtype'.");
        string dtypeName = dtypeElement.GetString()!;
        if (!Enum.GetNames<SafetensorDType>().Contains(dtypeName) || !Enum.TryParse<SafetensorDType>(dtypeName, ignoreCase: false, out var dtype))
            throw new InvalidDataException($"{where}: unsupported dtype '{dtypeName}'; accepted: {AcceptedDTypes}.");
        if (!entry.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{where}: missing array 'shape'.");
        if (shapeElement.GetArrayLength() > 32)
            throw new InvalidDataException($"{where}: shape has {shapeElement.GetArrayLength()} dimensions; at most 32 are accepted.");
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new InvalidDataException($"{where}: shape entry {i} ({d.GetRawText()}) is not a non-negative integer.");
            shape[i++] = dim;
        }
        if (!entry.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw new InvalidDataException($"{where}: 'data_offsets' must be an array [begin, end].");
        var begin = offsets[0];
        var end = offsets[1];
        if (begin.ValueKind != JsonValueKind.Number || !begin.TryGetInt64(out long b) || b < 0 ||
            end.ValueKind != JsonValueKind.Number || !end.TryGetInt64(out long e) || e < 0)
            throw new InvalidDataException($"{where}: data_offsets {offsets.GetRawText()} must be two non-negative integers.");
        if (e < b)
            throw new InvalidDataException($"{where}: data_offsets [{b}, {e}] end before they begin.");
        if (e > dataLength)
            throw new InvalidDataException($"{where}: data_offsets [{b}, {e}] lie outside the {dataLength}-byte data buffer (out of range or truncated file).");
        long bytes;
        try
        {
            bytes = checked(shape.Aggregate(1L, (a, d) => checked(a * d)) * ElementSize(dtype));
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"{where}: shape [{string.Join(", ", shape)}] is too large to address.");
        }
        if (bytes != e - b)
            throw new InvalidDataException($"{where}: shape [{string.Join(", ", shape)}] of {dtype} needs {bytes} bytes but data_offsets [{b}, {e}] hold {e - b}.");
        return new SafetensorInfo(name, dtype, shape, b, e);
    }

    /// <summary>Converts raw little-endian elements of any dtype to floats (F64 and I64 are rounded to the nearest float).</summary>
    public static void ConvertToFloat(ReadOnlySpan<byte> source, SafetensorDType dtype, Span<float> destination)
    {
        int size = ElementSize(dtype);
        if (source.Length != destination.Length * (long)size)
            throw new ArgumentException($"{source.Length} bytes of {dtype} do not fill {destination.Length} floats.", nameof(destination));
        switch (dtype)
        {
            case SafetensorDType.F32:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(4 * i)..]);
                break;
            case SafetensorDType.F64:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(source[(8 * i)..]);
                break;
            case SafetensorDType.F16:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source[(2 * i)..]);
                break;
            case SafetensorDType.BF16:
                // bfloat16 is the upper half of a float32.
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source[(2 * i)..]) << 16);
                break;
            case SafetensorDType.I64:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt64LittleEndian(source[(8 * i)..]);
                break;
            case SafetensorDType.I32:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt32LittleEndian(source[(4 * i)..]);
                break;
            case SafetensorDType.I16:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt16LittleEndian(source[(2 * i)..]);
                break;
            case SafetensorDType.I8:
                for (int i = 0; i < destination.Length; i++) destination[i] = (sbyte)source[i];
                break;
            default:
                for (int i = 0; i < destination.Length; i++) destination[i] = source[i];
                break;
        }
    }
}

/// <summary>
/// A safetensors file opened for reading: the header is validated completely on open (see
/// <see cref="Safetensors.ParseHeader"/>), the data is memory-mapped and read in place, never copied whole.
/// </summary>
/// <remarks>
/// <see cref="ToTensor"/> hands out CPU tensors that view the file's pages (as Python's <c>safe_open</c> does) when
/// the stored dtype is the one asked for and the tensor's offset is a multiple of its element size: opening is lazy,
/// nothing is read until the tensor is touched, and the page cache is read without a copy. The view's memory is a
/// private copy-on-write mapping owned by LibTorch (<c>torch.from_file</c>), so it stays valid after this object is
/// disposed and after the file is deleted, and writing into the tensor never changes the file. A dtype conversion or
/// another device reads from the view in one pass; an unaligned offset, or a mapping the OS refuses, copies first.
/// </remarks>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    // The opened file (not its path): its length tells whether the mapped file shrank, even after a rename or delete.
    private readonly FileStream _stream;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafetensorInfo> _byName;
    // One LibTorch mapping of the whole file per element type in the header, made on open next to the header read
    // (torch.from_file maps a file as a 1-D tensor of one dtype; its storage, shared by every view, unmaps when the
    // last view is freed). Mapped at open, they read the file that was validated even if the path is later replaced.
    private readonly Dictionary<ScalarType, Tensor> _torchMaps = new();
    private readonly object _gate = new();
    private bool _disposed;

    private SafetensorsFile(string path, IReadOnlyList<SafetensorInfo> tensors, IReadOnlyDictionary<string, string> metadata,
        long dataStart, long fileLength)
    {
        Path = path;
        Tensors = tensors;
        Metadata = metadata;
        _dataStart = dataStart;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        FileLength = fileLength;
        // Others may write, rename or delete it (as before); sharing writes also keeps its length uncached.
        _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        try
        {
            if (fileLength > dataStart)
            {
                _map = MemoryMappedFile.CreateFromFile(_stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
                _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                byte* p = null;
                _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
                _base = p + _view.PointerOffset;
            }
        }
        catch
        {
            _view?.Dispose();
            _map?.Dispose();
            _stream.Dispose();
            throw;
        }
        foreach (var type in tensors.Where(t => t.ByteLength > 0 && (dataStart + t.Begin) % Safetensors.ElementSize(t.DType) == 0)
                                    .Select(t => t.DType).Distinct())
        {
            try
            {
                // shared: false maps MAP_PRIVATE: pages come from the page cache, writes stay private to the process.
                var map = from_file(path, shared: false, size: fileLength / Safetensors.ElementSize(type), dtype: Safetensors.ToScalarType(type));
                map.DetachFromDisposeScope(); // owned by this file, not by a caller's dispose scope
                _torchMaps[Safetensors.ToScalarType(type)] = map;
            }
            catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or ArgumentException)
            {
                break; // e.g. address-space or overcommit limits: ToTensor copies instead
            }
        }
    }

    /// <summary>The file path.</summary>
    public string Path { get; }

    /// <summary>Size of the file in bytes.</summary>
    public long FileLength { get; }

    /// <summary>Tensor entries in header order.</summary>
    public IReadOnlyList<SafetensorInfo> Tensors { get; }

    /// <summary>The <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensor names in header order.</summary>
    public IEnumerable<string> Names => Tensors.Select(t => t.Name);

    /// <summary>True when the file has a tensor of this name.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>
    /// Opens and validates a file. Throws <see cref="FileNotFoundException"/> when it does not exist and
    /// <see cref="InvalidDataException"/> (naming the problem) when it is not a valid safetensors file.
    /// </summary>
    public static SafetensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"Safetensors file '{path}' does not exist.", full);
        long length;
        byte[] header;
        using (var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            length = stream.Length;
            if (length < 8)
                throw new InvalidDataException($"'{path}' is {length} bytes long: too short for a safetensors file (8-byte header length, then a JSON header).");
            Span<byte> prefix = stackalloc byte[8];
            stream.ReadExactly(prefix);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength > (ulong)(length - 8))
                throw new InvalidDataException($"'{path}': the header length field says {headerLength} bytes but only {length - 8} follow it (truncated or not a safetensors file).");
            if (headerLength > Safetensors.MaxHeaderBytes)
                throw new InvalidDataException($"'{path}': the header length field says {headerLength} bytes; at most {Safetensors.MaxHeaderBytes} are accepted.");
            if (headerLength < 2)
                throw new InvalidDataException($"'{path}': the header length field says {headerLength} bytes; a JSON object needs at least 2.");
            header = new byte[headerLength];
            stream.ReadExactly(header);
        }
        long dataStart = 8 + header.Length;
        var (tensors, metadata) = Safetensors.ParseHeader(header, length - dataStart, $"'{path}'");
        return new SafetensorsFile(full, tensors, metadata, dataStart, length);
    }

    /// <summary>The entry of a tensor; throws <see cref="KeyNotFoundException"/> naming what the file holds when absent.</summary>
    public SafetensorInfo Info(string name) =>
        _byName.TryGetValue(name, out var info) ? info
            : throw new KeyNotFoundException($"'{Path}' has no tensor '{name}'. It holds {Tensors.Count} tensors" +
                                             (Tensors.Count > 0 ? ", e.g. " + string.Join(", ", Tensors.Take(5).Select(t => t.Name)) : "") + ".");

    /// <summary>The raw bytes of a tensor, in place in the mapping (valid until the file is disposed; tensors under 2 GiB).</summary>
    public ReadOnlySpan<byte> Bytes(string name)
    {
        var info = Info(name);
        if (info.ByteLength > int.MaxValue)
            throw new NotSupportedException($"Tensor '{name}' has {info.ByteLength} bytes; spans hold at most 2 GiB: use {nameof(ToTensor)} instead.");
        return new ReadOnlySpan<byte>(Pointer(info), (int)info.ByteLength);
    }

    /// <summary>A tensor's values as floats (converted from its dtype).</summary>
    public float[] ReadFloats(string name)
    {
        var info = Info(name);
        if (info.ElementCount > Array.MaxLength)
            throw new NotSupportedException($"Tensor '{name}' has {info.ElementCount} elements, more than an array holds: use {nameof(ToTensor)}.");
        var values = new float[info.ElementCount];
        Safetensors.ConvertToFloat(Bytes(name), info.DType, values);
        return values;
    }

    /// <summary>
    /// A TorchSharp tensor with the file's values, converted to <paramref name="dtype"/> (default float32; null keeps
    /// the stored type) on <paramref name="device"/> (default CPU).
    /// </summary>
    /// <remarks>
    /// When the stored dtype is <paramref name="dtype"/> (or <paramref name="dtype"/> is null), the device is the CPU and
    /// the data offset is aligned to the element size (true of files written by the reference writer and by
    /// <see cref="SafetensorsWriter"/>), the result is a view of the file's pages: nothing is read until it is touched,
    /// it stays valid after <see cref="Dispose"/>, and in-place changes stay private (copy-on-write; the file is never
    /// written). A conversion or another device reads from that view into the new tensor in one pass; an unaligned
    /// offset copies from the mapping first.
    /// With <paramref name="positionalRead"/> the bytes are always copied, with positional file reads (pread) straight
    /// into a fresh tensor instead of from the mapping (the bench compares the paths).
    /// Throws <see cref="ObjectDisposedException"/> after <see cref="Dispose"/>.
    /// </remarks>
    public Tensor ToTensor(string name, Device? device = null, ScalarType? dtype = ScalarType.Float32, bool positionalRead = false)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var info = Info(name);
        var stored = Safetensors.ToScalarType(info.DType);
        bool onCpu = device is null || device.type == DeviceType.CPU;
        // A conversion or a device copy reads straight from the view: one pass over the data instead of copy + convert.
        var raw = positionalRead ? null : TryView(info);
        if (raw is null)
        {
            raw = empty(info.Shape, stored, CPU);
            if (positionalRead) ReadInto(raw, _dataStart + info.Begin, info.ByteLength);
            else CopyInto(raw, Pointer(info), info.ByteLength);
        }
        var converted = dtype is { } t && t != raw.dtype ? raw.to_type(t) : raw;
        if (!ReferenceEquals(converted, raw)) raw.Dispose();
        if (onCpu) return converted;
        var moved = converted.to(device!);
        converted.Dispose();
        return moved;
    }

    /// <summary>
    /// True when <see cref="ToTensor"/> returns a view of the file's pages for this tensor in its stored dtype on the
    /// CPU (false when the offset is unaligned, the tensor is empty, or the OS refused the mapping).
    /// </summary>
    public bool CanView(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var info = Info(name);
        if (info.ByteLength == 0 || (_dataStart + info.Begin) % Safetensors.ElementSize(info.DType) != 0) return false;
        return MapFor(Safetensors.ToScalarType(info.DType)) is not null;
    }

    /// <summary>A view of the tensor's bytes in LibTorch's mapping of the file, or null when that is not possible.</summary>
    private Tensor? TryView(SafetensorInfo info)
    {
        int size = Safetensors.ElementSize(info.DType);
        long byteOffset = _dataStart + info.Begin;
        if (info.ByteLength == 0 || byteOffset % size != 0) return null;
        lock (_gate) // Dispose may not release the map between the lookup and the narrow
        {
            var map = MapFor(Safetensors.ToScalarType(info.DType));
            if (map is null) return null;
            using var flat = map.narrow(0, byteOffset / size, info.ElementCount);
            return flat.view(info.Shape); // the view shares the mapping's storage and keeps it alive
        }
    }

    private Tensor? MapFor(ScalarType type)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ThrowIfShrunk();
            return _torchMaps.GetValueOrDefault(type);
        }
    }

    /// <summary>All tensors as float32 tensors on <paramref name="device"/>, by name.</summary>
    public Dictionary<string, Tensor> ToTensors(Device? device = null, Func<string, bool>? include = null) =>
        Tensors.Where(t => include?.Invoke(t.Name) ?? true).ToDictionary(t => t.Name, t => ToTensor(t.Name, device), StringComparer.Ordinal);

    /// <summary>Copies bytes into a contiguous CPU tensor in chunks of at most 1 GiB (TorchSharp exposes tensor memory as spans).</summary>
    private static void CopyInto(Tensor target, byte* source, long byteLength)
    {
        if (byteLength == 0) return;
        int elementSize = (int)target.ElementSize;
        long chunkElements = (1L << 30) / elementSize;
        using var flat = target.view(-1);
        for (long start = 0; start < flat.shape[0]; start += chunkElements)
        {
            long count = Math.Min(chunkElements, flat.shape[0] - start);
            using var part = flat.narrow(0, start, count);
            var destination = part.bytes;
            new ReadOnlySpan<byte>(source + start * elementSize, (int)(count * elementSize)).CopyTo(destination);
        }
    }

    private void ReadInto(Tensor target, long fileOffset, long byteLength)
    {
        if (byteLength == 0) return;
        ObjectDisposedException.ThrowIf(_disposed, this);
        int elementSize = (int)target.ElementSize;
        long chunkElements = (1L << 30) / elementSize;
        var handle = _stream.SafeFileHandle; // the opened file, not whatever is at the path now
        using var flat = target.view(-1);
        for (long start = 0; start < flat.shape[0]; start += chunkElements)
        {
            long count = Math.Min(chunkElements, flat.shape[0] - start);
            using var part = flat.narrow(0, start, count);
            var destination = part.bytes;
            int read = 0;
            while (read < destination.Length)
            {
                int n = RandomAccess.Read(handle, destination[read..], fileOffset + start * elementSize + read);
                if (n == 0) throw new InvalidDataException($"'{Path}' ended early (was it truncated after opening?).");
                read += n;
            }
        }
    }

    /// <summary>
    /// Touching a mapping past the end of a file that shrank since Open faults (SIGBUS, a crash): refuse it clearly.
    /// The length is that of the opened file, so a file deleted or replaced at its path after Open reads on.
    /// </summary>
    private void ThrowIfShrunk()
    {
        long now = RandomAccess.GetLength(_stream.SafeFileHandle);
        if (now < FileLength)
            throw new InvalidDataException($"'{Path}' is now {now} bytes but was {FileLength} when opened: it was truncated or rewritten in place; open it again.");
    }

    private byte* Pointer(SafetensorInfo info)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ThrowIfShrunk();
        return info.ByteLength == 0 ? null : _base + _dataStart + info.Begin;
    }

    /// <summary>
    /// Releases the file. Tensors from <see cref="ToTensor"/> stay valid (views own their mapping); spans from
    /// <see cref="Bytes"/> must not be used afterwards; ToTensor, CanView, Bytes and ReadFloats then throw
    /// <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            // Views handed out keep their own reference to the mapping; this drops only the file's.
            foreach (var map in _torchMaps.Values) map.Dispose();
            _torchMaps.Clear();
        }
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
        _stream.Dispose();
    }
}

/// <summary>A tensor to write: name, dtype, shape and its raw little-endian bytes.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions.</param>
/// <param name="Data">Raw bytes (length = elements x element size).</param>
public sealed record SafetensorEntry(string Name, SafetensorDType DType, long[] Shape, ReadOnlyMemory<byte> Data);

/// <summary>Writes safetensors files (header padded with spaces to a multiple of 8 bytes, as the reference writer does).</summary>
public static class SafetensorsWriter
{
    /// <summary>Writes raw entries.</summary>
    public static void Write(string path, IEnumerable<SafetensorEntry> entries, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = entries.ToList();
        var header = Header(list.Select(e => (e.Name, e.DType, e.Shape)).ToList(), metadata);
        for (int i = 0; i < list.Count; i++)
        {
            long needed = list[i].Shape.Aggregate(1L, (a, d) => a * d) * Safetensors.ElementSize(list[i].DType);
            if (needed != list[i].Data.Length)
                throw new ArgumentException($"Entry '{list[i].Name}': shape [{string.Join(", ", list[i].Shape)}] of {list[i].DType} needs {needed} bytes but {list[i].Data.Length} were given.", nameof(entries));
        }
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        stream.Write(header);
        foreach (var e in list) stream.Write(e.Data.Span);
    }

    /// <summary>Writes TorchSharp tensors (any device; each is copied to the CPU in its own dtype and streamed out).</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = Header(list.Select(kv => (kv.Key, Safetensors.FromScalarType(kv.Value.dtype), kv.Value.shape)).ToList(), metadata);
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        stream.Write(header);
        foreach (var (_, tensor) in list)
        {
            using var scope = NewDisposeScope();
            var flat = tensor.detach().cpu().contiguous().view(-1);
            long chunkElements = (1L << 30) / flat.ElementSize;
            for (long start = 0; start < flat.shape[0]; start += chunkElements)
                stream.Write(flat.narrow(0, start, Math.Min(chunkElements, flat.shape[0] - start)).bytes);
        }
    }

    private static byte[] Header(List<(string Name, SafetensorDType DType, long[] Shape)> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            var seen = new HashSet<string>(StringComparer.Ordinal);
            long offset = 0;
            foreach (var (name, dtype, shape) in entries)
            {
                if (name == "__metadata__" || !seen.Add(name))
                    throw new ArgumentException($"Tensor name '{name}' is reserved or repeated; names must be unique and not __metadata__.", nameof(entries));
                if (shape.Any(d => d < 0)) throw new ArgumentException($"Tensor '{name}' has a negative dimension.", nameof(entries));
                long bytes = shape.Aggregate(1L, (a, d) => a * d) * Safetensors.ElementSize(dtype);
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype.ToString());
                json.WriteStartArray("shape");
                foreach (long d in shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        int jsonLength = (int)buffer.Length;
        int padded = (jsonLength + 7) / 8 * 8;
        var result = new byte[8 + padded];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)padded);
        buffer.GetBuffer().AsSpan(0, jsonLength).CopyTo(result.AsSpan(8));
        result.AsSpan(8 + jsonLength).Fill((byte)' ');
        return result;
    }
}
