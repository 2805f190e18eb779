using System.Diagnostics;
using ScalingInteractive.Fitting;

namespace ScalingInteractive.Bench;

/// <summary>
/// Law-1 fitting speed on a 240-point Chinchilla-shaped data set: the 4,500-start grid fit and a 4,000-resample
/// bootstrap, against the SciPy reference (26 s grid, 27 s bootstrap on the 2-core machine), with the objective
/// compared to a long-run reference and MathNet.Numerics' L-BFGS timed side by side on a slice of the same work.
/// </summary>
public sealed class FittingBenchmark : IBenchmark
{
    private const double SciPyGridSeconds = 26, SciPyBootstrapSeconds = 27;

    public string Name => "fitting";
    public string Description => "law-1 fit: 4,500-start grid and 4,000-resample bootstrap on 240 points vs SciPy (26 s / 27 s); own L-BFGS vs MathNet";

    /// <summary>
    /// The 240-point data set: 30 model sizes from 7e7 to 1.6e10 parameters times 8 token counts from 5e9 to 5e11,
    /// losses from the published Chinchilla fit (E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28) times log-normal
    /// noise (sigma 0.02, seed 2022).
    /// </summary>
    public static FitData ChinchillaShaped()
    {
        var random = new Random(2022);
        var n = new List<double>();
        var d = new List<double>();
        var loss = new List<double>();
        foreach (double size in ComputeOptimal.LogSpaced(7e7, 1.6e10, 30))
            foreach (double tokens in ComputeOptimal.LogSpaced(5e9, 5e11, 8))
            {
                double gaussian = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
                n.Add(size);
                d.Add(tokens);
                loss.Add((1.69 + 406.4 / Math.Pow(size, 0.34) + 410.7 / Math.Pow(tokens, 0.28)) * Math.Exp(0.02 * gaussian));
            }
        return FitData.FromArrays(n.ToArray(), d.ToArray(), loss.ToArray());
    }

    public Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        bool fullMathNet = args.Contains("--full-mathnet");
        var data = ChinchillaShaped();
        var law = ScalingLaws.Chinchilla;
        output.WriteLine($"data: {data.Count} points, N {data.X[0].Min():G3}..{data.X[0].Max():G3}, D {data.X[1].Min():G3}..{data.X[1].Max():G3}, " +
                         $"loss {data.Y.Min():F2}..{data.Y.Max():F2}; {Environment.ProcessorCount} cores; vector width used: {(ChinchillaLaw.UseVector512 ? 512 : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? 256 : 64)} bits");

        if (args.Contains("--diagnose")) return Task.FromResult(Diagnose(law, data, output));

        // Warm-up (JIT) on a small grid and bootstrap.
        var warm = ScalingFit.Fit(law, data, new FitOptions { Starts = law.StartGrid().Take(100).ToArray(), CancellationToken = cancellationToken });
        ScalingFit.Bootstrap(warm, new BootstrapOptions { Resamples = 50 });

        var clock = Stopwatch.StartNew();
        double cpu0 = Cpu();
        var fit = ScalingFit.Fit(law, data, new FitOptions { CancellationToken = cancellationToken });
        double gridSeconds = clock.Elapsed.TotalSeconds, gridCpu = Cpu() - cpu0;
        output.WriteLine($"grid fit (own L-BFGS): {gridSeconds:F3} s for {fit.StartsTried} starts; {fit.StartsConverged} converged to {fit.DistinctOptima} distinct optima; " +
                         $"{SciPyGridSeconds / gridSeconds:F1}x faster than SciPy's {SciPyGridSeconds} s (target >= 20x)");
        output.WriteLine($"  CPU time {gridCpu:F3} s over {Environment.ProcessorCount} cores: {gridCpu / Environment.ProcessorCount:F3} s if the cores were idle ({SciPyGridSeconds * Environment.ProcessorCount / gridCpu:F1}x SciPy)");
        output.WriteLine("estimates: " + string.Join(", ", fit.Estimates.Select(e => $"{e.Key} = {e.Value:G6}")));

