using System.Runtime.CompilerServices;
using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.Optimization;

namespace ScalingInteractive.Fitting;

/// <summary>Which L-BFGS implementation the fitting engine uses.</summary>
public enum OptimizerKind
{
    /// <summary>
    /// The package's own allocation-free limited-memory BFGS with projection onto the bounds (default): the
    /// 4,500-start law-1 grid needs it to be fast (see the <c>fitting</c> benchmark for the side-by-side figures).
    /// </summary>
    Lbfgs,
    /// <summary>MathNet.Numerics 5.0.0: <c>LimitedMemoryBfgsMinimizer</c> without bounds, <c>BfgsBMinimizer</c> with bounds.</summary>
    MathNet,
}

/// <summary>Stopping rules of one local optimisation.</summary>
/// <param name="MaxIterations">Iteration limit; a start that reaches it counts as not converged.</param>
/// <param name="GradientTolerance">Converged when the largest projected-gradient component is at most this.</param>
/// <param name="FunctionTolerance">Converged when one step lowers the objective by at most this fraction of its value.</param>
/// <param name="Memory">Number of correction pairs L-BFGS keeps.</param>
public sealed record OptimizerSettings(int MaxIterations = 2000, double GradientTolerance = 1e-9, double FunctionTolerance = 1e-10, int Memory = 10);

/// <summary>The outcome of one local optimisation.</summary>
internal readonly record struct OptimizationOutcome(double Value, int Iterations, int Evaluations, bool Converged);

/// <summary>One objective: a law on prepared data with optional weights (bootstrap counts) and a loss.</summary>
internal sealed class FitProblem(ScalingLaw law, PreparedData data, RobustLoss loss)
{
    public ScalingLaw Law { get; } = law;
    public PreparedData Data { get; } = data;
    public RobustLoss Loss { get; } = loss;
    public double[]? Weights { get; set; }
    public double Evaluate(ReadOnlySpan<double> theta, Span<double> gradient) => Law.Objective(theta, Data, Weights, Loss, gradient);
}

/// <summary>
/// Limited-memory BFGS with bounds handled by projection: the search direction is the two-loop L-BFGS direction
/// on the free variables (those not held at a bound by their gradient), each trial point is projected onto the box,
/// and the step is chosen by backtracking with the Armijo condition and quadratic interpolation. All arrays live in
/// a per-thread workspace, so an optimisation allocates nothing.
/// </summary>
internal sealed class LbfgsWorkspace
{
    private readonly int _p, _m;
    private readonly double[] _s, _y, _rho, _alpha, _g, _gNew, _xNew, _d, _pg, _xTry, _gTry;
    private readonly bool[] _active;

