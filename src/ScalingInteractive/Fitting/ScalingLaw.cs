using System.Collections.Immutable;

namespace ScalingInteractive.Fitting;

/// <summary>
/// A parametric scaling law <c>y = f(x; theta)</c> fitted on log values. Each law states its formula, inputs,
/// parameters (names, bounds, default start grid), the paper it comes from, and evaluates the logarithm of its
/// prediction with the gradient with respect to the internal parameters in one pass.
/// </summary>
public abstract class ScalingLaw
{
    /// <summary>Catalogue key, e.g. <c>chinchilla</c>.</summary>
    public abstract string Name { get; }

    /// <summary>Human title, e.g. "Chinchilla data/model law".</summary>
    public abstract string Title { get; }

    /// <summary>The formula in plain text.</summary>
    public abstract string Formula { get; }

    /// <summary>The paper the law comes from.</summary>
    public abstract string Reference { get; }

    /// <summary>Input variables, in the order the data columns map to them.</summary>
    public abstract ImmutableArray<InputSpec> Inputs { get; }

    /// <summary>Parameters, in internal order.</summary>
    public abstract ImmutableArray<ParameterSpec> Parameters { get; }

    /// <summary>Name of the predicted quantity (for example <c>L</c> or <c>BLEU</c>).</summary>
    public virtual string OutputName => "y";

    /// <summary>False when the gradient is computed by finite differences (user-defined laws without a gradient).</summary>
    public virtual bool HasAnalyticGradient => true;

    /// <summary>Reported parameter names (law 1: E, A, B, alpha, beta).</summary>
    public IEnumerable<string> ParameterNames => Parameters.Select(p => p.Name);

    /// <summary>
    /// The logarithm of the prediction at one point, and (when <paramref name="gradient"/> is not empty) its gradient
    /// with respect to the internal parameters. Returns NaN where the prediction is not positive and finite.
    /// </summary>
    /// <param name="theta">Internal parameter values.</param>
    /// <param name="x">Input values of the point.</param>
    /// <param name="logX">Logarithms of the input values (NaN where an input is not positive).</param>
    /// <param name="gradient">Receives d log(prediction) / d theta; may be empty.</param>
    public abstract double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient);

    /// <summary>The prediction at one point for internal parameter values.</summary>
    public double Value(ReadOnlySpan<double> theta, params ReadOnlySpan<double> x)
    {
        Span<double> logX = stackalloc double[x.Length];
        for (int i = 0; i < x.Length; i++) logX[i] = x[i] > 0 ? Math.Log(x[i]) : double.NaN;
        return Math.Exp(LogValue(theta, x, logX, []));
    }

    /// <summary>The prediction at one point for reported parameter values (law 1: E, A, B, alpha, beta).</summary>
    public double Evaluate(IReadOnlyList<double> reported, params double[] x) => Value(ToInternal(reported), x);

    /// <summary>Reported values of internal parameter values.</summary>
    public double[] ToReported(ReadOnlySpan<double> theta)
    {
        var reported = new double[theta.Length];
        for (int i = 0; i < theta.Length; i++) reported[i] = Parameters[i].ToReported(theta[i]);
        return reported;
    }

    /// <summary>Internal parameter values of reported ones.</summary>
    public double[] ToInternal(IReadOnlyList<double> reported)
    {
        if (reported.Count != Parameters.Length)
            throw new ArgumentException($"Law '{Name}' has {Parameters.Length} parameters ({string.Join(", ", ParameterNames)}); got {reported.Count} values.", nameof(reported));
        return Parameters.Select((p, i) => p.ToInternal(reported[i])).ToArray();
    }

    /// <summary>The default start grid: the product of every parameter's start values (internal units).</summary>
    public double[][] StartGrid() => Product(Parameters.Select(p => p.Starts).ToArray());

    /// <summary>Number of points of the default start grid.</summary>
    public int StartGridSize => Parameters.Aggregate(1, (n, p) => n * p.Starts.Length);

    /// <summary>Checks names, bounds and start grid; throws an <see cref="ArgumentException"/> naming the problem.</summary>
    public void Validate()
    {
        if (Parameters.IsDefaultOrEmpty) throw new ArgumentException($"Law '{Name}' declares no parameters.");
        if (Inputs.IsDefaultOrEmpty) throw new ArgumentException($"Law '{Name}' declares no inputs.");
        foreach (var p in Parameters) p.Validate(Name);
        var duplicate = Parameters.GroupBy(p => p.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Law '{Name}': parameter name '{duplicate.Key}' appears twice.");
    }

    /// <summary>
    /// The fitting objective: sum over points of <c>weight * loss(log prediction - log y)</c>, and its gradient.
    /// Returns positive infinity where a prediction is not positive (the line search then steps back).
    /// </summary>
    internal virtual double Objective(ReadOnlySpan<double> theta, PreparedData data, ReadOnlySpan<double> weights, RobustLoss loss, Span<double> gradient)
    {
        int k = data.InputCount, p = theta.Length;
        gradient.Clear();
        Span<double> pointGradient = stackalloc double[p];
        double total = 0;
        for (int i = 0; i < data.Count; i++)
        {
            double w = weights.IsEmpty ? 1 : weights[i];
            if (w == 0) continue;
            double logPrediction = LogValue(theta, data.Rows.AsSpan(i * k, k), data.LogRows.AsSpan(i * k, k), pointGradient);
            if (!double.IsFinite(logPrediction)) return double.PositiveInfinity;
            total += w * loss.Value(logPrediction - data.LogY[i], out double derivative);
            double scale = w * derivative;
            for (int j = 0; j < p; j++) gradient[j] += scale * pointGradient[j];
        }
        return total;
    }

    internal static double[][] Product(ImmutableArray<double>[] axes)
    {
        int total = axes.Aggregate(1, (n, a) => n * a.Length);
        var grid = new double[total][];
        for (int index = 0; index < total; index++)
        {
            var point = new double[axes.Length];
            int rest = index;
            for (int j = axes.Length - 1; j >= 0; j--)
            {
                point[j] = axes[j][rest % axes[j].Length];
                rest /= axes[j].Length;
            }
            grid[index] = point;
        }
        return grid;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name}: {Formula}";
}

/// <summary>Data laid out for the objective: inputs row by row and column by column, their logarithms and log y.</summary>
internal sealed class PreparedData
{
    public PreparedData(FitData data)
    {
        Count = data.Count;
        InputCount = data.XNames.Length;
        Columns = data.X.Select(c => c.ToArray()).ToArray();
        LogColumns = Columns.Select(c => c.Select(v => v > 0 ? Math.Log(v) : double.NaN).ToArray()).ToArray();
        Rows = new double[Count * InputCount];
        LogRows = new double[Count * InputCount];
        for (int i = 0; i < Count; i++)
            for (int j = 0; j < InputCount; j++)
            {
                Rows[i * InputCount + j] = Columns[j][i];
                LogRows[i * InputCount + j] = LogColumns[j][i];
            }
        Y = data.Y.ToArray();
        LogY = Y.Select(v => Math.Log(v)).ToArray();
        Ones = Enumerable.Repeat(1.0, Count).ToArray();
    }

    public double[] Ones { get; }

    public int Count { get; }
    public int InputCount { get; }
    public double[][] Columns { get; }
    public double[][] LogColumns { get; }
    public double[] Rows { get; }
    public double[] LogRows { get; }
    public double[] Y { get; }
    public double[] LogY { get; }
}
