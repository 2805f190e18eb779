using ScalingInteractive.Core;
using System.Buffers.Binary;
using System.IO.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>An IDX array of unsigned bytes (the MNIST file format): its dimensions and data.</summary>
/// <param name="Dimensions">Sizes of each dimension, e.g. [10000, 28, 28].</param>
/// <param name="Data">The bytes, row-major.</param>
public sealed record IdxArray(int[] Dimensions, byte[] Data);

/// <summary>
/// Reads IDX files (LeCun's MNIST format), raw or gzip-compressed. The header is checked against the file before any
/// data buffer is allocated: a hostile header (huge dimensions) is rejected with a message, never allocated.
/// </summary>
public static class IdxReader
{
    /// <summary>Largest data size accepted (1 GiB): bigger than any IDX data set this package uses.</summary>
    public const long MaxDataBytes = 1L << 30;

    /// <summary>Reads an unsigned-byte IDX file with <paramref name="expectedDimensions"/> dimensions (3 for images, 1 for labels).</summary>
    public static IdxArray Read(string path, int expectedDimensions)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file '{path}' was not found.", path);
        using var file = File.OpenRead(path);
        bool gzip = file.Length >= 2 && file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
        file.Position = 0;
        long? available = gzip ? GzipDeclaredSize(file) : file.Length;
        file.Position = 0;
        using Stream stream = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
        try
        {
            return Read(stream, available, expectedDimensions, path, sizeFromGzipTrailer: gzip);
        }
        catch (InvalidDataException e) when (gzip && e.Message.StartsWith("IDX", StringComparison.Ordinal) is false)
        {
            throw new InvalidDataException($"IDX file '{path}' is not a valid gzip stream ({e.Message}); it may be truncated or corrupt.", e);
        }
    }

    /// <summary>
    /// Reads IDX data from a stream. <paramref name="availableBytes"/> (when known) is the total length the stream will
    /// give, checked against the header before allocating; <paramref name="sizeFromGzipTrailer"/> says it came from a gzip trailer.
    /// </summary>
    public static IdxArray Read(Stream stream, long? availableBytes, int expectedDimensions, string name = "stream", bool sizeFromGzipTrailer = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Span<byte> magic = stackalloc byte[4];
        if (!ReadExactly(stream, magic))
            throw new InvalidDataException($"IDX file '{name}' is truncated: it ends inside the 4-byte magic number.");
        if (magic[0] != 0 || magic[1] != 0)
            throw new InvalidDataException($"IDX file '{name}' does not start with an IDX magic number (first bytes {magic[0]:x2} {magic[1]:x2}, expected 00 00); it is not an IDX file or is corrupt.");
        if (magic[2] != 0x08)
            throw new InvalidDataException($"IDX file '{name}' holds element type 0x{magic[2]:x2}; only unsigned bytes (0x08, as in MNIST) are supported.");
        int dims = magic[3];
        if (dims != expectedDimensions)
            throw new InvalidDataException($"IDX file '{name}' has {dims} dimensions (magic {BinaryPrimitives.ReadInt32BigEndian(magic)}), expected {expectedDimensions} " +
                                           $"({(expectedDimensions == 3 ? "images: magic 2051" : "labels: magic 2049")}).");
        var header = new byte[4 * dims];
        if (!ReadExactly(stream, header))
            throw new InvalidDataException($"IDX file '{name}' is truncated: it ends inside the header of {dims} dimension sizes.");
        var sizes = new int[dims];
        long count = 1;
        for (int i = 0; i < dims; i++)
        {
            uint size = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4 * i));
            if (size == 0 || size > int.MaxValue)
                throw new InvalidDataException($"IDX file '{name}': dimension {i} has size {size}; sizes must be between 1 and {int.MaxValue}.");
            sizes[i] = (int)size;
            count *= size;
            if (count > MaxDataBytes)
                throw new InvalidDataException($"IDX file '{name}': the header declares more than {MaxDataBytes} bytes of data (dimensions {string.Join(" x ", header.Chunk(4).Take(i + 1).Select(c => BinaryPrimitives.ReadUInt32BigEndian(c)))}); refusing to allocate it: the header is corrupt or hostile.");
        }
        long headerBytes = 4 + 4L * dims;
        if (availableBytes is long trailer && trailer != headerBytes + count && sizeFromGzipTrailer)
            throw new InvalidDataException($"IDX file '{name}' is truncated or corrupt: its gzip trailer gives {trailer} uncompressed bytes, but the header ({string.Join(" x ", sizes)}) needs {headerBytes + count}.");
        if (availableBytes is long total && total != headerBytes + count)
            throw new InvalidDataException(total < headerBytes + count
                ? $"IDX file '{name}' is truncated: the header declares {string.Join(" x ", sizes)} = {count} bytes of data but only {total - headerBytes} follow."
                : $"IDX file '{name}' has {total - headerBytes - count} unexpected bytes after the {count} declared by its header ({string.Join(" x ", sizes)}); it is corrupt.");
        var data = new byte[count];
        if (!ReadExactly(stream, data))
            throw new InvalidDataException($"IDX file '{name}' is truncated: the header declares {count} bytes of data but the stream ended early.");
        if (stream.ReadByte() != -1)
            throw new InvalidDataException($"IDX file '{name}' has bytes after the {count} declared by its header ({string.Join(" x ", sizes)}); it is corrupt.");
        return new IdxArray(sizes, data);
    }

    // The gzip trailer's ISIZE: the uncompressed length modulo 2^32 (exact for files under 4 GiB, which MaxDataBytes guarantees).
    private static long? GzipDeclaredSize(FileStream file)
    {
        if (file.Length < 18) return null;
        file.Position = file.Length - 4;
        Span<byte> tail = stackalloc byte[4];
        return ReadExactly(file, tail) ? BinaryPrimitives.ReadUInt32LittleEndian(tail) : null;
    }

    private static bool ReadExactly(Stream stream, Span<byte> buffer)
    {
        int at = 0;
        while (at < buffer.Length)
        {
            int n = stream.Read(buffer[at..]);
            if (n == 0) return false;
            at += n;
        }
        return true;
    }
}

