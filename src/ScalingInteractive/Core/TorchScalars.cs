using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.Core;

/// <summary>
/// Tensor arithmetic with numbers that keeps every <see cref="Scalar"/> alive for the whole native call.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 turns numbers into <see cref="Scalar"/> objects implicitly (<c>x * 0.5</c>, <c>a + b</c> with its
/// hidden alpha of 1, <c>square()</c> as <c>pow(2)</c>, <c>clamp_max(1.0)</c>) and hands LibTorch only the native
/// handle. Nothing references the managed object during the call, so a garbage collection triggered by another thread
/// can run its finalizer and free the native scalar while LibTorch reads it: LibTorch then sees garbage and fails with
/// "value cannot be converted to type float without overflow" (toFloat at c10/core/Scalar.h), or silently uses a wrong
/// value. Two sweep workers allocating at once made it happen in 3 of 4 long Slurm arrays (issue 16). Here constants are
/// static scalars (never collected) and other numbers are scalars disposed after the call, which keeps them alive through
/// it. A test reads the library's IL and fails on any call that creates a temporary scalar (ScalarLifetimeTests).
/// </remarks>
public static class TorchScalars
{
    private static readonly Scalar One = 1, Two = 2, OneInt64 = 1L;

    /// <summary>a + b.</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a += b, in place.</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary>a + value.</summary>
    public static Tensor Plus(this Tensor a, double value)
    {
        using var s = value.ToScalar();
        return a.add(s, One);
    }

    /// <summary>a += value, in place.</summary>
    public static Tensor PlusInPlace(this Tensor a, double value)
    {
        using var s = value.ToScalar();
        return a.add_(s, One);
    }

    /// <summary>a += alpha * b, in place.</summary>
    public static Tensor PlusScaledInPlace(this Tensor a, Tensor b, double alpha)
    {
        using var s = alpha.ToScalar();
        return a.add_(b, s);
    }

    /// <summary>a * value.</summary>
    public static Tensor Times(this Tensor a, double value)
    {
        using var s = value.ToScalar();
        return a.mul(s);
    }

    /// <summary>a *= value, in place.</summary>
    public static Tensor TimesInPlace(this Tensor a, double value)
    {
        using var s = value.ToScalar();
        return a.mul_(s);
    }

    /// <summary>a / value.</summary>
    public static Tensor DividedBy(this Tensor a, double value)
    {
        using var s = value.ToScalar();
        return a.div(s);
    }

    /// <summary>a /= value, in place.</summary>
    public static Tensor DividedByInPlace(this Tensor a, double value)
    {
        using var s = value.ToScalar();
        return a.div_(s);
    }

    /// <summary>value / a, element-wise.</summary>
    public static Tensor Over(this double value, Tensor a)
    {
        using var s = value.ToScalar();
        using var reciprocal = a.reciprocal();
        return reciprocal.mul(s);
    }

    /// <summary>a -= value, in place.</summary>
    public static Tensor MinusInPlace(this Tensor a, double value)
    {
        using var s = value.ToScalar();
        return a.sub_(s);
    }

    /// <summary>a - value.</summary>
    public static Tensor Minus(this Tensor a, double value)
    {
        using var s = value.ToScalar();
        return a.sub(s);
    }

    /// <summary>a + value (an integer scalar: integer tensors stay integer).</summary>
    public static Tensor Plus(this Tensor a, long value)
    {
        using var s = value.ToScalar();
        return a.add(s, One);
    }

    /// <summary>a += value, in place (an integer scalar: integer tensors stay integer).</summary>
    public static Tensor PlusInPlace(this Tensor a, long value)
    {
        using var s = value.ToScalar();
        return a.add_(s, One);
    }

    /// <summary>a * value (an integer scalar: integer tensors stay integer).</summary>
    public static Tensor Times(this Tensor a, long value)
    {
        using var s = value.ToScalar();
        return a.mul(s);
    }

    /// <summary>a *= value, in place (an integer scalar: integer tensors stay integer).</summary>
    public static Tensor TimesInPlace(this Tensor a, long value)
    {
        using var s = value.ToScalar();
        return a.mul_(s);
    }

    /// <summary>a / value (true division, as LibTorch's <c>div</c>).</summary>
    public static Tensor DividedBy(this Tensor a, long value)
    {
        using var s = value.ToScalar();
        return a.div(s);
    }

    /// <summary>a /= value, in place (true division).</summary>
    public static Tensor DividedByInPlace(this Tensor a, long value)
    {
        using var s = value.ToScalar();
        return a.div_(s);
    }

    /// <summary>a - value (an integer scalar: integer tensors stay integer).</summary>
    public static Tensor Minus(this Tensor a, long value)
    {
        using var s = value.ToScalar();
        return a.sub(s);
    }

    /// <summary>Clamps a to [min, max], element-wise (integer bounds).</summary>
    public static Tensor Clamp(this Tensor a, long min, long max)
    {
        using var low = min.ToScalar();
        using var high = max.ToScalar();
        return a.clamp(low, high);
    }

    /// <summary>a[index[i]] += source[i] along <paramref name="dim"/>, in place.</summary>
    public static Tensor IndexAddInPlace(this Tensor a, long dim, Tensor index, Tensor source) => a.index_add_(dim, index, source, One);

    /// <summary>Sets every element of a to <paramref name="value"/>, in place.</summary>
    public static Tensor FillInPlace(this Tensor a, double value)
    {
        using var s = value.ToScalar();
        return a.fill_(s);
    }

    /// <summary>a squared, element-wise (LibTorch's <c>pow(a, 2)</c>, what <c>square()</c> computes).</summary>
    public static Tensor Squared(this Tensor a) => a.pow(Two);

    /// <summary>a squared in place.</summary>
    public static Tensor SquaredInPlace(this Tensor a) => a.pow_(Two);

    /// <summary>min(a, max), element-wise.</summary>
    public static Tensor ClampMax(this Tensor a, double max)
    {
        using var s = max.ToScalar();
        return a.clamp_max(s);
    }

    /// <summary>a += value * t1 * t2, in place.</summary>
    public static Tensor AddcmulInPlace(this Tensor a, Tensor t1, Tensor t2, double value)
    {
        using var s = value.ToScalar();
        return a.addcmul_(t1, t2, s);
    }

    /// <summary>a += value * t1 / t2, in place.</summary>
    public static Tensor AddcdivInPlace(this Tensor a, Tensor t1, Tensor t2, double value)
    {
        using var s = value.ToScalar();
        return a.addcdiv_(t1, t2, s);
    }

    /// <summary>Sets a to <paramref name="value"/> where <paramref name="mask"/> is true, in place.</summary>
    public static Tensor MaskedFillInPlace(this Tensor a, Tensor mask, double value)
    {
        using var s = value.ToScalar();
        return a.masked_fill_(mask, s);
    }

    /// <summary>0, 1, ..., <paramref name="count"/> - 1 (int64 unless <paramref name="dtype"/> says otherwise).</summary>
    public static Tensor Arange(long count, Device? device = null, ScalarType dtype = ScalarType.Int64) => Arange(0, count, device, dtype);

    /// <summary><paramref name="start"/>, ..., <paramref name="stop"/> - 1 (int64 unless <paramref name="dtype"/> says otherwise).</summary>
    public static Tensor Arange(long start, long stop, Device? device = null, ScalarType dtype = ScalarType.Int64)
    {
        using var from = start.ToScalar();
        using var to = stop.ToScalar();
        return arange(from, to, OneInt64, dtype, device);
    }
}
