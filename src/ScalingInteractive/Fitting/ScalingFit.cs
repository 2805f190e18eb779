using ScalingInteractive.Core;
using System.Diagnostics;

namespace ScalingInteractive.Fitting;

/// <summary>Options of a multi-start fit.</summary>
public sealed record FitOptions
{
    /// <summary>Loss on log residuals (default Huber, as Hoffmann et al. 2022).</summary>
    public LossKind Loss { get; init; } = LossKind.Huber;

    /// <summary>Scale of the Huber and Cauchy losses (default 1e-3).</summary>
    public double Delta { get; init; } = 1e-3;

    /// <summary>Start points in internal units (null: the law's default grid).</summary>
    public IReadOnlyList<double[]>? Starts { get; init; }

    /// <summary>Stopping rules of each local optimisation.</summary>
    public OptimizerSettings Settings { get; init; } = new();

    /// <summary>Which L-BFGS implementation to use.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Lbfgs;

    /// <summary>Parallel workers (-1: all cores).</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;

    /// <summary>Told the number of starts finished (the package's one progress interface; reports come from worker threads one at a time).</summary>
    public IProgressSink? Progress { get; init; }

    /// <summary>Stops the fit early with an <see cref="OperationCanceledException"/>.</summary>
    public CancellationToken CancellationToken { get; init; }

    internal RobustLoss RobustLoss => new(Loss, Delta);
}

/// <summary>Options of a bootstrap.</summary>
public sealed record BootstrapOptions
{
    /// <summary>Number of resamples (default 1,000).</summary>
    public int Resamples { get; init; } = 1000;

    /// <summary>Seed of the resampling; the same seed gives the same result regardless of the number of threads.</summary>
    public int Seed { get; init; } = 0;

    /// <summary>Confidence level of the percentile intervals (default 0.95).</summary>
    public double Level { get; init; } = 0.95;

    /// <summary>Told the number of resamples finished (the package's one progress interface; reports come one at a time).</summary>
    public IProgressSink? Progress { get; init; }

    /// <summary>Stops the bootstrap early with an <see cref="OperationCanceledException"/>.</summary>
    public CancellationToken CancellationToken { get; init; }
}

/// <summary>A straight-line fit of <c>log y = log A + alpha log x</c> by least squares (law 3's closed form).</summary>
/// <param name="A">Prefactor <c>exp(intercept)</c>.</param>
/// <param name="Alpha">Slope in log-log space.</param>
/// <param name="AlphaStandardError">Standard error of the slope.</param>
/// <param name="RSquaredLog">R^2 of the line in log space.</param>
public sealed record LogLogLine(double A, double Alpha, double AlphaStandardError, double RSquaredLog);

/// <summary>
/// The fitting engine: robust multi-start L-BFGS fits of any <see cref="ScalingLaw"/>, bootstrap uncertainty,
/// extrapolation checks and model comparison.
/// </summary>
public static class ScalingFit
{
    /// <summary>
    /// Fits a law: minimises the summed loss of log residuals from every start of the grid in parallel and keeps
    /// the best converged optimum. Throws an <see cref="ArgumentException"/> for unusable data and an
    /// <see cref="InvalidDataException"/> when no start converges.
    /// </summary>
    public static ScalingLawFit Fit(ScalingLaw law, FitData data, FitOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(law);
        ArgumentNullException.ThrowIfNull(data);
        options ??= new FitOptions();
        var clock = Stopwatch.StartNew();
        Validate(law, data, options);
        var prepared = new PreparedData(data);
        var starts = options.Starts ?? law.StartGrid();
        int p = law.Parameters.Length;
        var lower = law.Parameters.Select(q => q.Lower).ToArray();
        var upper = law.Parameters.Select(q => q.Upper).ToArray();
        bool bounded = law.Parameters.Any(q => q.IsBounded);
        var solutions = new double[starts.Count * p];
        var values = new double[starts.Count];
        var converged = new bool[starts.Count];
        var iterations = new int[starts.Count];
        int done = 0;
        Parallel.For(0, starts.Count,
            new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism, CancellationToken = options.CancellationToken },
            () => (Workspace: new LbfgsWorkspace(p, options.Settings.Memory), Problem: new FitProblem(law, prepared, options.RobustLoss)),
            (index, state, local) =>
            {
                var x = solutions.AsSpan(index * p, p);
                starts[index].CopyTo(x);
                var outcome = Minimize(local.Workspace, local.Problem, x, lower, upper, options.Settings, options.Optimizer, bounded);
                values[index] = outcome.Value;
                converged[index] = outcome.Converged && double.IsFinite(outcome.Value);
                iterations[index] = outcome.Iterations;
                int finished = Interlocked.Increment(ref done);
                if (options.Progress is not null && (finished % 64 == 0 || finished == starts.Count))
                    lock (options.Progress) options.Progress.Report(finished, $"{finished} of {starts.Count} starts");
                return local;
            },
            _ => { });
        options.CancellationToken.ThrowIfCancellationRequested();