        double reference = LongRunReference(law, data, fit);
        double relative = (fit.Objective - reference) / reference;
        output.WriteLine($"objective {fit.Objective:R} vs long-run reference {reference:R}: relative difference {relative:E2} (target <= 1e-9)");

        clock.Restart();
        cpu0 = Cpu();
        var boot = ScalingFit.Bootstrap(fit, new BootstrapOptions { Resamples = 4000, Seed = 1, CancellationToken = cancellationToken });
        double bootSeconds = clock.Elapsed.TotalSeconds, bootCpu = Cpu() - cpu0;
        output.WriteLine($"bootstrap (own L-BFGS): {bootSeconds:F3} s for 4000 resamples ({boot.Bootstrap!.Converged} converged); " +
                         $"{SciPyBootstrapSeconds / bootSeconds:F1}x faster than SciPy's {SciPyBootstrapSeconds} s (target >= 20x)");
        output.WriteLine($"  CPU time {bootCpu:F3} s over {Environment.ProcessorCount} cores: {bootCpu / Environment.ProcessorCount:F3} s if the cores were idle ({SciPyBootstrapSeconds * Environment.ProcessorCount / bootCpu:F1}x SciPy)");
        output.WriteLine("standard errors: " + string.Join(", ", boot.Bootstrap.Names.Select((name, j) => $"{name} {boot.Bootstrap.StandardErrors[j]:G3}")));

