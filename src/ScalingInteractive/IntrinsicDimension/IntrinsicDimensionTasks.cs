using System.Collections.Immutable;
using System.Globalization;
using ScalingInteractive.Hosting;
using ScalingInteractive.Proxies;
using static TorchSharp.torch;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>Options of the built-in intrinsic-dimension tasks (<see cref="IntrinsicDimensionTasks"/>).</summary>
public sealed record IntrinsicTaskOptions
{
    /// <summary>Folder with the MNIST files and tinyshakespeare.txt (null: <see cref="NotebookSession.DataDirectory"/>).</summary>
    public string? DataDirectory { get; init; }

    /// <summary>Device of the data and models (null: CPU).</summary>
    public Device? Device { get; init; }

    /// <summary><c>lm</c>: model width.</summary>
    public int Width { get; init; } = 64;

    /// <summary><c>lm</c>: transformer blocks.</summary>
    public int Depth { get; init; } = 2;

    /// <summary><c>lm</c>: pre-training steps on the synthetic grammar (0: fine-tune from random initialisation).</summary>
    public int PretrainSteps { get; init; } = 400;

    /// <summary><c>lm</c>: tokens per window.</summary>
    public int SequenceLength { get; init; } = 64;

    /// <summary>
    /// <c>lm</c>: weights of an earlier pre-training with these settings (e.g. from a pre-training run's checkpoint), used
    /// instead of pre-training again (null: pre-train now when <see cref="PretrainSteps"/> &gt; 0).
    /// </summary>
    public IReadOnlyDictionary<string, Tensor>? PretrainedWeights { get; init; }

    /// <summary>Cancels the <c>lm</c> pre-training.</summary>
    public CancellationToken CancellationToken { get; init; }

    /// <summary>The data folder in use.</summary>
    public string ResolvedDataDirectory => DataDirectory ?? NotebookSession.DataDirectory;
}

/// <summary>
/// The built-in tasks of the intrinsic-dimension probe by name: <c>mnist-mlp</c> and <c>mnist-cnn</c> (Li et al. 2018; the
/// 8k/2k split of the MNIST 10k file) and <c>lm</c> (a proxy transformer pre-trained on the synthetic grammar and fine-tuned
/// on tiny Shakespeare, after Aghajanyan et al. 2020).
/// </summary>
public static class IntrinsicDimensionTasks
{
    /// <summary>Task names accepted by <see cref="Create"/>.</summary>
    public static ImmutableArray<string> Names { get; } = ["mnist-mlp", "mnist-cnn", "lm"];

    /// <summary>
    /// Creates a task (dispose it when done). Throws <see cref="FileNotFoundException"/> naming the missing file when the
    /// data folder lacks it, and <see cref="ArgumentException"/> for an unknown name.
    /// </summary>
    public static IIntrinsicTask Create(string name, IntrinsicTaskOptions? options = null)
    {
        options ??= new IntrinsicTaskOptions();
        var device = options.Device ?? CPU;
        string folder = options.ResolvedDataDirectory;
        switch (Normalise(name))
        {
            case "mnist-mlp":
            case "mnist-cnn":
            {
                string images = Path.Combine(folder, MnistData.TestImagesFile);
                if (!File.Exists(images))
                    throw new FileNotFoundException($"MNIST file '{MnistData.TestImagesFile}' was not found in the data folder '{folder}'. Pass the folder that holds it " +
                                                    "(IntrinsicTaskOptions.DataDirectory; --data-dir in #!intrinsic-dim), set SCALING_INTERACTIVE_DATA, or call MnistData.DownloadAsync() once with a network.", images);
                var data = MnistData.LoadTestSplit(folder, device);
                return new MnistTask(data, Normalise(name)[6..], device, ownsData: true);
            }
            case "lm":
            {
                string text = Path.Combine(folder, TextCorpus.TinyShakespeareFile);
                if (!File.Exists(text))
                    throw new FileNotFoundException($"'{TextCorpus.TinyShakespeareFile}' was not found in the data folder '{folder}'. Pass the folder that holds it " +
                                                    "(IntrinsicTaskOptions.DataDirectory; --data-dir in #!intrinsic-dim) or set SCALING_INTERACTIVE_DATA.", text);
                var lmOptions = new LanguageModelTaskOptions(LanguageModelConfig(options), options.PretrainSteps, SequenceLength: options.SequenceLength);
                return new LanguageModelTask(TaskName(name, options), options.PretrainSteps > 0 ? TextCorpus.Synthetic(400_000, 0) : null, TextCorpus.FromFile(text), lmOptions, device,
                    options.CancellationToken, options.PretrainedWeights);
            }
            default:
                throw new ArgumentException($"Task '{name}' is not known; use {string.Join(", ", Names)}.", nameof(name));
        }
    }

    /// <summary>
    /// The name a created task reports (<see cref="IIntrinsicTask.Name"/>, part of every run's key), known without loading
    /// data: <c>mnist-mlp</c>, <c>mnist-cnn</c>, or e.g. <c>lm-w64-d2-pretrained400</c>.
    /// </summary>
    public static string TaskName(string name, IntrinsicTaskOptions? options = null)
    {
        options ??= new IntrinsicTaskOptions();
        return Normalise(name) switch
        {
            "mnist-mlp" or "mnist-cnn" => Normalise(name),
            "lm" => string.Create(CultureInfo.InvariantCulture,
                $"lm-w{options.Width}-d{options.Depth}-{(options.PretrainSteps > 0 ? $"pretrained{options.PretrainSteps}" : "random")}"),
            _ => throw new ArgumentException($"Task '{name}' is not known; use {string.Join(", ", Names)}.", nameof(name)),
        };
    }

    /// <summary>The metric a created task reports (<see cref="IIntrinsicTask.MetricName"/>).</summary>
    public static string MetricName(string name) => Normalise(name) switch
    {
        "mnist-mlp" or "mnist-cnn" => "validation accuracy",
        "lm" => "validation next-token accuracy",
        _ => throw new ArgumentException($"Task '{name}' is not known; use {string.Join(", ", Names)}.", nameof(name)),
    };

    /// <summary>The proxy transformer of the <c>lm</c> task (heads of 16 dimensions, context at least 64).</summary>
    public static ProxyModelConfig LanguageModelConfig(IntrinsicTaskOptions options) =>
        new() { Width = options.Width, Depth = options.Depth, Heads = Math.Max(1, options.Width / 16), ContextLength = Math.Max(64, options.SequenceLength) };

    /// <summary>
    /// What data the task trains on, for a run store's identity (<see cref="IntrinsicDimensionSweep.StoreIdentity(string, SubspaceTrainingOptions, string?)"/>):
    /// runs are reused only for the same data.
    /// </summary>
    public static string DataDescription(string name, IntrinsicTaskOptions? options = null)
    {
        options ??= new IntrinsicTaskOptions();
        return Normalise(name) switch
        {
            "mnist-mlp" or "mnist-cnn" => "mnist t10k split 8000/2000 seed 1234",
            "lm" => string.Create(CultureInfo.InvariantCulture, $"pretrain synthetic-grammar x{options.PretrainSteps}, fine-tune tinyshakespeare, seq {options.SequenceLength}"),
            _ => throw new ArgumentException($"Task '{name}' is not known; use {string.Join(", ", Names)}.", nameof(name)),
        };
    }

    private static string Normalise(string name) => (name ?? "").Trim().ToLowerInvariant();
}