    public LbfgsWorkspace(int parameters, int memory)
    {
        _p = parameters;
        _m = memory;
        _s = new double[memory * parameters];
        _y = new double[memory * parameters];
        _rho = new double[memory];
        _alpha = new double[memory];
        _g = new double[parameters];
        _gNew = new double[parameters];
        _xNew = new double[parameters];
        _d = new double[parameters];
        _pg = new double[parameters];
        _xTry = new double[parameters];
        _gTry = new double[parameters];
        _active = new bool[parameters];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public OptimizationOutcome Minimize(FitProblem problem, Span<double> x, ReadOnlySpan<double> lower, ReadOnlySpan<double> upper, OptimizerSettings settings)
    {
        int p = _p;
        Span<double> g = _g, gNew = _gNew, xNew = _xNew, d = _d, pg = _pg;
        for (int i = 0; i < p; i++) x[i] = Math.Clamp(x[i], lower[i], upper[i]);
        double f = problem.Evaluate(x, g);
        int evaluations = 1, stored = 0, head = 0;
        if (!double.IsFinite(f)) return new(f, 0, evaluations, false);
        for (int iteration = 0; iteration < settings.MaxIterations; iteration++)
        {
            double pgMax = 0;
            for (int i = 0; i < p; i++)
            {
                _active[i] = (x[i] <= lower[i] && g[i] > 0) || (x[i] >= upper[i] && g[i] < 0);
                pg[i] = _active[i] ? 0 : g[i];
                pgMax = Math.Max(pgMax, Math.Abs(pg[i]));
            }
            if (pgMax <= settings.GradientTolerance) return new(f, iteration, evaluations, true);

            // Two-loop recursion on the projected gradient.
            pg.CopyTo(d);
            for (int k = 0; k < stored; k++)
            {
                int slot = (head - 1 - k + _m) % _m;
                double a = _rho[slot] * Dot(_s.AsSpan(slot * p, p), d);
                _alpha[slot] = a;
                Axpy(-a, _y.AsSpan(slot * p, p), d);
            }
            if (stored > 0)
            {
                int last = (head - 1 + _m) % _m;
                var yLast = _y.AsSpan(last * p, p);
                double gamma = 1 / (_rho[last] * Dot(yLast, yLast));
                for (int i = 0; i < p; i++) d[i] *= gamma;
            }
            for (int k = stored - 1; k >= 0; k--)
            {
                int slot = (head - 1 - k + _m) % _m;
                double b = _rho[slot] * Dot(_y.AsSpan(slot * p, p), d);
                Axpy(_alpha[slot] - b, _s.AsSpan(slot * p, p), d);
            }
            for (int i = 0; i < p; i++) d[i] = _active[i] ? 0 : -d[i];
            double slope = Dot(g, d);
            if (!(slope < 0))
            {
                stored = 0;
                for (int i = 0; i < p; i++) d[i] = -pg[i];
                slope = Dot(g, d);
            }

            double step = 1;
            if (stored == 0)
            {
                double dMax = 0;
                for (int i = 0; i < p; i++) dMax = Math.Max(dMax, Math.Abs(d[i]));
                step = Math.Min(1, 1 / dMax);
            }
            double fNew = double.NaN;
            bool accepted = false;
            for (int trial = 0; trial < 60; trial++)
            {
                double decrease = 0;
                for (int i = 0; i < p; i++)
                {
                    xNew[i] = Math.Clamp(x[i] + step * d[i], lower[i], upper[i]);
                    decrease += g[i] * (xNew[i] - x[i]);
                }
                fNew = problem.Evaluate(xNew, gNew);
                evaluations++;
                if (double.IsFinite(fNew) && fNew <= f + 1e-4 * decrease)
                {
                    accepted = true;
                    // Where the objective is nearly linear along d (Huber's linear arms far from the data), the first
                    // step is far too short: expand it while the slope stays steep and the objective keeps falling.
                    if (trial == 0) fNew = Expand(problem, x, lower, upper, f, slope, step, fNew, ref evaluations);
                    break;
                }
                double next = double.IsFinite(fNew) ? -slope * step * step / (2 * (fNew - f - slope * step)) : 0;
                step = double.IsFinite(next) ? Math.Clamp(next, 0.1 * step, 0.5 * step) : 0.1 * step;
            }
            if (!accepted)
            {
                if (stored > 0)
                {
                    stored = 0;
                    continue;
                }
                // Steepest descent found no decrease: the objective is flat to rounding here.
                return new(f, iteration, evaluations, pgMax <= 1e3 * settings.GradientTolerance || StallIsRounding(f));
            }

            // Store the correction pair when the curvature is positive.
            double sy = 0, yy = 0;
            var sSlot = _s.AsSpan(head * p, p);
            var ySlot = _y.AsSpan(head * p, p);
            for (int i = 0; i < p; i++)
            {
                sSlot[i] = xNew[i] - x[i];
                ySlot[i] = gNew[i] - g[i];
                sy += sSlot[i] * ySlot[i];
                yy += ySlot[i] * ySlot[i];
            }
            if (sy > 1e-16 * yy && sy > 0)
            {
                _rho[head] = 1 / sy;
                head = (head + 1) % _m;
                stored = Math.Min(stored + 1, _m);
            }
            double previous = f;
            xNew.CopyTo(x);
            gNew.CopyTo(g);
            f = fNew;
            if (previous - f <= settings.FunctionTolerance * Math.Max(Math.Abs(previous), Math.Abs(f)))
                return new(f, iteration + 1, evaluations, true);
        }
        return new(f, settings.MaxIterations, evaluations, false);
    }

    private static bool StallIsRounding(double f) => f == 0;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private double Expand(FitProblem problem, ReadOnlySpan<double> x, ReadOnlySpan<double> lower, ReadOnlySpan<double> upper,
        double f, double slope, double step, double fNew, ref int evaluations)
    {
        int p = _p;
        for (int expansion = 0; expansion < 30 && Dot(_gNew, _d) < 0.9 * slope; expansion++)
        {
            step *= 4;
            double decrease = 0;
            for (int i = 0; i < p; i++)
            {
                _xTry[i] = Math.Clamp(x[i] + step * _d[i], lower[i], upper[i]);
                decrease += _g[i] * (_xTry[i] - x[i]);
            }
            double fTry = problem.Evaluate(_xTry, _gTry);
            evaluations++;
            if (!(double.IsFinite(fTry) && fTry < fNew && fTry <= f + 1e-4 * decrease)) break;
            fNew = fTry;
            _xTry.CopyTo(_xNew, 0);
            _gTry.CopyTo(_gNew, 0);
        }
        return fNew;
    }

    private static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    private static void Axpy(double a, ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] += a * x[i];
    }
}

