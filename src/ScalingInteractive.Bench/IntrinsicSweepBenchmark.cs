using System.Diagnostics;
using System.Globalization;
using ScalingInteractive.Hosting;
using ScalingInteractive.IntrinsicDimension;
using static TorchSharp.torch;

namespace ScalingInteractive.Bench;

/// <summary>
/// An MNIST intrinsic-dimension sweep printed as text (the figures of notebook 03 at full size).
/// Usage: intrinsic-sweep [--task mnist-mlp|mnist-cnn|lm] [--width 64] [--depth 2] [--pretrain-steps 400] [--batch-size 128] [--dims 10,30,...] [--projections fastfood,dense] [--seeds 2] [--steps 1000]
///        [--lr 0.01] [--full-lr 0.001] [--data ../shared/data] [--threads 2] [--said] [--per-tensor]
/// </summary>
public sealed class IntrinsicSweepBenchmark : IBenchmark
{
    public string Name => "intrinsic-sweep";
    public string Description => "d90 sweep printed as a table: MNIST MLP or CNN (8k/2k split of the 10k file) or proxy-LM fine-tuning on tiny Shakespeare";

    public Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        string task = Arg(args, "--task") ?? "mnist-mlp";
        var dims = (Arg(args, "--dims") ?? "10,30,100,300,1000,3000").Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToList();
        var kinds = (Arg(args, "--projections") ?? "fastfood").Split(',').Select(SubspaceProjection.ParseKind).ToList();
        int seeds = int.Parse(Arg(args, "--seeds") ?? "2", CultureInfo.InvariantCulture);
        var training = new SubspaceTrainingOptions(int.Parse(Arg(args, "--steps") ?? "1000", CultureInfo.InvariantCulture),
            double.Parse(Arg(args, "--lr") ?? "0.03", CultureInfo.InvariantCulture), double.Parse(Arg(args, "--full-lr") ?? "0.001", CultureInfo.InvariantCulture),
            int.Parse(Arg(args, "--batch-size") ?? "128", CultureInfo.InvariantCulture));
        set_num_threads(int.Parse(Arg(args, "--threads") ?? "2", CultureInfo.InvariantCulture));
        var device = TorchRuntime.ResolveDevice(Arg(args, "--device") ?? "cpu");
        string data = Arg(args, "--data") ?? Path.Combine("..", "shared", "data");
        var clock = Stopwatch.StartNew();
        using var t = CreateTask(task, args, data, device, training, cancellationToken);
        output.WriteLine($"# task {t.Name}; {training.Steps} steps, lr {training.LearningRate}, full lr {training.FullLearningRate}, batch {training.BatchSize}; setup {clock.Elapsed.TotalSeconds:F0} s");
        var report = IntrinsicDimensionSweep.Run(t, new IntrinsicSweepOptions(dims, kinds, seeds, training, Said: args.Contains("--said"), PerTensor: args.Contains("--per-tensor")),
            progress: new ConsoleProgress(output), cancellationToken: cancellationToken);
        output.WriteLine(report.ToText());
        output.WriteLine($"# {clock.Elapsed.TotalSeconds:F0} s in all");
        return Task.FromResult(0);
    }

    private static IIntrinsicTask CreateTask(string task, string[] args, string data, Device device, SubspaceTrainingOptions training, CancellationToken token)
    {
        if (task.StartsWith("mnist-", StringComparison.Ordinal))
            return new MnistTask(MnistData.LoadTestSplit(data, device), task["mnist-".Length..], device, ownsData: true);
        if (task != "lm") throw new ArgumentException($"--task '{task}' is not known; use mnist-mlp, mnist-cnn or lm.");
        int width = int.Parse(Arg(args, "--width") ?? "64", CultureInfo.InvariantCulture), pretrain = int.Parse(Arg(args, "--pretrain-steps") ?? "400", CultureInfo.InvariantCulture);
        var config = new Proxies.ProxyModelConfig { Width = width, Depth = int.Parse(Arg(args, "--depth") ?? "2", CultureInfo.InvariantCulture), Heads = Math.Max(1, width / 16) };
        return new LanguageModelTask($"lm-w{width}-{(pretrain > 0 ? "pretrained" + pretrain : "random")}", pretrain > 0 ? Proxies.TextCorpus.Synthetic(400_000, 0) : null,
            Proxies.TextCorpus.FromFile(Path.Combine(data, "tinyshakespeare.txt")), new LanguageModelTaskOptions(config, pretrain), device, token);
    }

    private sealed class ConsoleProgress(TextWriter output) : Core.IProgressSink
    {
        public void Report(int done, string? status = null, string? best = null) => output.WriteLine($"  [{done}] {status}");
        public void Complete(string? status = null) { }
    }

    private static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
