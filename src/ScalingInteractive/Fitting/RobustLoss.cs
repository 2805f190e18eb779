using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ScalingInteractive.Fitting;

/// <summary>The loss applied to each log residual <c>r = log(prediction) - log(observed)</c>; summed over points.</summary>
public enum LossKind
{
    /// <summary>Huber: <c>r^2/2</c> for <c>|r| &lt;= delta</c>, <c>delta (|r| - delta/2)</c> beyond (Hoffmann et al. 2022; default delta 1e-3).</summary>
    Huber,
    /// <summary>Squared error <c>r^2/2</c> (least squares in log space).</summary>
    Squared,
    /// <summary>Cauchy: <c>delta^2/2 log(1 + (r/delta)^2)</c>, which discounts outliers more strongly than Huber.</summary>
    Cauchy,
}

/// <summary>A robust loss with its scale (the delta of Huber and Cauchy).</summary>
/// <param name="Kind">Which loss.</param>
/// <param name="Delta">Scale parameter (ignored by <see cref="LossKind.Squared"/>).</param>
public readonly record struct RobustLoss(LossKind Kind, double Delta)
{
    /// <summary>The loss of Hoffmann et al. (2022) and Besiroglu et al. (2024): Huber with delta 1e-3.</summary>
    public static RobustLoss Default => new(LossKind.Huber, 1e-3);

    /// <summary>Loss value of one residual and its derivative.</summary>
    public double Value(double r, out double derivative)
    {
        switch (Kind)
        {
            case LossKind.Squared:
                derivative = r;
                return 0.5 * r * r;
            case LossKind.Cauchy:
                double q = r / Delta;
                derivative = r / (1 + q * q);
                return 0.5 * Delta * Delta * Math.Log(1 + q * q);
            default:
                double a = Math.Abs(r);
                derivative = Math.Clamp(r, -Delta, Delta);
                return a <= Delta ? 0.5 * r * r : Delta * (a - 0.5 * Delta);
        }
    }

    /// <summary>Checks the scale; throws an <see cref="ArgumentException"/> naming the problem.</summary>
    public void Validate()
    {
        if (Kind != LossKind.Squared && !(Delta > 0 && double.IsFinite(Delta)))
            throw new ArgumentException($"The {Kind} loss needs a positive finite delta; got {Delta}.", "delta");
    }
}

/// <summary>Loss kernels specialised at compile time (struct generics) for the fused law-1 loop.</summary>
internal interface ILossKernel
{
    static abstract double Scalar(double r, double delta, out double derivative);
    static abstract Vector256<double> Vector(Vector256<double> r, Vector256<double> delta, out Vector256<double> derivative);
    static abstract Vector512<double> Vector(Vector512<double> r, Vector512<double> delta, out Vector512<double> derivative);
}

internal struct HuberKernel : ILossKernel
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Scalar(double r, double delta, out double derivative)
    {
        double a = Math.Abs(r);
        derivative = Math.Clamp(r, -delta, delta);
        return a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Vector(Vector256<double> r, Vector256<double> delta, out Vector256<double> derivative)
    {
        var a = Vector256.Abs(r);
        derivative = Vector256.Min(Vector256.Max(r, -delta), delta);
        var inner = Vector256.Create(0.5) * r * r;
        var outer = delta * (a - Vector256.Create(0.5) * delta);
        return Vector256.ConditionalSelect(Vector256.LessThanOrEqual(a, delta), inner, outer);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Vector(Vector512<double> r, Vector512<double> delta, out Vector512<double> derivative)
    {
        var a = Vector512.Abs(r);
        derivative = Vector512.Min(Vector512.Max(r, -delta), delta);
        var inner = Vector512.Create(0.5) * r * r;
        var outer = delta * (a - Vector512.Create(0.5) * delta);
        return Vector512.ConditionalSelect(Vector512.LessThanOrEqual(a, delta), inner, outer);
    }
}

internal struct SquaredKernel : ILossKernel
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Scalar(double r, double delta, out double derivative)
    {
        derivative = r;
        return 0.5 * r * r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Vector(Vector256<double> r, Vector256<double> delta, out Vector256<double> derivative)
    {
        derivative = r;
        return Vector256.Create(0.5) * r * r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Vector(Vector512<double> r, Vector512<double> delta, out Vector512<double> derivative)
    {
        derivative = r;
        return Vector512.Create(0.5) * r * r;
    }
}

internal struct CauchyKernel : ILossKernel
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Scalar(double r, double delta, out double derivative)
    {
        double q = r / delta;
        derivative = r / (1 + q * q);
        return 0.5 * delta * delta * Math.Log(1 + q * q);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Vector(Vector256<double> r, Vector256<double> delta, out Vector256<double> derivative)
    {
        var q = r / delta;
        var one = Vector256.Create(1.0);
        var s = one + q * q;
        derivative = r / s;
        return Vector256.Create(0.5) * delta * delta * Vector256.Log(s);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Vector(Vector512<double> r, Vector512<double> delta, out Vector512<double> derivative)
    {
        var q = r / delta;
        var s = Vector512.Create(1.0) + q * q;
        derivative = r / s;
        return Vector512.Create(0.5) * delta * delta * Vector512.Log(s);
    }
}
