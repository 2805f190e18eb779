using System.Diagnostics;
using System.Globalization;
using ScalingInteractive.Hosting;
using ScalingInteractive.IntrinsicDimension;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.Bench;

/// <summary>
/// Memory and time per training step of random-subspace training vs d for dense, sparse and Fastfood projections,
/// next to ordinary full-parameter training of the same >1M-parameter model in the same run.
/// Usage: intrinsic [--hidden 1024] [--steps 20] [--threads 2] [--budget-mib 2048] [--dims 100,1000,10000,100000] [--kinds fastfood,sparse,dense]
/// </summary>
public sealed class IntrinsicBenchmark : IBenchmark
{
    public string Name => "intrinsic";
    public string Description => "subspace training memory and step time vs d (dense, sparse, fastfood) next to full training of a >1M-parameter MLP";

    public Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        int hidden = IntArg(args, "--hidden", 1024), steps = IntArg(args, "--steps", 20), threads = IntArg(args, "--threads", 2);
        long budget = IntArg(args, "--budget-mib", 2048) * 1048576L;
        var dims = (Arg(args, "--dims") ?? "100,1000,10000,100000").Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var device = TorchRuntime.ResolveDevice(Arg(args, "--device") ?? "cpu");
        set_num_threads(threads);
        const int batch = 128;
        manual_seed(0);
        var x = randn([batch, 1, 28, 28], device: device);
        var y = randint(0, 10, [batch], device: device);
        long full;
        using (var probe = new MnistMlp(hidden)) full = SubspaceTraining.ParameterCount(probe);
        output.WriteLine($"# model: MLP 784-{hidden}-{hidden}-10, D = {full:N0} parameters; batch {batch}; {steps} timed steps after 3 warm-up; {threads} torch threads; device {device}");
        output.WriteLine("# memory: 'state' = tensors the method adds (projection + theta0 copy, or Adam moments); 'ws delta' = process working set after the steps minus before building");
        output.WriteLine("# the machine is shared (2 cores, other jobs running): times are noisy");
        output.WriteLine();
        output.WriteLine($"{"method",-10} {"d",10} {"ms/step",9} {"x full",7} {"state MiB",10} {"ws delta MiB",13}");

        // Full-parameter training: Adam keeps two moments per parameter.
        var (fullMs, fullWs) = Measure(steps, () =>
        {
            manual_seed(0);
            var model = new MnistMlp(hidden).to(device);
            var opt = optim.Adam(model.parameters(), 1e-3);
            return (() =>
            {
                opt.zero_grad();
                var loss = nn.functional.cross_entropy(model.forward(x), y);
                loss.backward();
                opt.step();
            }, () => { opt.Dispose(); model.Dispose(); });
        });
        output.WriteLine($"{"full",-10} {full,10:N0} {fullMs,9:F1} {1.0,7:F2} {2.0 * full * 4 / 1048576,10:F1} {fullWs / 1048576.0,13:F1}");

        foreach (var kind in (Arg(args, "--kinds") ?? "fastfood,sparse,dense").Split(',').Select(SubspaceProjection.ParseKind))
            foreach (long d in dims)
            {
                cancellationToken.ThrowIfCancellationRequested();
                string name = kind.ToString().ToLowerInvariant();
                long need = kind switch
                {
                    ProjectionKind.Dense => DenseProjection.MatrixBytes(full, d),
                    ProjectionKind.Sparse => d * (long)Math.Ceiling(Math.Sqrt(full)) * 12,
                    _ => 0,
                };
                if (need > budget)
                {
                    output.WriteLine($"{name,-10} {d,10:N0}   skipped: needs {need / 1048576.0:N0} MiB ({(kind == ProjectionKind.Dense ? $"{d} x {full} float32 matrix" : "indices and values")}), above the {budget / 1048576} MiB budget");
                    continue;
                }
                long state = 0;
                var (ms, ws) = Measure(steps, () =>
                {
                    manual_seed(0);
                    var model = new MnistMlp(hidden).to(device);
                    var subspace = new SubspaceModel(model, d, new ProjectionOptions(kind, Seed: 1, MemoryBudgetBytes: budget), said: false, device);
                    var opt = optim.Adam(subspace.TrainableParameters, 1e-2);
                    state = subspace.Projection.StateBytes + full * 4 + 2 * d * 4;
                    return (() =>
                    {
                        subspace.WriteParameters();
                        var loss = nn.functional.cross_entropy(model.forward(x), y);
                        loss.backward();
                        subspace.PullGradients();
                        opt.step();
                    }, () => { opt.Dispose(); subspace.Dispose(); model.Dispose(); });
                });
                output.WriteLine($"{name,-10} {d,10:N0} {ms,9:F1} {ms / fullMs,7:F2} {state / 1048576.0,10:F1} {ws / 1048576.0,13:F1}");
            }
        output.WriteLine();
        output.WriteLine("# targets: fastfood at d = 1e5 within 1 GB extra memory and within 3x the full-training step time (see the 'x full' column)");
        return Task.FromResult(0);
    }

    private static (double MsPerStep, long WorkingSetDelta) Measure(int steps, Func<(Action Step, Action Dispose)> build)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        long before = process.WorkingSet64;
        var (step, dispose) = build();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                using var scope = NewDisposeScope();
                step();
            }
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++)
            {
                using var scope = NewDisposeScope();
                step();
            }
            double ms = clock.Elapsed.TotalMilliseconds / steps;
            process.Refresh();
            return (ms, process.WorkingSet64 - before);
        }
        finally
        {
            dispose();
        }
    }

    private static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static int IntArg(string[] args, string name, int fallback) =>
        Arg(args, name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : fallback;
}
