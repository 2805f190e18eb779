using System.Collections.Immutable;
using System.Globalization;
using ScalingInteractive.Commands;
using ScalingInteractive.Hosting;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>
/// <c>#!intrinsic-dim</c>: trains a model in random subspaces of growing dimension d and reports d90, the smallest d
/// reaching 90% of full-parameter training (Li et al. 2018; Aghajanyan et al. 2020 for language-model fine-tuning).
/// </summary>
public sealed class IntrinsicDimCommand : MagicCommand
{
    /// <inheritdoc />
    public override string Name => "#!intrinsic-dim";

    /// <inheritdoc />
    public override string Description =>
        "Intrinsic-dimension probe: trains in random d-dimensional subspaces (theta = theta0 + P z) for a sweep of d, next to full-parameter " +
        "training, and reports d90 with a bootstrap over seeds. Tasks: mnist-mlp, mnist-cnn (8k/2k split of the MNIST 10k file), lm (proxy transformer " +
        "pretrained on the synthetic grammar, fine-tuned on tiny Shakespeare).";

    /// <inheritdoc />
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        new("--task", typeof(string), "What to train.") { AllowImplicitName = true, Default = "mnist-mlp", AllowedValues = ["mnist-mlp", "mnist-cnn", "lm"] },
        new("--dims", typeof(int[]), "Subspace dimensions d to sweep, e.g. [10,100,1000]; without it a log range from --d-min to --d-max.") { Minimum = 1 },
        new("--d-min", typeof(int), "Smallest d of the log range.") { Default = 10, Minimum = 1 },
        new("--d-max", typeof(int), "Largest d of the log range.") { Default = 3000, Minimum = 1 },
        new("--d-points", typeof(int), "Points of the log range.") { Default = 6, Minimum = 1, Maximum = 100 },
        new("--projection", typeof(string), "dense, sparse or fastfood; several comma-separated (e.g. dense,fastfood) to compare.") { Default = "fastfood" },
        new("--said", typeof(bool), "Structure-aware: one trainable scale per parameter tensor, counted in d (Aghajanyan et al. 2020)."),
        new("--per-tensor", typeof(bool), "One projection per parameter tensor instead of one over all parameters."),
        new("--seeds", typeof(int), "Seeds per d (theta0, P and batch order); the bootstrap resamples them.") { Default = 2, Minimum = 1, Maximum = 100 },
        new("--steps", typeof(int), "Training steps per run.") { Default = 1000, Minimum = 1 },
        new("--lr", typeof(double), "Adam learning rate of z.") { Default = 0.03, Minimum = 0 },
        new("--full-lr", typeof(double), "Adam learning rate of the full-parameter baseline.") { Default = 1e-3, Minimum = 0 },
        new("--batch-size", typeof(int), "Examples (or sequences) per step.") { Default = 128, Minimum = 1 },
        new("--bootstrap", typeof(int), "Bootstrap resamples over seeds.") { Default = 1000, Minimum = 0, Maximum = 100000 },
        new("--device", typeof(string), "auto, cpu, cuda or cuda:N.") { Default = "auto" },
        new("--store", typeof(string), "Run-store file (JSON Lines): finished runs are appended and skipped when the command runs again."),
        new("--name", typeof(string), "Notebook variable that receives the IntrinsicDimensionReport."),
        new("--data", typeof(string), "Data folder with the MNIST files and tinyshakespeare.txt (default: the notebook data folder)."),
        new("--memory-mib", typeof(int), "Largest dense or sparse projection, in MiB.") { Default = 2048, Minimum = 1 },
        new("--width", typeof(int), "lm: model width.") { Default = 64, Minimum = 8 },
        new("--depth", typeof(int), "lm: number of blocks.") { Default = 2, Minimum = 1 },
        new("--pretrain-steps", typeof(int), "lm: pretraining steps on the synthetic grammar (0: fine-tune from random initialisation).") { Default = 400, Minimum = 0 },
        new("--seq-len", typeof(int), "lm: tokens per window.") { Default = 64, Minimum = 2 },
    ];

    /// <inheritdoc />
    public override async Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        var kinds = ParseProjections(arguments.Get<string>("--projection"));
        if (arguments.Get<int>("--d-max") < arguments.Get<int>("--d-min") && !arguments.IsGiven("--dims"))
            throw new CommandException($"{Name}: --d-max ({arguments.Get<int>("--d-max")}) must be at least --d-min ({arguments.Get<int>("--d-min")}).");
        IReadOnlyList<long> dims = arguments.Get<int[]>("--dims") is { } list
            ? list.Select(v => (long)v).Distinct().Order().ToList()
            : IntrinsicDimensionSweep.LogRange(arguments.Get<int>("--d-min"), arguments.Get<int>("--d-max"), arguments.Get<int>("--d-points"));
        var training = new TrainingOptions(arguments.Get<int>("--steps"), arguments.Get<double>("--lr"), arguments.Get<double>("--full-lr"), arguments.Get<int>("--batch-size"));
        if (training.LearningRate <= 0 || training.FullLearningRate <= 0) throw new CommandException($"{Name}: --lr and --full-lr must be positive.");
        var options = new IntrinsicSweepOptions(dims, kinds, arguments.Get<int>("--seeds"), training, arguments.Get<bool>("--said"), arguments.Get<bool>("--per-tensor"),
            Resamples: arguments.Get<int>("--bootstrap"), MemoryBudgetBytes: arguments.Get<int>("--memory-mib") * 1048576L);
        var device = TorchRuntime.ResolveDevice(arguments.Get<string>("--device"));
        string dataFolder = arguments.Get<string>("--data") ?? NotebookSession.DataDirectory;
        string task = arguments.Get<string>("--task").ToLowerInvariant();
        var token = host.CancellationToken;
        var report = await Task.Run(() =>
        {
            using var probe = CreateTask(task, arguments, dataFolder, device, token, out string dataDescription);
            RunStore? store = arguments.Get<string>("--store") is { } path
                ? RunStore.Open(path, "intrinsic-dimension", IntrinsicDimensionSweep.StoreIdentity(probe, training, dataDescription))
                : null;
            var progress = host.CreateProgress($"{Name} {probe.Name}: {string.Join(", ", kinds).ToLowerInvariant()}, {dims.Count} values of d x {options.Seeds} seed(s)",
                options.Seeds * (1 + dims.Count * kinds.Count));
            return IntrinsicDimensionSweep.Run(probe, options, store, progress, token);
        }, token);
        host.Display(report);
        if (arguments.Get<string>("--name") is { Length: > 0 } variable)
            await host.SetVariableAsync(variable, report, typeof(IntrinsicDimensionReport));
    }

    /// <summary>Parses <c>dense,fastfood</c> into projection kinds; a clear message names what is accepted.</summary>
    public static IReadOnlyList<ProjectionKind> ParseProjections(string text)
    {
        var parts = (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new CommandException("#!intrinsic-dim: --projection is empty; use dense, sparse or fastfood (comma-separated to compare).");
        return parts.Select(p => p.ToLowerInvariant() switch
        {
            "dense" => ProjectionKind.Dense,
            "sparse" => ProjectionKind.Sparse,
            "fastfood" => ProjectionKind.Fastfood,
            _ => throw new CommandException($"#!intrinsic-dim: --projection '{p}' is not accepted; use dense, sparse or fastfood (comma-separated to compare)."),
        }).Distinct().ToList();
    }

    private static IIntrinsicTask CreateTask(string task, CommandArguments arguments, string dataFolder, TorchSharp.torch.Device device,
        CancellationToken token, out string dataDescription)
    {
        switch (task)
        {
            case "mnist-mlp":
            case "mnist-cnn":
            {
                string images = Path.Combine(dataFolder, MnistData.TestImagesFile);
                if (!File.Exists(images))
                    throw new FileNotFoundException($"MNIST file '{MnistData.TestImagesFile}' was not found in the data folder '{dataFolder}'. " +
                                                    "Give --data FOLDER, set SCALING_INTERACTIVE_DATA, or call MnistData.DownloadAsync() once with a network.", images);
                var data = MnistData.LoadTestSplit(dataFolder, device);
                dataDescription = "mnist t10k split 8000/2000 seed 1234";
                return new MnistTask(data, task[6..], device, ownsData: true);
            }
            case "lm":
            {
                string text = Path.Combine(dataFolder, "tinyshakespeare.txt");
                if (!File.Exists(text))
                    throw new FileNotFoundException($"'tinyshakespeare.txt' was not found in the data folder '{dataFolder}'. Give --data FOLDER or set SCALING_INTERACTIVE_DATA.", text);
                int width = arguments.Get<int>("--width"), depth = arguments.Get<int>("--depth"), pretrain = arguments.Get<int>("--pretrain-steps"), seqLen = arguments.Get<int>("--seq-len");
                var config = new ProxyModelConfig { Width = width, Depth = depth, Heads = Math.Max(1, width / 16), ContextLength = Math.Max(64, seqLen) };
                var lmOptions = new LanguageModelTaskOptions(config, pretrain, SequenceLength: seqLen);
                dataDescription = $"pretrain synthetic-grammar x{pretrain}, fine-tune tinyshakespeare, seq {seqLen}";
                string name = string.Create(CultureInfo.InvariantCulture, $"lm-w{width}-d{depth}-{(pretrain > 0 ? $"pretrained{pretrain}" : "random")}");
                return new LanguageModelTask(name, pretrain > 0 ? TextCorpus.Synthetic(400_000, 0) : null, TextCorpus.FromFile(text), lmOptions, device, token);
            }
            default:
                throw new CommandException($"#!intrinsic-dim: --task '{task}' is not accepted; use mnist-mlp, mnist-cnn or lm.");
        }
    }
}