        int best = -1;
        for (int i = 0; i < starts.Count; i++)
            if (converged[i] && (best < 0 || values[i] < values[best])) best = i;
        if (best < 0)
            throw new InvalidDataException($"No start of the {starts.Count}-point grid converged when fitting law '{law.Name}' to {data.Count} points " +
                                           $"(iteration limit {options.Settings.MaxIterations}). Check that the data follow the law, widen the start grid, or raise the iteration limit.");
        var theta = solutions.AsSpan(best * p, p).ToArray();
        double objective = values[best];
        // Polish the best optimum with no tolerance (until no step lowers the objective): the grid's stopping rule
        // is loose enough to end plateau starts quickly, the reported optimum should be exact.
        if (options.Optimizer == OptimizerKind.Lbfgs)
        {
            var polished = theta.ToArray();
            var polish = new LbfgsWorkspace(p, Math.Max(options.Settings.Memory, 20)).Minimize(new FitProblem(law, prepared, options.RobustLoss), polished, lower, upper,
                options.Settings with { GradientTolerance = 0, FunctionTolerance = 0, MaxIterations = 10 * options.Settings.MaxIterations });
            if (polish.Value <= objective)
            {
                theta = polished;
                objective = polish.Value;
            }
        }
        int convergedCount = converged.Count(c => c);
        int distinct = CountDistinctOptima(values, converged);
        var fit = ScalingLawFit.Create(law, data, prepared, theta, objective, options, starts.Count, convergedCount, distinct, iterations[best], clock.Elapsed);
        return law is PowerLaw ? fit with { Line = LogLogLine(data) } : fit;
    }

    /// <summary>
    /// Bootstrap: resamples the points with replacement, refits each resample from the best estimate (same loss and
    /// optimiser, in parallel), and returns the fit with standard errors, percentile intervals and the covariance.
    /// </summary>
    public static ScalingLawFit Bootstrap(ScalingLawFit fit, BootstrapOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(fit);
        options ??= new BootstrapOptions();
        if (options.Resamples < 2) throw new ArgumentException($"Resamples is {options.Resamples}; a bootstrap needs at least 2.", nameof(options));
        if (!(options.Level > 0 && options.Level < 1)) throw new ArgumentException($"Level is {options.Level}; it must be in (0, 1), e.g. 0.95.", nameof(options));
        var clock = Stopwatch.StartNew();
        var law = fit.Law;
        var prepared = fit.Prepared;
        int n = prepared.Count, p = law.Parameters.Length, count = options.Resamples;
        var lower = law.Parameters.Select(q => q.Lower).ToArray();
        var upper = law.Parameters.Select(q => q.Upper).ToArray();
        bool bounded = law.Parameters.Any(q => q.IsBounded);
        // Seeds drawn up front so the result does not depend on how the work is spread over threads.
        var master = new Random(options.Seed);
        var seeds = Enumerable.Range(0, count).Select(_ => master.Next()).ToArray();
        var solutions = new double[count * p];
        var ok = new bool[count];
        int done = 0;
        Parallel.For(0, count,
            new ParallelOptions { CancellationToken = options.CancellationToken, MaxDegreeOfParallelism = fit.Options.MaxDegreeOfParallelism },
            () => (Workspace: new LbfgsWorkspace(p, fit.Options.Settings.Memory),
                   Problem: new FitProblem(law, prepared, fit.Options.RobustLoss) { Weights = new double[n] }),
            (index, state, local) =>
            {
                var weights = local.Problem.Weights!;
                Array.Clear(weights);
                var random = new Random(seeds[index]);
                for (int i = 0; i < n; i++) weights[random.Next(n)] += 1;
                var x = solutions.AsSpan(index * p, p);
                fit.Theta.CopyTo(x);
                var outcome = Minimize(local.Workspace, local.Problem, x, lower, upper, fit.Options.Settings, fit.Options.Optimizer, bounded);
                ok[index] = outcome.Converged && double.IsFinite(outcome.Value);
                int finished = Interlocked.Increment(ref done);
                if (options.Progress is not null && (finished % 64 == 0 || finished == count))
                    lock (options.Progress) options.Progress.Report(finished, $"{finished} of {count} resamples");
                return local;
            },
            _ => { });
        options.CancellationToken.ThrowIfCancellationRequested();
        var samples = Enumerable.Range(0, count).Where(i => ok[i]).Select(i => law.ToReported(solutions.AsSpan(i * p, p))).ToArray();
        if (samples.Length < 2)
            throw new InvalidDataException($"Only {samples.Length} of {count} bootstrap refits converged; the fit is too unstable for a bootstrap.");
        return fit with { Bootstrap = BootstrapSummary.Create(law, samples, count, options.Seed, options.Level, clock.Elapsed) };
    }

    /// <summary>
    /// Extrapolation check: fits on the points a filter keeps (for example <c>N&lt;=1e9</c>, the smaller models) and
    /// reports the error on the held-out rest.
    /// </summary>
    public static ScalingLawFit Extrapolate(ScalingLaw law, FitData data, string trainFilter, FitOptions? options = null) =>
        Extrapolate(law, data, PointFilter.Parse(trainFilter, data.XNames.Append(data.YName).ToArray()).Matches(data), options, trainFilter);

    /// <summary>Extrapolation check with a predicate choosing the training points.</summary>
    public static ScalingLawFit Extrapolate(ScalingLaw law, FitData data, Func<FitPoint, bool> train, FitOptions? options = null, string description = "predicate")
    {
        var (kept, rest) = data.Split(train);
        if (rest.Count == 0)
            throw new ArgumentException($"The training filter '{description}' keeps all {data.Count} points; nothing is left to check the extrapolation on.", nameof(train));
        if (kept.Count == 0)
            throw new ArgumentException($"The training filter '{description}' keeps none of the {data.Count} points.", nameof(train));
        var fit = Fit(law, kept, options);
        return fit with { Holdout = HoldoutCheck.Create(fit, rest, description) };
    }

    /// <summary>Least-squares line in log-log space (law 3's closed form), with the slope's standard error.</summary>
    public static LogLogLine LogLogLine(FitData data)
    {
        if (data.XNames.Length != 1) throw new ArgumentException($"A log-log line needs one input column; got {data.XNames.Length}.", nameof(data));
        var lx = data.X[0].Select(v => v > 0 ? Math.Log(v) : throw new ArgumentException($"Column {data.XNames[0]}: {v} is not positive; a log-log line needs positive values.")).ToArray();
        var ly = data.Y.Select(v => v > 0 ? Math.Log(v) : throw new ArgumentException($"Column {data.YName}: {v} is not positive; a log-log line needs positive values.")).ToArray();
        int n = lx.Length;
        double mx = lx.Average(), my = ly.Average();
        double sxx = lx.Sum(v => (v - mx) * (v - mx)), sxy = lx.Zip(ly).Sum(t => (t.First - mx) * (t.Second - my)), syy = ly.Sum(v => (v - my) * (v - my));
        if (sxx == 0) throw new ArgumentException($"Column {data.XNames[0]} is constant; a line needs at least two distinct x values.", nameof(data));
        double slope = sxy / sxx, intercept = my - slope * mx;
        double rss = lx.Zip(ly).Sum(t => Math.Pow(t.Second - intercept - slope * t.First, 2));
        double se = n > 2 ? Math.Sqrt(rss / (n - 2) / sxx) : double.NaN;
        return new LogLogLine(Math.Exp(intercept), slope, se, syy > 0 ? 1 - rss / syy : 1);
    }

    /// <summary>Compares fits of different laws on the same data by AIC and BIC (lower is better).</summary>
    public static LawComparison Compare(params ScalingLawFit[] fits)
    {
        if (fits.Length == 0) throw new ArgumentException("Give at least one fit to compare.", nameof(fits));
        var counts = fits.Select(f => f.Data.Count).Distinct().ToArray();
        if (counts.Length > 1) throw new ArgumentException($"AIC/BIC compare fits on the same data; these fits have {string.Join(", ", counts)} points.", nameof(fits));
        return new LawComparison([.. fits]);
    }

    /// <summary>Runs one more local optimisation from the fit's optimum with other settings; returns the objective reached, converged or not.</summary>
    internal static double Refine(ScalingLawFit fit, OptimizerSettings settings)
    {
        var law = fit.Law;
        var x = fit.Theta.ToArray();
        var workspace = new LbfgsWorkspace(x.Length, settings.Memory);
        var outcome = workspace.Minimize(new FitProblem(law, fit.Prepared, fit.Options.RobustLoss), x,
            law.Parameters.Select(q => q.Lower).ToArray(), law.Parameters.Select(q => q.Upper).ToArray(), settings);
        return outcome.Value;
    }

    internal static OptimizationOutcome Minimize(LbfgsWorkspace workspace, FitProblem problem, Span<double> x, double[] lower, double[] upper,
        OptimizerSettings settings, OptimizerKind kind, bool bounded) =>
        kind == OptimizerKind.MathNet
            ? MathNetOptimizer.Minimize(problem, x, lower, upper, settings, bounded)
            : workspace.Minimize(problem, x, lower, upper, settings);

    /// <summary>
    /// Counts distinct optima among converged starts by their objective (values within 1e-6 relative are one optimum).
    /// Parameters are not compared: degenerate optima (a term driven to zero) form continua of equally good points.
    /// </summary>
    private static int CountDistinctOptima(double[] values, bool[] converged)
    {
        var sorted = values.Where((_, i) => converged[i]).Order().ToArray();
        int count = sorted.Length > 0 ? 1 : 0;
        double anchor = sorted.Length > 0 ? sorted[0] : 0;
        foreach (double v in sorted)
            if (v - anchor > 1e-6 * Math.Max(Math.Abs(anchor), 1e-300))
            {
                count++;
                anchor = v;
            }
        return count;
    }

    private static void Validate(ScalingLaw law, FitData data, FitOptions options)
    {
        law.Validate();
        new RobustLoss(options.Loss, options.Delta).Validate();
        if (data.XNames.Length != law.Inputs.Length)
            throw new ArgumentException($"Law '{law.Name}' takes {law.Inputs.Length} input(s) ({string.Join(", ", law.Inputs.Select(i => i.Name))}) " +
                                        $"but the data have {data.XNames.Length} column(s) ({string.Join(", ", data.XNames)}); give one x column per input, in that order.");
        int p = law.Parameters.Length;
        if (data.Count < p + 1)
            throw new ArgumentException($"Law '{law.Name}' has {p} parameters, so it needs at least {p + 1} points; got {data.Count}.");
        for (int j = 0; j < law.Inputs.Length; j++)
        {
            if (law.Inputs[j].MustBePositive)
                for (int i = 0; i < data.Count; i++)
                    if (!(data.X[j][i] > 0))
                        throw new ArgumentException($"Column {data.XNames[j]} (input {law.Inputs[j].Name} of law '{law.Name}'), point {i}: {data.X[j][i]} is not positive; the law takes its logarithm, so values must be > 0.");
            if (data.X[j].Distinct().Count() == 1)
                throw new ArgumentException($"Column {data.XNames[j]} is constant ({data.X[j][0]} at every point); the law's dependence on {law.Inputs[j].Name} cannot be fitted. Give varied values or use a law without that input.");
        }
        for (int i = 0; i < data.Count; i++)
            if (!(data.Y[i] > 0))
                throw new ArgumentException($"Column {data.YName}, point {i}: {data.Y[i]} is not positive; fits are on log values, so observed values must be > 0.");
        if (data.Y.Distinct().Count() == 1)
            throw new ArgumentException($"Column {data.YName} is constant ({data.Y[0]} at every point); there is nothing to fit.");
        if (options.Starts is { } starts)
        {
            if (starts.Count == 0) throw new ArgumentException("The start grid is empty; give at least one start or leave Starts null for the law's grid.");
            foreach (var start in starts)
            {
                if (start.Length != p) throw new ArgumentException($"A start has {start.Length} values; law '{law.Name}' has {p} parameters ({string.Join(", ", law.Parameters.Select(q => q.InternalName))}).");
                for (int j = 0; j < p; j++)
                    if (!(start[j] >= law.Parameters[j].Lower && start[j] <= law.Parameters[j].Upper))
                        throw new ArgumentException($"Law '{law.Name}', parameter {law.Parameters[j].Name}: the bounds [{law.Parameters[j].Lower}, {law.Parameters[j].Upper}] exclude start value {start[j]}.");
            }
        }
    }
}
