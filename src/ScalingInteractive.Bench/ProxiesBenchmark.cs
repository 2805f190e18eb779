using ScalingInteractive.Core;
using System.Diagnostics;
using ScalingInteractive.Hosting;
using ScalingInteractive.Proxies;
using static TorchSharp.torch;

namespace ScalingInteractive.Bench;

/// <summary>
/// Proxy-transformer training throughput (tokens/s, achieved FLOP/s) for widths 64, 128, 256 next to LibTorch's own
/// matmul FLOP/s measured in the same run, the time of one sweep run at the notebook's settings, and the peak
/// working set over a long run (memory must stay flat thanks to per-step dispose scopes).
/// Arguments: --steps N (timed steps per width, default 40), --seq T (default 64), --batch B (default 32),
/// --long (10,000-step memory run; default 1,000), --threads K (default: LibTorch's choice), --device NAME.
/// <c>--ensemble</c> instead compares, in one run, an 8-LR sweep trained run by run with the same sweep trained as one
/// ensemble (<see cref="ProxyTrainer"/>) at widths 32, 64, 128 (batch 16 x 64, 2 layers) with 2 and then 1
/// LibTorch threads: tokens/s of each, the ratio, and each as a share of the matmul ceiling measured at that thread
/// count in the same run (--steps N timed steps per run, default 40; --repeats R, default 2: the sequential and the
/// ensemble sweep alternate R times and each keeps its best throughput, since other processes on a shared machine
/// slow single measurements at random).
/// </summary>
public sealed class ProxiesBenchmark : IBenchmark
{
    public string Name => "proxies";
    public string Description => "proxy transformer tokens/s and FLOP/s vs LibTorch matmul FLOP/s; sweep-run time; peak working set over a long run";

    public Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        int steps = IntArg(args, "--steps", 40), seq = IntArg(args, "--seq", 64), batch = IntArg(args, "--batch", 32);
        int longSteps = args.Contains("--long") ? 10_000 : IntArg(args, "--long-steps", 1_000);
        int threads = IntArg(args, "--threads", 0);
        var device = TorchRuntime.ResolveDevice(StringArg(args, "--device", "auto"));
        if (args.Contains("--ensemble") && args.Contains("--profile")) return Task.FromResult(EnsembleProfile(args, device, output));
        if (args.Contains("--ensemble")) return Task.FromResult(Ensemble(args, device, output, cancellationToken));
        if (threads > 0) set_num_threads(threads);
        output.WriteLine($"# device {device}, torch threads {get_num_threads()}, batch {batch} x seq {seq}, {steps} timed steps per width");
        var corpus = TextCorpus.FromFile(Path.Combine(FindSharedData(), "tinyshakespeare.txt"));

        double ceiling = MatmulCeiling(device, output);
        output.WriteLine();
        output.WriteLine("width  heads  non-emb params  tokens/s   steps/s  achieved GFLOP/s  % of matmul ceiling");
        foreach (int width in new[] { 64, 128, 256 })
        {
            cancellationToken.ThrowIfCancellationRequested();
            var model = new ProxyModelConfig { Width = width, Depth = 2, Heads = width / 32, ContextLength = seq };
            var options = new ProxyTrainingOptions { Steps = steps, BatchSize = batch, SequenceLength = seq, LearningRate = 1e-3, LogEvery = 1_000_000, ValidationBatches = 1 };
            ProxyTrainer.Train(model, options with { Steps = 5 }, corpus, device, cancellationToken: cancellationToken); // warm-up
            var run = ProxyTrainer.Train(model, options, corpus, device, cancellationToken: cancellationToken);
            // Kaplan et al. (2020): training FLOPs per token = 6 N + 6 n_layer n_ctx d_attn (attention scores and values).
            double flopsPerToken = 6.0 * run.Parameters + 6.0 * model.Depth * seq * width;
            double flops = flopsPerToken * run.TokensPerSecond;
            output.WriteLine($"{width,5}  {model.Heads,5}  {run.Parameters,14:N0}  {run.TokensPerSecond,8:N0}  {run.TokensPerSecond / (batch * seq),8:F1}  {flops / 1e9,16:F2}  {100 * flops / ceiling,18:F1}%");
        }