/// <summary>MNIST images and labels as tensors on one device, split into training and validation sets.</summary>
public sealed class MnistData : IDisposable
{
    /// <summary>File names of the 10k test split (the one shipped with this repository's shared data).</summary>
    public const string TestImagesFile = "mnist-t10k-images-idx3-ubyte.gz", TestLabelsFile = "mnist-t10k-labels-idx1-ubyte.gz";

    /// <summary>File names of the 60k training split.</summary>
    public const string TrainImagesFile = "train-images-idx3-ubyte.gz", TrainLabelsFile = "train-labels-idx1-ubyte.gz";

    /// <summary>Per-pixel mean and standard deviation of MNIST (the usual normalisation constants).</summary>
    public const float PixelMean = 0.1307f, PixelStd = 0.3081f;

    private MnistData(Tensor trainX, Tensor trainY, Tensor validX, Tensor validY)
    {
        TrainImages = trainX;
        TrainLabels = trainY;
        ValidationImages = validX;
        ValidationLabels = validY;
    }

    /// <summary>Training images [N, 1, 28, 28], normalised.</summary>
    public Tensor TrainImages { get; }
    /// <summary>Training labels [N], int64.</summary>
    public Tensor TrainLabels { get; }
    /// <summary>Validation images [M, 1, 28, 28], normalised.</summary>
    public Tensor ValidationImages { get; }
    /// <summary>Validation labels [M], int64.</summary>
    public Tensor ValidationLabels { get; }

    /// <summary>Number of training examples.</summary>
    public long TrainCount => TrainLabels.shape[0];
    /// <summary>Number of validation examples.</summary>
    public long ValidationCount => ValidationLabels.shape[0];

