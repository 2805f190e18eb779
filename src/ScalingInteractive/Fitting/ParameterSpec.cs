using System.Collections.Immutable;

namespace ScalingInteractive.Fitting;

/// <summary>
/// One parameter of a scaling law. The optimiser works on the internal value; users see the reported value,
/// which is <c>exp(internal)</c> when <see cref="LogScale"/> is set (for example Chinchilla's <c>A = exp(a)</c>)
/// and the internal value otherwise. Bounds and starts are in internal units.
/// </summary>
/// <param name="Name">Reported name, e.g. <c>A</c>.</param>
/// <param name="Lower">Lower bound of the internal value (negative infinity: none).</param>
/// <param name="Upper">Upper bound of the internal value (positive infinity: none).</param>
/// <param name="Starts">Start values of the internal value; the start grid is the product over parameters.</param>
/// <param name="LogScale">The internal value is the logarithm of the reported one.</param>
public sealed record ParameterSpec(string Name, double Lower, double Upper, ImmutableArray<double> Starts, bool LogScale = false)
{
    /// <summary>Name of the internal value: <c>log Name</c> for log-scale parameters.</summary>
    public string InternalName => LogScale ? "log " + Name : Name;

    /// <summary>An unbounded parameter.</summary>
    public static ParameterSpec Free(string name, params double[] starts) =>
        new(name, double.NegativeInfinity, double.PositiveInfinity, [.. starts]);

    /// <summary>An unbounded parameter fitted as its logarithm (starts are logarithms).</summary>
    public static ParameterSpec Log(string name, params double[] logStarts) =>
        new(name, double.NegativeInfinity, double.PositiveInfinity, [.. logStarts], LogScale: true);

    /// <summary>A parameter with bounds.</summary>
    public static ParameterSpec Bounded(string name, double lower, double upper, params double[] starts) =>
        new(name, lower, upper, [.. starts]);

    /// <summary>Reported value of an internal value.</summary>
    public double ToReported(double internalValue) => LogScale ? Math.Exp(internalValue) : internalValue;

    /// <summary>Internal value of a reported value (its logarithm for log-scale parameters, which must be positive).</summary>
    public double ToInternal(double reportedValue)
    {
        if (LogScale && !(reportedValue > 0))
            throw new ArgumentException($"Parameter {Name} is fitted as log {Name}, so its value must be positive; got {reportedValue}.", nameof(reportedValue));
        return LogScale ? Math.Log(reportedValue) : reportedValue;
    }

    /// <summary>True when the parameter has a finite lower or upper bound.</summary>
    public bool IsBounded => !double.IsNegativeInfinity(Lower) || !double.IsPositiveInfinity(Upper);

    /// <summary>Checks bounds and starts; throws an <see cref="ArgumentException"/> naming the problem.</summary>
    public void Validate(string lawName)
    {
        if (string.IsNullOrWhiteSpace(Name)) throw new ArgumentException($"Law '{lawName}': a parameter has an empty name.");
        if (double.IsNaN(Lower) || double.IsNaN(Upper) || Lower >= Upper)
            throw new ArgumentException($"Law '{lawName}', parameter {Name}: bounds [{Lower}, {Upper}] are empty; the lower bound must be below the upper bound.");
        if (Starts.IsDefaultOrEmpty)
            throw new ArgumentException($"Law '{lawName}', parameter {Name}: the start grid has no values; give at least one start.");
        foreach (double s in Starts)
        {
            if (!double.IsFinite(s))
                throw new ArgumentException($"Law '{lawName}', parameter {Name}: start value {s} is not a finite number.");
            if (s < Lower || s > Upper)
                throw new ArgumentException($"Law '{lawName}', parameter {Name}: the bounds [{Lower}, {Upper}] exclude start value {s}; " +
                                            "every start of the grid must lie within the bounds (widen the bounds or change the starts).");
        }
    }
}

/// <summary>One input variable of a law (e.g. <c>N</c>), and whether it must be positive (the law takes its logarithm).</summary>
/// <param name="Name">Input name as in the formula.</param>
/// <param name="MustBePositive">The law takes its logarithm or a non-integer power, so values must be &gt; 0.</param>
/// <param name="Description">What the input is.</param>
public sealed record InputSpec(string Name, bool MustBePositive, string Description);
