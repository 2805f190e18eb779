using ScalingInteractive.Checkpoints;
using System.Buffers.Binary;
using System.Text;
using ScalingInteractive.LoraSpectra;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.LoraSpectra;

public sealed class SafetensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    /// <summary>A file laid out by hand: 8-byte little-endian length, JSON, raw little-endian data.</summary>
    private static byte[] HandLaid(string json, byte[] data, ulong? lengthField = null)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var file = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, lengthField ?? (ulong)header.Length);
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    private static byte[] Floats(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }

    private string Write(string name, byte[] bytes)
    {
        string p = PathOf(name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    [Fact]
    public void Reads_a_file_laid_out_by_hand_per_the_format()
    {
        // F32 [2,2] = 1,2,3,4 at bytes 0..16; BF16 [2] = 1.5, -2 at 16..20 (bf16 = upper half of the float bits);
        // F16 [1] = 0.5 (0x3800) at 20..22; metadata.
        var data = new List<byte>(Floats(1, 2, 3, 4));
        foreach (float f in new[] { 1.5f, -2f })
        {
            var bits = (ushort)(BitConverter.SingleToInt32Bits(f) >>> 16);
            data.Add((byte)bits);
            data.Add((byte)(bits >> 8));
        }
        data.AddRange([0x00, 0x38]);
        string json = "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}," +
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[16,20]},\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[20,22]}}  ";
        using var file = SafetensorsFile.Open(Write("hand.safetensors", HandLaid(json, data.ToArray())));
        Assert.Equal(["w", "b", "h"], file.Names);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal([1f, 2f, 3f, 4f], file.ReadFloats("w"));
        Assert.Equal([1.5f, -2f], file.ReadFloats("b"));
        Assert.Equal([0.5f], file.ReadFloats("h"));
        using var t = file.ToTensor("w");
        Assert.Equal([2L, 2L], t.shape);
        Assert.Equal(3f, t[1, 0].item<float>());
        using var b = file.ToTensor("b");
        Assert.Equal(-2f, b[1].item<float>());
    }

    [Fact]
    public void Round_trips_tensors_of_every_common_dtype_with_metadata()
    {
        manual_seed(1);
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = randn(3, 5),
            ["f64"] = randn(4, dtype: ScalarType.Float64),
            ["f16"] = randn(2, 3).to_type(ScalarType.Float16),
            ["bf16"] = randn(7).to_type(ScalarType.BFloat16),
            ["i64"] = arange(6, dtype: ScalarType.Int64).reshape(2, 3),
            ["scalar"] = tensor(42f),
            ["empty"] = zeros(0, 4),
        };
        string p = PathOf("rt.safetensors");
        SafetensorsWriter.Write(p, tensors, new Dictionary<string, string> { ["note"] = "round trip" });
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(p)) % 8); // header padded to 8 bytes
        using var file = SafetensorsFile.Open(p);
        Assert.Equal("round trip", file.Metadata["note"]);
        foreach (var (name, expected) in tensors)
        {
            using var stored = file.ToTensor(name, dtype: null);
            Assert.Equal(expected.dtype, stored.dtype);
            Assert.Equal(expected.shape, stored.shape);
            Assert.True(expected.eq(stored).all().item<bool>(), name);
            using var viaPread = file.ToTensor(name, dtype: null, positionalRead: true);
            Assert.True(expected.eq(viaPread).all().item<bool>(), name + " (positional read)");
            var floats = file.ReadFloats(name);
            Assert.Equal(expected.to_type(ScalarType.Float32).reshape(-1).data<float>().ToArray(), floats);
        }
        Assert.Equal(SafetensorDType.BF16, file.Info("bf16").DType);
        Assert.Equal([2L, 3L], file.Info("i64").Shape);
    }

    public static TheoryData<string, string, byte[], string> BadFiles() => new()
    {
        { "invalid json", "{\"w\":{\"dtype\":\"F32\",", Floats(1), "not valid JSON" },
        { "not an object", "[1,2]", [], "must be a JSON object" },
        { "unknown dtype", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", [0], "unsupported dtype 'F8_E4M3'" },
        { "numeric dtype", "{\"w\":{\"dtype\":\"1\",\"shape\":[1],\"data_offsets\":[0,4]}}", Floats(1), "unsupported dtype" },
        { "shape offset mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", Floats(1, 2), "needs 12 bytes but data_offsets [0, 8] hold 8" },
        { "overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", Floats(1, 2, 3), "overlaps" },
        { "out of range", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", Floats(1, 2), "outside the 8-byte data buffer" },
        { "hole", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", Floats(1, 2), "hole" },
        { "trailing data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", Floats(1, 2), "cover 4 bytes but the data buffer" },
        { "negative dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", Floats(1), "not a non-negative integer" },
        { "huge shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,4],\"data_offsets\":[0,4]}}", Floats(1), "too large" },
        { "end before begin", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", Floats(1), "end before they begin" },
        { "duplicate name", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", Floats(1), "twice" },
        { "missing offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", Floats(1), "data_offsets" },
        { "bad metadata", "{\"__metadata__\":{\"a\":1}}", [], "must be a string" },
        { "trailing garbage", "{}x", [], "extra bytes after its closing brace" },
        { "entry not an object", "{\"\u00e9\":1}", [], "must be an object" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void Rejects_bad_headers_with_a_message_naming_the_problem(string label, string json, byte[] data, string expected)
    {
        string p = Write(label.Replace(' ', '-') + ".safetensors", HandLaid(json, data));
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(p));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Rejects_bad_lengths_and_truncation_before_allocating()
    {
        var good = HandLaid("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", Floats(1, 2));
        Assert.Contains("too short", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(Write("short", good[..5]))).Message);
        Assert.Contains("only", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(Write("len", HandLaid("{}", [], lengthField: 1UL << 62)))).Message);
        Assert.Contains("outside", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(Write("trunc", good[..^3]))).Message);
        // Absurd but in-file header length: a sparse 150 MB file whose length field says 120 MB.
        string sparse = PathOf("sparse");
        using (var s = new FileStream(sparse, FileMode.Create))
        {
            var prefix = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, 120_000_000);
            s.Write(prefix);
            s.SetLength(150_000_000);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Contains("at most 100000000", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(sparse)).Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
        Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(PathOf("missing.safetensors")));
        using var ok = SafetensorsFile.Open(Write("ok", good));
        Assert.Contains("has no tensor 'v'", Assert.Throws<KeyNotFoundException>(() => ok.ReadFloats("v")).Message);
    }

    [Fact]
    public void Fuzzed_files_fail_only_with_InvalidDataException_and_small_allocations()
    {
        manual_seed(3);
        string seedPath = PathOf("seed.safetensors");
        SafetensorsWriter.Write(seedPath, new Dictionary<string, Tensor>
        {
            ["a.weight"] = randn(4, 3), ["a.bias"] = randn(4).to_type(ScalarType.BFloat16), ["n"] = arange(3, dtype: ScalarType.Int64),
        }, new Dictionary<string, string> { ["k"] = "v" });
        var seed = File.ReadAllBytes(seedPath);
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(seed);
        var random = new Random(20241124);
        string p = PathOf("fuzz.safetensors");
        int rejected = 0, accepted = 0;
        for (int iteration = 0; iteration < 3000; iteration++)
        {
            var bytes = (byte[])seed.Clone();
            switch (random.Next(5))
            {
                case 0: bytes = bytes[..random.Next(bytes.Length)]; break; // truncation
                case 1: bytes[random.Next(8)] = (byte)random.Next(256); break; // length field
                case 2: // flips in the header
                    for (int f = random.Next(1, 4); f > 0; f--) bytes[8 + random.Next(headerEnd - 8)] ^= (byte)(1 << random.Next(8));
                    break;
                case 3: // a digit of the header replaced by another digit (offsets and shapes)
                    var digits = Enumerable.Range(8, headerEnd - 8).Where(i => bytes[i] is >= (byte)'0' and <= (byte)'9').ToArray();
                    bytes[digits[random.Next(digits.Length)]] = (byte)('0' + random.Next(10));
                    break;
                default: bytes[random.Next(bytes.Length)] = (byte)random.Next(256); break;
            }
            File.WriteAllBytes(p, bytes);
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                using var file = SafetensorsFile.Open(p);
                foreach (var name in file.Names) _ = file.ReadFloats(name);
                accepted++;
            }
            catch (InvalidDataException)
            {
                rejected++;
            }
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4_000_000, $"iteration {iteration} allocated too much");
        }
        Assert.True(rejected > 1000, $"only {rejected} rejected");
        Assert.True(accepted > 10, $"only {accepted} accepted"); // data-only mutations stay valid
    }
}