        // MathNet side by side on a slice (every 10th start, 400 resamples) unless --full-mathnet.
        var grid = law.StartGrid();
        var slice = fullMathNet ? grid : grid.Where((_, i) => i % 10 == 0).ToArray();
        clock.Restart();
        var own = ScalingFit.Fit(law, data, new FitOptions { Starts = slice });
        double ownSlice = clock.Elapsed.TotalSeconds;
        clock.Restart();
        ScalingLawFit? mathNet = null;
        try
        {
            mathNet = ScalingFit.Fit(law, data, new FitOptions { Starts = slice, Optimizer = OptimizerKind.MathNet });
        }
        catch (InvalidDataException e)
        {
            output.WriteLine("MathNet grid: " + e.Message);
        }
        double mathNetSlice = clock.Elapsed.TotalSeconds;
        double scale = (double)grid.Length / slice.Length;
        output.WriteLine($"same {slice.Length} starts: own L-BFGS {ownSlice:F3} s ({own.StartsConverged} converged, objective {own.Objective:R}); " +
                         $"MathNet LimitedMemoryBfgsMinimizer {mathNetSlice:F3} s ({mathNet?.StartsConverged ?? 0} converged, objective {mathNet?.Objective ?? double.NaN:R}); " +
                         $"MathNet/own {mathNetSlice / ownSlice:F1}x; MathNet full grid ~{mathNetSlice * scale:F1} s");
        int resamples = fullMathNet ? 4000 : 400;
        clock.Restart();
        ScalingFit.Bootstrap(fit, new BootstrapOptions { Resamples = resamples, Seed = 1 });
        double ownBoot = clock.Elapsed.TotalSeconds;
        clock.Restart();
        string mathNetBoot;
        try
        {
            var mb = ScalingFit.Bootstrap(fit with { Options = fit.Options with { Optimizer = OptimizerKind.MathNet } }, new BootstrapOptions { Resamples = resamples, Seed = 1 });
            mathNetBoot = $"{clock.Elapsed.TotalSeconds:F3} s ({mb.Bootstrap!.Converged} converged)";
        }
        catch (InvalidDataException e)
        {
            mathNetBoot = $"{clock.Elapsed.TotalSeconds:F3} s, failed: {e.Message}";
        }
        output.WriteLine($"same {resamples} resamples: own L-BFGS {ownBoot:F3} s; MathNet {mathNetBoot}");
        return Task.FromResult(0);
    }

    /// <summary>Per-start iterations, evaluations and outcomes of the grid (one thread), to see where the time goes.</summary>
    private static int Diagnose(ScalingLaw law, FitData data, TextWriter output)
    {
        var prepared = new PreparedData(data);
        var problem = new FitProblem(law, prepared, RobustLoss.Default);
        var workspace = new LbfgsWorkspace(5, 10);
        var settings = new OptimizerSettings();
        var lower = law.Parameters.Select(q => q.Lower).ToArray();
        var upper = law.Parameters.Select(q => q.Upper).ToArray();
        var grid = law.StartGrid();
        // Objective evaluation cost with 512-bit and 256-bit vectors, alternated to share the machine's load.
        var theta = new[] { 0.5, 6.0, 6.0, 0.33, 0.28 };
        var g = new double[5];
        foreach (bool wide in new[] { true, false, true, false })
        {
            ChinchillaLaw.UseVector512 = wide && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
            for (int w = 0; w < 2000; w++) problem.Evaluate(theta, g);
            var timer = Stopwatch.StartNew();
            var cpu = Cpu();
            for (int w = 0; w < 100_000; w++) problem.Evaluate(theta, g);
            output.WriteLine($"objective + gradient, {(ChinchillaLaw.UseVector512 ? "Vector512" : "Vector256")}: {timer.Elapsed.TotalMilliseconds * 1000 / 100_000:F2} us wall, " +
                             $"{(Cpu() - cpu) * 1e6 / 100_000:F2} us CPU per evaluation (240 points)");
        }
        ChinchillaLaw.UseVector512 = System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated;
        var outcomes = new List<(double[] Start, OptimizationOutcome Outcome, double[] X)>();
        var clock = Stopwatch.StartNew();
        foreach (var start in grid)
        {
            var x = start.ToArray();
            outcomes.Add((start, workspace.Minimize(problem, x, lower, upper, settings), x));
        }
        output.WriteLine($"one thread: {clock.Elapsed.TotalSeconds:F2} s; evaluations {outcomes.Sum(o => (long)o.Outcome.Evaluations)}; time per evaluation {clock.Elapsed.TotalMilliseconds * 1000 / outcomes.Sum(o => (long)o.Outcome.Evaluations):F2} us");
        double best = outcomes.Where(o => o.Outcome.Converged).Min(o => o.Outcome.Value);
        foreach (var group in outcomes.GroupBy(o => (o.Outcome.Converged, Near: o.Outcome.Value <= best * (1 + 1e-6))))
        {
            var its = group.Select(o => o.Outcome.Iterations).Order().ToArray();
            output.WriteLine($"converged {group.Key.Converged}, at best {group.Key.Near}: {its.Length} starts, iterations median {its[its.Length / 2]} max {its[^1]}, evaluations {group.Sum(o => (long)o.Outcome.Evaluations)}");
            foreach (var o in group.Take(3))
                output.WriteLine($"   start [{string.Join(", ", o.Start)}] -> [{string.Join(", ", o.X.Select(v => v.ToString("G4")))}] f {o.Outcome.Value:G8} it {o.Outcome.Iterations}");
        }
        return 0;
    }

    private static double Cpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    /// <summary>Refines the best optimum with no tolerance and a large iteration budget; the fit must match its objective.</summary>
    private static double LongRunReference(ScalingLaw law, FitData data, ScalingLawFit fit)
    {
        // Zero tolerances and a large budget: from the reported optimum, from 20 spread grid starts, and with MathNet's BFGS-B.
        var exhaustive = new OptimizerSettings(MaxIterations: 100_000, GradientTolerance: 0, FunctionTolerance: 0, Memory: 20);
        double best = ScalingFit.Refine(fit, exhaustive);
        var grid = law.StartGrid();
        foreach (var start in grid.Where((_, i) => i % 225 == 7))
            best = Math.Min(best, ScalingFit.Refine(fit with { Theta = start }, exhaustive with { MaxIterations = 20_000 }));
        var mathNet = ScalingFit.Fit(law, data, new FitOptions { Starts = [fit.Theta], Optimizer = OptimizerKind.MathNet, Settings = new OptimizerSettings(100_000, 1e-14, 1e-15) });
        return Math.Min(best, mathNet.Objective);
    }

}