        output.WriteLine();
        // One run of notebook 02's LR sweeps: full mode (width 64 of 32/64/128, 400 steps, batch 16 x 64) and quick mode.
        var sweepModel = new ProxyModelConfig { Width = 64, Depth = 2, Heads = 4, ContextLength = 64 };
        var sweepOptions = new ProxyTrainingOptions { Steps = 400, BatchSize = 16, SequenceLength = 64, LearningRate = 1e-2, LogEvery = 20, ValidationBatches = 8 };
        var quickModel = new ProxyModelConfig { Width = 32, Depth = 2, Heads = 4, ContextLength = 32 };
        var quickOptions = new ProxyTrainingOptions { Steps = 25, BatchSize = 8, SequenceLength = 32, LearningRate = 3e-2, LogEvery = 5, ValidationBatches = 2 };
        var clock = Stopwatch.StartNew();
        var sweepRun = ProxyTrainer.Train(sweepModel, sweepOptions, corpus, device, cancellationToken: cancellationToken);
        output.WriteLine($"notebook full-mode sweep run (width 64, 400 steps, batch 16 x 64, validation included): {clock.Elapsed.TotalSeconds:F2} s, final loss {sweepRun.FinalLoss:F3}");
        clock.Restart();
        ProxyTrainer.Train(quickModel, quickOptions, corpus, device, cancellationToken: cancellationToken);
        output.WriteLine($"notebook quick-mode sweep run (width 32, 25 steps, batch 8 x 32, validation included): {clock.Elapsed.TotalSeconds:F2} s");