/// <summary>The MathNet.Numerics path, kept as an option and as the benchmark's baseline.</summary>
internal static class MathNetOptimizer
{
    public static OptimizationOutcome Minimize(FitProblem problem, Span<double> x, ReadOnlySpan<double> lower, ReadOnlySpan<double> upper,
        OptimizerSettings settings, bool bounded)
    {
        int p = x.Length;
        int evaluations = 0;
        var objective = ObjectiveFunction.Gradient(v =>
        {
            var gradient = new double[p];
            double value = problem.Evaluate(v.AsArray() ?? v.ToArray(), gradient);
            evaluations++;
            // MathNet's line search cannot step back from infinity; a large finite value with zero slope lets it reject the point.
            if (!double.IsFinite(value)) return (1e300, Vector<double>.Build.Dense(p));
            return (value, Vector<double>.Build.DenseOfArray(gradient));
        });
        var start = Vector<double>.Build.DenseOfArray(x.ToArray());
        try
        {
            MinimizationResult result;
            if (bounded)
            {
                for (int i = 0; i < p; i++) start[i] = Math.Clamp(start[i], lower[i], upper[i]);
                var minimizer = new BfgsBMinimizer(settings.GradientTolerance, 1e-15, settings.FunctionTolerance, settings.MaxIterations);
                result = minimizer.FindMinimum(objective, Vector<double>.Build.DenseOfArray(lower.ToArray()),
                    Vector<double>.Build.DenseOfArray(upper.ToArray()), start);
            }
            else
            {
                var minimizer = new LimitedMemoryBfgsMinimizer(settings.GradientTolerance, 1e-15, settings.FunctionTolerance, settings.Memory, settings.MaxIterations);
                result = minimizer.FindMinimum(objective, start);
            }
            for (int i = 0; i < p; i++) x[i] = result.MinimizingPoint[i];
            bool converged = result.ReasonForExit is not (ExitCondition.None or ExitCondition.ExceedIterations or ExitCondition.InvalidValues);
            double f = result.FunctionInfoAtMinimum.Value;
            return new(f, result.Iterations, evaluations, converged && f < 1e300);
        }
        catch (Exception e) when (e is MaximumIterationsException or InnerOptimizationException or OptimizationException or ArgumentException)
        {
            return new(double.NaN, settings.MaxIterations, evaluations, false);
        }
    }
}
