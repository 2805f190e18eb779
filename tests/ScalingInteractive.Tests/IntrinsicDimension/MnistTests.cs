using System.Buffers.Binary;
using System.IO.Compression;
using ScalingInteractive.IntrinsicDimension;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.IntrinsicDimension;

public class MnistTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "si-mnist-" + Guid.NewGuid().ToString("N"));

    public MnistTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Shared(string file) => Path.Combine(RepoPaths.SharedData, file);

    private static byte[] Decompress(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var memory = new MemoryStream();
        gz.CopyTo(memory);
        return memory.ToArray();
    }

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_folder, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Header(int magic, params uint[] dims)
    {
        var bytes = new byte[4 + 4 * dims.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4 + 4 * i), dims[i]);
        return bytes;
    }

    [SharedDataFact]
    public void Reads_the_shared_test_files_gz_and_raw_alike()
    {
        var images = IdxReader.Read(Shared(MnistData.TestImagesFile), 3);
        Assert.Equal([10000, 28, 28], images.Dimensions);
        var labels = IdxReader.Read(Shared(MnistData.TestLabelsFile), 1);
        Assert.Equal([10000], labels.Dimensions);
        // The published test split's first label is 7 (LeCun's file); the raw copy reads the same.
        Assert.Equal(7, labels.Data[0]);
        var raw = IdxReader.Read(Write("labels-raw", Decompress(Shared(MnistData.TestLabelsFile))), 1);
        Assert.Equal(labels.Data, raw.Data);
    }

    [SharedDataFact]
    public void The_split_is_fixed_disjoint_and_complete()
    {
        using var a = MnistData.LoadTestSplit(RepoPaths.SharedData, CPU);
        using var b = MnistData.LoadTestSplit(RepoPaths.SharedData, CPU);
        Assert.Equal(8000, a.TrainCount);
        Assert.Equal(2000, a.ValidationCount);
        Assert.True(a.TrainLabels.eq(b.TrainLabels).all().item<bool>());
        Assert.Equal([8000L, 1, 28, 28], a.TrainImages.shape);
        // Label histogram of train + validation equals the file's, counted from the bytes directly.
        var bytes = Decompress(Shared(MnistData.TestLabelsFile))[8..];
        var expected = Enumerable.Range(0, 10).Select(c => (long)bytes.Count(v => v == c)).ToArray();
        var got = (a.TrainLabels.bincount(null, 10) + a.ValidationLabels.bincount(null, 10)).data<long>().ToArray();
        Assert.Equal(expected, got);
        // Normalised pixels: a blank pixel maps to -mean/std.
        Assert.Equal(-MnistData.PixelMean / MnistData.PixelStd, a.TrainImages.min().item<float>(), 4);
    }

    [Fact]
    public void Hostile_header_is_refused_without_allocating()
    {
        Assert.Contains("dimension 0 has size 4000000000", Assert.Throws<InvalidDataException>(() =>
            IdxReader.Read(Write("huge", [.. Header(2051, 4_000_000_000, 28, 28), 1]), 3)).Message);
        string path = Write("hostile", [.. Header(2051, 60000, 60000, 60000), 1, 2, 3]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path, 3));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
        Assert.Contains("refusing to allocate", e.Message);
        // Plausible sizes but a short file: caught from the file length before the data buffer exists.
        string shortFile = Write("short", [.. Header(2051, 60000, 28, 28), .. new byte[100]]);
        before = GC.GetAllocatedBytesForCurrentThread();
        e = Assert.Throws<InvalidDataException>(() => IdxReader.Read(shortFile, 3));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
        Assert.Contains("truncated", e.Message);
    }

    [SharedDataFact]
    public void Truncated_and_corrupt_files_get_clear_messages()
    {
        var gz = File.ReadAllBytes(Shared(MnistData.TestImagesFile));
        string half = Write("half.gz", gz[..(gz.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.Read(half, 3));
        Assert.Contains("half.gz", e.Message);
        Assert.Contains("IDX file", e.Message);
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => IdxReader.Read(Write("text", "hello world, not idx"u8.ToArray()), 3)).Message);
        Assert.Contains("expected 3", Assert.Throws<InvalidDataException>(() => IdxReader.Read(Shared(MnistData.TestLabelsFile), 3)).Message);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => IdxReader.Read(Write("tiny", [0, 0]), 1)).Message);
        Assert.Contains("unexpected bytes", Assert.Throws<InvalidDataException>(() => IdxReader.Read(Write("long", [.. Header(2049, 2), 1, 2, 3]), 1)).Message);
        Assert.Throws<FileNotFoundException>(() => IdxReader.Read(Path.Combine(_folder, "absent"), 1));
    }

    [Fact]
    public void Images_of_the_wrong_size_are_refused()
    {
        string images = Write("img", [.. Header(2051, 10, 20, 20), .. new byte[4000]]);
        string labels = Write("lab", [.. Header(2049, 10), .. new byte[10]]);
        var e = Assert.Throws<InvalidDataException>(() => MnistData.Load(images, labels, 5, 5, 0, CPU));
        Assert.Contains("20 x 20", e.Message);
        Assert.Contains("28 x 28", e.Message);
    }

    [Fact]
    public void The_models_have_the_parameter_counts_of_Li_et_al()
    {
        // Li et al. 2018 report D = 199,210 for the 784-200-200-10 MLP and 44,426 for LeNet.
        using var mlp = new MnistMlp();
        using var lenet = new MnistLeNet();
        Assert.Equal(199_210, SubspaceTraining.ParameterCount(mlp));
        Assert.Equal(44_426, SubspaceTraining.ParameterCount(lenet));
        Assert.Equal([2L, 10], lenet.forward(zeros(2, 1, 28, 28)).shape);
    }

    [SharedDataFact]
    public void Subspace_training_learns_and_is_deterministic()
    {
        using var data = MnistData.Load(Shared(MnistData.TestImagesFile), Shared(MnistData.TestLabelsFile), 1000, 300, 1, CPU);
        using var task = new MnistTask(data, "mlp", CPU);
        var options = new SubspaceTrainingOptions(Steps: 60, LearningRate: 0.05, BatchSize: 64);
        var a = SubspaceTraining.TrainSubspace(task, 300, new ProjectionOptions(ProjectionKind.Fastfood), false, 0, options);
        var b = SubspaceTraining.TrainSubspace(task, 300, new ProjectionOptions(ProjectionKind.Fastfood), false, 0, options);
        Assert.Equal(a.Metric, b.Metric);
        Assert.Equal(a.FinalLoss, b.FinalLoss);
        Assert.True(a.Metric > 0.4, $"accuracy {a.Metric} should be well above chance (0.1) after 60 steps in 300 dimensions");
        Assert.Equal(199_210, a.ParameterCount);
        Assert.Equal("fastfood", a.SeriesName);
    }
}