        // Memory over a long run: working set sampled at every logged step.
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        long before = process.WorkingSet64;
        var samples = new List<(int Step, long Bytes)>();
        var memoryOptions = new ProxyTrainingOptions { Steps = longSteps, BatchSize = batch, SequenceLength = seq, LearningRate = 1e-3, LogEvery = Math.Max(1, longSteps / 10) };
        clock.Restart();
        ProxyTrainer.Train(sweepModel, memoryOptions, corpus, device, new Sampler(step => { process.Refresh(); samples.Add((step, process.WorkingSet64)); }), cancellationToken);
        process.Refresh();
        output.WriteLine($"long run: {longSteps:N0} steps of width 64 in {clock.Elapsed.TotalSeconds:F1} s; working set before {before / 1048576.0:F0} MiB, " +
                         $"samples {string.Join(", ", samples.Select(s => $"{s.Step}:{s.Bytes / 1048576.0:F0}"))} MiB; peak working set {process.PeakWorkingSet64 / 1048576.0:F0} MiB");
        long firstLogged = samples.Count > 1 ? samples[1].Bytes : before;
        output.WriteLine($"working-set growth from step {(samples.Count > 1 ? samples[1].Step : 0)} to the end: {(samples[^1].Bytes - firstLogged) / 1048576.0:F1} MiB");
        return Task.FromResult(0);
    }

    private static int Ensemble(string[] args, Device device, TextWriter output, CancellationToken cancellationToken)
    {
        int steps = IntArg(args, "--steps", 40), repeats = Math.Max(1, IntArg(args, "--repeats", 2)), seq = 64, batch = 16;
        var corpus = TextCorpus.FromFile(Path.Combine(FindSharedData(), "tinyshakespeare.txt"));
        double[] rates = ProxySweepSpec.LogSpaced(1e-3, 1e-2, 8); // none diverges: both sides train all 8 runs to the end
        output.WriteLine($"# ensemble vs sequential: 8-LR sweep ({rates[0]:G2}..{rates[^1]:G2}), batch {batch} x seq {seq}, 2 layers, {steps} timed steps per run, best of {repeats}, device {device}");
        output.WriteLine($"# load average at start: {LoadAverage()}");
        var lines = new List<string>();
        foreach (int threads in new[] { 2, 1 })
        {
            set_num_threads(threads);
            output.WriteLine($"## torch threads {get_num_threads()}");
            double ceiling = MatmulCeiling(device, output);
            // The same cores as `threads` independent single-thread matmuls at once: the ceiling the split ensembles face.
            double parallelCeiling = threads > 1 ? ConcurrentMatmulCeiling(device, threads, output) : ceiling;
            foreach (int width in new[] { 32, 64, 128 })
            {
                cancellationToken.ThrowIfCancellationRequested();
                var model = new ProxyModelConfig { Width = width, Depth = 2, Heads = Math.Max(1, width / 16), ContextLength = seq };
                var options = new ProxyTrainingOptions { Steps = steps, BatchSize = batch, SequenceLength = seq, LogEvery = 1_000_000, ValidationBatches = 1 };
                var runs = rates.Select(lr => (model, options with { LearningRate = lr, MinLearningRate = Math.Min(options.MinLearningRate, lr) })).ToList();
                // Warm-up of both paths (allocator, kernels), then the timed sweeps.
                ProxyTrainer.Train(model, runs[0].Item2 with { Steps = 3 }, corpus, device, cancellationToken: cancellationToken);
                ProxyTrainer.Train(runs.Select(r => (r.model, r.Item2 with { Steps = 3 })).ToList(), corpus, device, cancellationToken: cancellationToken);
                double Throughput(IReadOnlyList<ProxyRunResult> results) => results.Sum(r => (double)r.Tokens) / results.Sum(r => r.Seconds);
                double seqTps = 0, ensTps = 0, splitTps = 0;
                IReadOnlyList<ProxyRunResult> sequential = [], ensemble = [], split = [];
                for (int r = 0; r < repeats; r++)
                {
                    sequential = runs.Select(x => ProxyTrainer.Train(x.model, x.Item2, corpus, device, cancellationToken: cancellationToken)).ToList();
                    ensemble = ProxyTrainer.Train(runs, corpus, device, cancellationToken: cancellationToken);
                    seqTps = Math.Max(seqTps, Throughput(sequential));
                    ensTps = Math.Max(ensTps, Throughput(ensemble));
                    if (threads > 1)
                    {
                        // The same thread budget as `threads` workers of one LibTorch thread each, one sub-ensemble per worker.
                        set_num_threads(1);
                        var clock = Stopwatch.StartNew();
                        split = ProxyTrainer.Train(runs, corpus, device, workers: threads, cancellationToken: cancellationToken);
                        splitTps = Math.Max(splitTps, split.Sum(x => (double)x.Tokens) / clock.Elapsed.TotalSeconds);
                        set_num_threads(threads);
                    }
                }
                double flopsPerToken = 6.0 * sequential[0].Parameters + 6.0 * model.Depth * seq * width; // Kaplan et al. (2020)
                double maxDiff = sequential.Zip(ensemble.Concat(split)).Max(p => Math.Abs(p.First.FinalLoss - p.Second.FinalLoss));
                maxDiff = Math.Max(maxDiff, split.Count == 0 ? 0 : sequential.Zip(split).Max(p => Math.Abs(p.First.FinalLoss - p.Second.FinalLoss)));
                string splitColumns = split.Count == 0 ? $"{"-",11}  {"-",6}  {"-",15}  {"-",20}" : $"{splitTps,11:N0}  {splitTps / seqTps,5:F2}x  {100 * splitTps * flopsPerToken / ceiling,14:F1}%  {100 * splitTps * flopsPerToken / parallelCeiling,19:F1}%";
                lines.Add($"{threads,7}  {width,5}  {seqTps,14:N0}  {ensTps,14:N0}  {ensTps / seqTps,5:F2}x  {100 * seqTps * flopsPerToken / ceiling,13:F1}%  {100 * ensTps * flopsPerToken / ceiling,13:F1}%  {splitColumns}  {ceiling / 1e9,10:F1}  {maxDiff,12:E1}");
                output.WriteLine(lines[^1]);
            }
        }
        output.WriteLine();
        output.WriteLine("threads  width  sequential tok/s  ensemble tok/s  ratio  seq % ceiling  ens % ceiling  split tok/s  ratio  split % ceiling  split % par. ceiling  ceiling GFLOP/s  max |dL final|");
        output.WriteLine("(ceiling: one matmul on `threads` LibTorch threads; par. ceiling: `threads` single-thread matmuls at once on their own threads)");
        output.WriteLine("(split: the ensemble dealt to `threads` sub-ensembles trained at once, each on one LibTorch thread; wall-clock throughput)");
        foreach (string line in lines) output.WriteLine(line);
        output.WriteLine($"# load average at end: {LoadAverage()}");
        return 0;
    }

    /// <summary>
    /// Where a step's time goes: forward, loss, backward and update of K separate models (run one after another) next to
    /// one K-member ensemble, per phase, at widths 32/64/128 (batch 16 x 64, K = 8), with --threads T (default 1).
    /// </summary>
    private static int EnsembleProfile(string[] args, Device device, TextWriter output)
    {
        int threads = IntArg(args, "--threads", 1), members = IntArg(args, "--members", 8), repeats = IntArg(args, "--steps", 20);
        set_num_threads(threads);
        output.WriteLine($"# per-phase ms per step of {members} runs: {members} separate models one after another vs one {members}-member ensemble; torch threads {get_num_threads()}, load average {LoadAverage()}");
        using var tokens = randint(0, 256, [16, 65], dtype: ScalarType.Int64, device: device);
        using var input = tokens.narrow(1, 0, 64);
        using var target = tokens.narrow(1, 1, 64).reshape(-1);
        foreach (int width in new[] { 32, 64, 128 })
        {
            var config = new ProxyModelConfig { Width = width, Depth = 2, Heads = Math.Max(1, width / 16), ContextLength = 64 };
            var phases = new Dictionary<string, double>();
            var clock = new Stopwatch();
            void Lap(string phase) { phases[phase] = phases.GetValueOrDefault(phase) + clock.Elapsed.TotalMilliseconds; clock.Restart(); }
            using (var model = new ProxyTransformer(config, device, 1))
            {
                var parameters = model.parameters().ToList();
                for (int r = 0; r < repeats + 3; r++)
                {
                    if (r == 3) phases.Clear();
                    for (int k = 0; k < members; k++)
                    {
                        using var scope = NewDisposeScope();
                        clock.Restart();
                        var logits = model.forward(input); Lap("separate forward");
                        var loss = ProxyTransformer.CrossEntropy(logits, target); Lap("separate loss");
                        loss.backward(); Lap("separate backward");
                        using (no_grad()) foreach (var p in parameters) { p.PlusScaledInPlace(p.grad!, -1e-6); p.grad = null; }
                        Lap("separate update (1 op per tensor)");
                    }
                }
            }
            using (var ensemble = new ProxyTransformer(config, Enumerable.Range(0, members).Select(i => (long)i).ToArray(), device))
            {
                for (int r = 0; r < repeats + 3; r++)
                {
                    if (r == 3) foreach (var key in phases.Keys.Where(k => k.StartsWith("ensemble")).ToList()) phases.Remove(key);
                    using var scope = NewDisposeScope();
                    clock.Restart();
                    var logits = ensemble.Forward(input); Lap("ensemble forward");
                    var loss = ProxyTransformer.MemberCrossEntropy(logits, target); Lap("ensemble loss");
                    loss.sum().backward(); Lap("ensemble backward");
                    using (no_grad()) { var grad = ensemble.GatherGradients(); Lap("ensemble gather"); ensemble.Flat.PlusScaledInPlace(grad, -1e-6); Lap("ensemble update (1 op)"); }
                }
            }
            output.WriteLine($"width {width}:");
            foreach (var (phase, ms) in phases) output.WriteLine($"  {phase,-36} {ms / repeats,8:F2} ms");
            double separate = phases.Where(p => p.Key.StartsWith("separate")).Sum(p => p.Value), together = phases.Where(p => p.Key.StartsWith("ensemble")).Sum(p => p.Value);
            output.WriteLine($"  total: separate {separate / repeats:F2} ms, ensemble {together / repeats:F2} ms, ratio {separate / together:F2}x");
        }
        return 0;
    }

    /// <summary>FLOP/s of <paramref name="workers"/> 1024^3 single-thread matmuls running at once, one per thread.</summary>
    private static double ConcurrentMatmulCeiling(Device device, int workers, TextWriter output)
    {
        int before = get_num_threads();
        set_num_threads(1);
        const int repeats = 20;
        var ready = new Barrier(workers + 1);
        var threads = Enumerable.Range(0, workers).Select(_ => new Thread(() =>
        {
            using var a = randn(1024, 1024, device: device);
            using var b = randn(1024, 1024, device: device);
            for (int i = 0; i < 3; i++) a.matmul(b).Dispose();
            ready.SignalAndWait();
            for (int i = 0; i < repeats; i++) a.matmul(b).Dispose();
        })).ToList();
        threads.ForEach(t => t.Start());
        ready.SignalAndWait();
        var clock = Stopwatch.StartNew();
        threads.ForEach(t => t.Join());
        double flops = 2.0 * 1024 * 1024 * 1024 * repeats * workers / clock.Elapsed.TotalSeconds;
        set_num_threads(before);
        output.WriteLine($"{workers} single-thread 1024x1024 @ 1024x1024 matmuls at once: {flops / 1e9:F2} GFLOP/s (parallel ceiling)");
        return flops;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    /// <summary>LibTorch matmul FLOP/s for the shapes the models use and a square one; the best is the practical ceiling.</summary>
    private static double MatmulCeiling(Device device, TextWriter output)
    {
        double best = 0;
        foreach (var (m, k, n) in new[] { (2048L, 256L, 1024L), (2048L, 1024L, 256L), (1024L, 1024L, 1024L), (2048L, 2048L, 2048L) })
        {
            using var a = randn(m, k, device: device);
            using var b = randn(k, n, device: device);
            for (int i = 0; i < 3; i++) a.matmul(b).Dispose();
            int repeats = (int)Math.Clamp(2e10 / (2.0 * m * k * n), 3, 200);
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < repeats; i++) a.matmul(b).Dispose();
            if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize();
            double flops = 2.0 * m * k * n * repeats / clock.Elapsed.TotalSeconds;
            output.WriteLine($"libtorch matmul {m}x{k} @ {k}x{n}: {flops / 1e9:F2} GFLOP/s");
            best = Math.Max(best, flops);
        }
        output.WriteLine($"practical ceiling (best of the above): {best / 1e9:F2} GFLOP/s");
        return best;
    }

    private static string FindSharedData()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "..", "shared", "data");
            if (File.Exists(Path.Combine(candidate, "tinyshakespeare.txt"))) return Path.GetFullPath(candidate);
        }
        return NotebookSession.DataDirectory;
    }

    private static int IntArg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int v) ? v : fallback;
    }

    private static string StringArg(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    // Progress reports as a callback with the steps done (the memory samples of the long run).
    private sealed class Sampler(Action<int> onStep) : Core.IProgressSink
    {
        public void Report(int done, string? status = null, string? best = null) => onStep(done);

        public void Complete(string? status = null) { }
    }
}