    /// <summary>
    /// Loads an image file and a label file (raw or .gz) and splits them with a fixed seed: the first
    /// <paramref name="trainCount"/> of a seeded permutation train, the rest (up to <paramref name="validationCount"/>) validate.
    /// </summary>
    public static MnistData Load(string imagesPath, string labelsPath, int trainCount, int validationCount, int splitSeed, Device device)
    {
        if (trainCount < 1) throw new ArgumentException($"trainCount must be at least 1 (got {trainCount}).", nameof(trainCount));
        if (validationCount < 1) throw new ArgumentException($"validationCount must be at least 1 (got {validationCount}).", nameof(validationCount));
        var images = IdxReader.Read(imagesPath, 3);
        var labels = IdxReader.Read(labelsPath, 1);
        if (images.Dimensions[1] != 28 || images.Dimensions[2] != 28)
            throw new InvalidDataException($"MNIST images in '{imagesPath}' are {images.Dimensions[1]} x {images.Dimensions[2]}; the models here take 28 x 28 images.");
        int n = images.Dimensions[0];
        if (labels.Dimensions[0] != n)
            throw new InvalidDataException($"'{imagesPath}' holds {n} images but '{labelsPath}' holds {labels.Dimensions[0]} labels; they must match.");
        if (labels.Data.Any(l => l > 9))
            throw new InvalidDataException($"'{labelsPath}' holds a label above 9; MNIST labels are 0-9.");
        if (trainCount + validationCount > n)
            throw new ArgumentException($"trainCount + validationCount = {trainCount + validationCount} exceeds the {n} examples in '{imagesPath}'.", nameof(trainCount));
        var order = Enumerable.Range(0, n).ToArray();
        new Random(splitSeed).Shuffle(order);
        using var scope = NewDisposeScope();
        var all = tensor(images.Data, [n, 1, 28, 28]).to(ScalarType.Float32).DividedByInPlace(255.0).MinusInPlace(PixelMean).DividedByInPlace(PixelStd);
        var y = tensor(labels.Data.Select(b => (long)b).ToArray());
        var trainIndex = tensor(order[..trainCount].Select(i => (long)i).ToArray());
        var validIndex = tensor(order[trainCount..(trainCount + validationCount)].Select(i => (long)i).ToArray());
        var data = new MnistData(
            all.index_select(0, trainIndex).to(device).MoveToOuterDisposeScope(), y.index_select(0, trainIndex).to(device).MoveToOuterDisposeScope(),
            all.index_select(0, validIndex).to(device).MoveToOuterDisposeScope(), y.index_select(0, validIndex).to(device).MoveToOuterDisposeScope());
        return data;
    }

    /// <summary>
    /// The 10k MNIST test files in <paramref name="directory"/> split 8,000 / 2,000 with a fixed seed (what this
    /// repository's experiments use; the 60k training split is not shipped).
    /// </summary>
    public static MnistData LoadTestSplit(string directory, Device device, int trainCount = 8000, int validationCount = 2000, int splitSeed = 1234) =>
        Load(Path.Combine(directory, TestImagesFile), Path.Combine(directory, TestLabelsFile), trainCount, validationCount, splitSeed, device);

    /// <summary>
    /// For users with a network: makes sure the four MNIST files are in <paramref name="cacheDirectory"/>
    /// (default ~/.cache/scaling-interactive/data), downloading missing ones from <paramref name="baseUrl"/>. Returns the folder.
    /// </summary>
    public static async Task<string> DownloadAsync(string? cacheDirectory = null, string baseUrl = "https://ossci-datasets.s3.amazonaws.com/mnist/",
        CancellationToken cancellationToken = default)
    {
        string folder = cacheDirectory ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "scaling-interactive", "data");
        Directory.CreateDirectory(folder);
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
        foreach (var (canonical, local) in new[]
                 {
                     ("t10k-images-idx3-ubyte.gz", TestImagesFile), ("t10k-labels-idx1-ubyte.gz", TestLabelsFile),
                     ("train-images-idx3-ubyte.gz", TrainImagesFile), ("train-labels-idx1-ubyte.gz", TrainLabelsFile),
                 })
        {
            string target = Path.Combine(folder, local);
            if (File.Exists(target)) continue;
            string partial = target + ".partial";
            using (var response = await http.GetAsync(baseUrl + canonical, HttpCompletionOption.ResponseHeadersRead, cancellationToken))
            {
                response.EnsureSuccessStatusCode();
                await using var output = File.Create(partial);
                await response.Content.CopyToAsync(output, cancellationToken);
            }
            // Validate before the file takes its final name, so a broken download is never cached.
            IdxReader.Read(partial, local.Contains("images", StringComparison.Ordinal) ? 3 : 1);
            File.Move(partial, target, overwrite: true);
        }
        return folder;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        TrainImages.Dispose();
        TrainLabels.Dispose();
        ValidationImages.Dispose();
        ValidationLabels.Dispose();
    }
}
