using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ScalingInteractive.Fitting;

/// <summary>
/// Law 1, Chinchilla: <c>L(N, D) = E + A/N^alpha + B/D^beta</c> (Hoffmann et al. 2022, approach 3), fitted in the
/// log-sum-exp form <c>log L = LSE(a - alpha log N, b - beta log D, e)</c> with <c>a = log A, b = log B, e = log E</c>
/// (Besiroglu et al. 2024). The default grid is the paper's: alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1},
/// a, b in {0, 5, ..., 25} (4,500 starts).
/// </summary>
public sealed class ChinchillaLaw : ScalingLaw
{
    /// <inheritdoc />
    public override string Name => "chinchilla";
    /// <inheritdoc />
    public override string Title => "Chinchilla data/model law";
    /// <inheritdoc />
    public override string Formula => "L(N, D) = E + A / N^alpha + B / D^beta";
    /// <inheritdoc />
    public override string Reference => "Hoffmann et al. 2022, Training compute-optimal large language models (approach 3); fitted as in Besiroglu et al. 2024";
    /// <inheritdoc />
    public override string OutputName => "L";
    /// <inheritdoc />
    public override ImmutableArray<InputSpec> Inputs { get; } =
        [new("N", true, "parameters"), new("D", true, "training tokens")];
    /// <inheritdoc />
    public override ImmutableArray<ParameterSpec> Parameters { get; } =
    [
        ParameterSpec.Log("E", -1, -0.5, 0, 0.5, 1),
        ParameterSpec.Log("A", 0, 5, 10, 15, 20, 25),
        ParameterSpec.Log("B", 0, 5, 10, 15, 20, 25),
        ParameterSpec.Free("alpha", 0, 0.5, 1, 1.5, 2),
        ParameterSpec.Free("beta", 0, 0.5, 1, 1.5, 2),
    ];

    /// <inheritdoc />
    public override double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient)
    {
        double t1 = theta[1] - theta[3] * logX[0], t2 = theta[2] - theta[4] * logX[1], t3 = theta[0];
        double m = Math.Max(Math.Max(t1, t2), t3);
        double e1 = Math.Exp(t1 - m), e2 = Math.Exp(t2 - m), e3 = Math.Exp(t3 - m), s = e1 + e2 + e3;
        if (!gradient.IsEmpty)
        {
            gradient[0] = e3 / s;
            gradient[1] = e1 / s;
            gradient[2] = e2 / s;
            gradient[3] = -e1 / s * logX[0];
            gradient[4] = -e2 / s * logX[1];
        }
        return m + Math.Log(s);
    }

    /// <summary>Use 512-bit vectors where the processor has them (the benchmark compares both widths).</summary>
    internal static bool UseVector512 { get; set; } = Vector512.IsHardwareAccelerated;

    internal override double Objective(ReadOnlySpan<double> theta, PreparedData data, ReadOnlySpan<double> weights, RobustLoss loss, Span<double> gradient)
    {
        if (weights.IsEmpty) weights = data.Ones;
        return loss.Kind switch
        {
            LossKind.Squared => Fused<SquaredKernel>(theta, data, weights, loss.Delta, gradient),
            LossKind.Cauchy => Fused<CauchyKernel>(theta, data, weights, loss.Delta, gradient),
            _ => Fused<HuberKernel>(theta, data, weights, loss.Delta, gradient),
        };
    }

    /// <summary>
    /// The whole objective in one pass over the points: log-sum-exp, residual, loss and the five gradient sums,
    /// eight (AVX-512) or four (AVX2) points at a time, from precomputed log N and log D. No allocation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // straight to optimised code: a cold notebook's first fit is the hot path
    private static double Fused<TLoss>(ReadOnlySpan<double> theta, PreparedData data, ReadOnlySpan<double> weights, double delta, Span<double> gradient)
        where TLoss : struct, ILossKernel
    {
        double e = theta[0], a = theta[1], b = theta[2], alpha = theta[3], beta = theta[4];
        ReadOnlySpan<double> logN = data.LogColumns[0], logD = data.LogColumns[1], logY = data.LogY;
        int n = data.Count, i = 0;
        double total = 0, gE = 0, gA = 0, gB = 0, gAlpha = 0, gBeta = 0;
        if (UseVector512 && n >= 8)
        {
            // exp(e) once per evaluation; exp(t1), exp(t2) without the max shift (an overflow gives an infinite
            // objective, which the line search steps back from), so two vector exponentials and one logarithm per point.
            var vExpE = Vector512.Create(Math.Exp(e));
            var va = Vector512.Create(a);
            var vb = Vector512.Create(b);
            var vAlpha = Vector512.Create(alpha);
            var vBeta = Vector512.Create(beta);
            var vDelta = Vector512.Create(delta);
            Vector512<double> sTotal = default, sE = default, sA = default, sB = default, sAlpha = default, sBeta = default;
            ref double rN = ref MemoryMarshal.GetReference(logN);
            ref double rD = ref MemoryMarshal.GetReference(logD);
            ref double rY = ref MemoryMarshal.GetReference(logY);
            ref double rW = ref MemoryMarshal.GetReference(weights);
            for (; i <= n - 8; i += 8)
            {
                var lN = Vector512.LoadUnsafe(ref rN, (nuint)i);
                var lD = Vector512.LoadUnsafe(ref rD, (nuint)i);
                var t1 = va - vAlpha * lN;
                var t2 = vb - vBeta * lD;
                var e1 = Vector512.Exp(t1);
                var e2 = Vector512.Exp(t2);
                var s = e1 + e2 + vExpE;
                var r = Vector512.Log(s) - Vector512.LoadUnsafe(ref rY, (nuint)i);
                var rho = TLoss.Vector(r, vDelta, out var dr);
                var w = Vector512.LoadUnsafe(ref rW, (nuint)i);
                sTotal += w * rho;
                var c = w * dr / s;
                var c1 = c * e1;
                var c2 = c * e2;
                sE += c * vExpE;
                sA += c1;
                sB += c2;
                sAlpha -= c1 * lN;
                sBeta -= c2 * lD;
            }
            total = Vector512.Sum(sTotal);
            gE = Vector512.Sum(sE);
            gA = Vector512.Sum(sA);
            gB = Vector512.Sum(sB);
            gAlpha = Vector512.Sum(sAlpha);
            gBeta = Vector512.Sum(sBeta);
        }
        if (Vector256.IsHardwareAccelerated && n - i >= 4)
        {
            // exp(e) once per evaluation; exp(t1), exp(t2) without the max shift (an overflow gives an infinite
            // objective, which the line search steps back from), so two vector exponentials and one logarithm per point.
            var vExpE = Vector256.Create(Math.Exp(e));
            var va = Vector256.Create(a);
            var vb = Vector256.Create(b);
            var vAlpha = Vector256.Create(alpha);
            var vBeta = Vector256.Create(beta);
            var vDelta = Vector256.Create(delta);
            Vector256<double> sTotal = default, sE = default, sA = default, sB = default, sAlpha = default, sBeta = default;
            ref double rN = ref MemoryMarshal.GetReference(logN);
            ref double rD = ref MemoryMarshal.GetReference(logD);
            ref double rY = ref MemoryMarshal.GetReference(logY);
            ref double rW = ref MemoryMarshal.GetReference(weights);
            for (; i <= n - 4; i += 4)
            {
                var lN = Vector256.LoadUnsafe(ref rN, (nuint)i);
                var lD = Vector256.LoadUnsafe(ref rD, (nuint)i);
                var t1 = va - vAlpha * lN;
                var t2 = vb - vBeta * lD;
                var e1 = Vector256.Exp(t1);
                var e2 = Vector256.Exp(t2);
                var s = e1 + e2 + vExpE;
                var r = Vector256.Log(s) - Vector256.LoadUnsafe(ref rY, (nuint)i);
                var rho = TLoss.Vector(r, vDelta, out var dr);
                var w = Vector256.LoadUnsafe(ref rW, (nuint)i);
                sTotal += w * rho;
                var c = w * dr / s;
                var c1 = c * e1;
                var c2 = c * e2;
                sE += c * vExpE;
                sA += c1;
                sB += c2;
                sAlpha -= c1 * lN;
                sBeta -= c2 * lD;
            }
            total += Vector256.Sum(sTotal);
            gE += Vector256.Sum(sE);
            gA += Vector256.Sum(sA);
            gB += Vector256.Sum(sB);
            gAlpha += Vector256.Sum(sAlpha);
            gBeta += Vector256.Sum(sBeta);
        }
        for (; i < n; i++)
        {
            double t1 = a - alpha * logN[i], t2 = b - beta * logD[i];
            double m = Math.Max(Math.Max(t1, t2), e);
            double e1 = Math.Exp(t1 - m), e2 = Math.Exp(t2 - m), e3 = Math.Exp(e - m), s = e1 + e2 + e3;
            double r = m + Math.Log(s) - logY[i];
            double rho = TLoss.Scalar(r, delta, out double dr);
            double w = weights[i];
            total += w * rho;
            double c = w * dr / s;
            gE += c * e3;
            gA += c * e1;
            gB += c * e2;
            gAlpha -= c * e1 * logN[i];
            gBeta -= c * e2 * logD[i];
        }
        gradient[0] = gE;
        gradient[1] = gA;
        gradient[2] = gB;
        gradient[3] = gAlpha;
        gradient[4] = gBeta;
        return double.IsFinite(total) ? total : double.PositiveInfinity;
    }
}

/// <summary>Law 2, saturating power law <c>y = E + A x^(-alpha)</c> (power law plus constant), fitted as <c>log y = LSE(e, a - alpha log x)</c>.</summary>
public sealed class SaturatingPowerLaw : ScalingLaw
{
    /// <inheritdoc />
    public override string Name => "saturating-power";
    /// <inheritdoc />
    public override string Title => "Saturating power law";
    /// <inheritdoc />
    public override string Formula => "y = E + A * x^(-alpha)";
    /// <inheritdoc />
    public override string Reference => "Power law plus constant: Hestness et al. 2017; Kaplan et al. 2020; learning curves, downstream cross-entropy vs pretraining tokens, fine-tuning data";
    /// <inheritdoc />
    public override ImmutableArray<InputSpec> Inputs { get; } = [new("x", true, "scale (data, parameters, compute or examples)")];
    /// <inheritdoc />
    public override ImmutableArray<ParameterSpec> Parameters { get; } =
    [
        ParameterSpec.Log("E", -3, -1, 0, 1),
        ParameterSpec.Log("A", 0, 2.5, 5, 10),
        ParameterSpec.Free("alpha", 0.1, 0.3, 0.5, 1),
    ];

    /// <inheritdoc />
    public override double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient)
    {
        double t1 = theta[0], t2 = theta[1] - theta[2] * logX[0];
        double m = Math.Max(t1, t2);
        double e1 = Math.Exp(t1 - m), e2 = Math.Exp(t2 - m), s = e1 + e2;
        if (!gradient.IsEmpty)
        {
            gradient[0] = e1 / s;
            gradient[1] = e2 / s;
            gradient[2] = -e2 / s * logX[0];
        }
        return m + Math.Log(s);
    }
}

/// <summary>Law 3, pure power law <c>y = A x^alpha</c>; also fitted as a line in log-log space (see <see cref="ScalingFit.LogLogLine"/>).</summary>
public sealed class PowerLaw : ScalingLaw
{
    /// <inheritdoc />
    public override string Name => "power";
    /// <inheritdoc />
    public override string Title => "Pure power law";
    /// <inheritdoc />
    public override string Formula => "y = A * x^alpha";
    /// <inheritdoc />
    public override string Reference => "Kaplan et al. 2020, Scaling laws for neural language models";
    /// <inheritdoc />
    public override ImmutableArray<InputSpec> Inputs { get; } = [new("x", true, "scale")];
    /// <inheritdoc />
    public override ImmutableArray<ParameterSpec> Parameters { get; } =
    [
        ParameterSpec.Log("A", -2, 0, 2),
        ParameterSpec.Free("alpha", -1, 0, 1),
    ];

    /// <inheritdoc />
    public override double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient)
    {
        if (!gradient.IsEmpty)
        {
            gradient[0] = 1;
            gradient[1] = logX[0];
        }
        return theta[0] + theta[1] * logX[0];
    }
}

/// <summary>Law 4, downstream translation quality <c>BLEU(D) = (log(A D^alpha))^beta</c> (Isik et al. 2024), with <c>a = log A</c>.</summary>
public sealed class BleuLogLaw : ScalingLaw
{
    /// <inheritdoc />
    public override string Name => "bleu-log";
    /// <inheritdoc />
    public override string Title => "Downstream log-law for translation quality";
    /// <inheritdoc />
    public override string Formula => "BLEU(D) = (log(A * D^alpha))^beta";
    /// <inheritdoc />
    public override string Reference => "Isik et al. 2024, Scaling laws for downstream task performance of large language models";
    /// <inheritdoc />
    public override string OutputName => "BLEU";
    /// <inheritdoc />
    public override ImmutableArray<InputSpec> Inputs { get; } = [new("D", true, "pretraining tokens")];
    /// <inheritdoc />
    public override ImmutableArray<ParameterSpec> Parameters { get; } =
    [
        ParameterSpec.Log("A", -5, 0, 5),
        ParameterSpec.Free("alpha", 0.1, 0.3, 0.6),
        ParameterSpec.Bounded("beta", 1e-3, 20, 0.5, 1, 2, 3),
    ];

    /// <inheritdoc />
    public override double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient)
    {
        double u = theta[0] + theta[1] * logX[0];
        if (!(u > 0)) return double.NaN;
        double logU = Math.Log(u), beta = theta[2];
        if (!gradient.IsEmpty)
        {
            gradient[0] = beta / u;
            gradient[1] = beta * logX[0] / u;
            gradient[2] = logU;
        }
        return beta * logU;
    }
}

/// <summary>Law 5, Kaplan joint law <c>L(N, D) = ((Nc/N)^(alphaN/alphaD) + Dc/D)^alphaD</c> (Kaplan et al. 2020), with log Nc and log Dc fitted.</summary>
public sealed class KaplanLaw : ScalingLaw
{
    /// <inheritdoc />
    public override string Name => "kaplan";
    /// <inheritdoc />
    public override string Title => "Kaplan joint data/model law";
    /// <inheritdoc />
    public override string Formula => "L(N, D) = ((Nc / N)^(alphaN / alphaD) + Dc / D)^alphaD";
    /// <inheritdoc />
    public override string Reference => "Kaplan et al. 2020, Scaling laws for neural language models (equation 1.5)";
    /// <inheritdoc />
    public override string OutputName => "L";
    /// <inheritdoc />
    public override ImmutableArray<InputSpec> Inputs { get; } = [new("N", true, "parameters"), new("D", true, "training tokens")];
    /// <inheritdoc />
    public override ImmutableArray<ParameterSpec> Parameters { get; } =
    [
        ParameterSpec.Log("Nc", 25, 30, 35),
        ParameterSpec.Log("Dc", 20, 25, 30),
        ParameterSpec.Bounded("alphaN", 1e-4, 5, 0.05, 0.1, 0.3),
        ParameterSpec.Bounded("alphaD", 1e-4, 5, 0.05, 0.1, 0.3),
    ];

    /// <inheritdoc />
    public override double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient)
    {
        double nc = theta[0], dc = theta[1], aN = theta[2], aD = theta[3];
        double t1 = aN / aD * (nc - logX[0]), t2 = dc - logX[1];
        double m = Math.Max(t1, t2);
        double e1 = Math.Exp(t1 - m), e2 = Math.Exp(t2 - m), s = e1 + e2;
        double lse = m + Math.Log(s), w1 = e1 / s, w2 = e2 / s;
        if (!gradient.IsEmpty)
        {
            gradient[0] = w1 * aN;
            gradient[1] = aD * w2;
            gradient[2] = w1 * (nc - logX[0]);
            gradient[3] = lse - w1 * t1;
        }
        return aD * lse;
    }
}

/// <summary>
/// Law 6, over-training law <c>L(C, M) = E + (a M^eta + b M^(-eta)) C^(-alphaC)</c> with M tokens per parameter
/// (Gadre et al. 2024), fitted as <c>log L = LSE(e, log a + eta log M - alphaC log C, log b - eta log M - alphaC log C)</c>.
/// </summary>
public sealed class OverTrainingLaw : ScalingLaw
{
    /// <inheritdoc />
    public override string Name => "overtraining";
    /// <inheritdoc />
    public override string Title => "Over-training law";
    /// <inheritdoc />
    public override string Formula => "L(C, M) = E + (a * M^eta + b * M^(-eta)) * C^(-alphaC)";
    /// <inheritdoc />
    public override string Reference => "Gadre et al. 2024, Language models scale reliably with over-training and on downstream tasks";
    /// <inheritdoc />
    public override string OutputName => "L";
    /// <inheritdoc />
    public override ImmutableArray<InputSpec> Inputs { get; } = [new("C", true, "training compute (FLOPs)"), new("M", true, "tokens per parameter")];
    /// <inheritdoc />
    public override ImmutableArray<ParameterSpec> Parameters { get; } =
    [
        ParameterSpec.Log("E", 0, 0.5),
        ParameterSpec.Log("a", 0, 5, 10),
        ParameterSpec.Log("b", 0, 5, 10),
        ParameterSpec.Bounded("eta", 0, 5, 0.1, 0.3),
        ParameterSpec.Bounded("alphaC", 0, 5, 0.05, 0.1, 0.2),
    ];

    /// <inheritdoc />
    public override double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient)
    {
        double lC = logX[0], lM = logX[1];
        double u1 = theta[1] + theta[3] * lM - theta[4] * lC, u2 = theta[2] - theta[3] * lM - theta[4] * lC, u3 = theta[0];
        double m = Math.Max(Math.Max(u1, u2), u3);
        double e1 = Math.Exp(u1 - m), e2 = Math.Exp(u2 - m), e3 = Math.Exp(u3 - m), s = e1 + e2 + e3;
        if (!gradient.IsEmpty)
        {
            double w1 = e1 / s, w2 = e2 / s;
            gradient[0] = e3 / s;
            gradient[1] = w1;
            gradient[2] = w2;
            gradient[3] = (w1 - w2) * lM;
            gradient[4] = -(w1 + w2) * lC;
        }
        return m + Math.Log(s);
    }
}

/// <summary>Law 6 (second part), loss to downstream error <c>Err(L) = eps - k exp(-gamma L)</c> (Gadre et al. 2024), with log k fitted.</summary>
public sealed class DownstreamErrorLaw : ScalingLaw
{
    /// <inheritdoc />
    public override string Name => "downstream-error";
    /// <inheritdoc />
    public override string Title => "Loss to downstream error";
    /// <inheritdoc />
    public override string Formula => "Err(L) = eps - k * exp(-gamma * L)";
    /// <inheritdoc />
    public override string Reference => "Gadre et al. 2024, Language models scale reliably with over-training and on downstream tasks";
    /// <inheritdoc />
    public override string OutputName => "Err";
    /// <inheritdoc />
    public override ImmutableArray<InputSpec> Inputs { get; } = [new("L", false, "loss")];
    /// <inheritdoc />
    public override ImmutableArray<ParameterSpec> Parameters { get; } =
    [
        ParameterSpec.Bounded("eps", 0, 10, 0.8, 1),
        ParameterSpec.Log("k", 0, 1, 2),
        ParameterSpec.Bounded("gamma", 0, 50, 0.5, 1, 2),
    ];

    /// <inheritdoc />
    public override double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient)
    {
        double term = Math.Exp(theta[1] - theta[2] * x[0]);
        double prediction = theta[0] - term;
        if (!(prediction > 0)) return double.NaN;
        if (!gradient.IsEmpty)
        {
            gradient[0] = 1 / prediction;
            gradient[1] = -term / prediction;
            gradient[2] = term * x[0] / prediction;
        }
        return Math.Log(prediction);
    }
}

/// <summary>
/// Law 7, loss curve with learning-rate annealing <c>L(s) = L0 + A S1^(-alpha) - C S2</c> (Tissue et al. 2024).
/// Inputs are S1 (sum of learning rates) and S2 (annealing area) of each step; <see cref="LearningRateSchedule.Areas"/>
/// computes them for any schedule.
/// </summary>
public sealed class LrAnnealingLaw : ScalingLaw
{
    /// <inheritdoc />
    public override string Name => "lr-annealing";
    /// <inheritdoc />
    public override string Title => "Loss curve with learning-rate annealing";
    /// <inheritdoc />
    public override string Formula => "L(s) = L0 + A * S1^(-alpha) - C * S2";
    /// <inheritdoc />
    public override string Reference => "Tissue et al. 2024, Scaling law with learning rate annealing";
    /// <inheritdoc />
    public override string OutputName => "L";
    /// <inheritdoc />
    public override ImmutableArray<InputSpec> Inputs { get; } =
        [new("S1", true, "forward area: sum of learning rates so far"), new("S2", false, "annealing area: sum of annealing momenta")];
    /// <inheritdoc />
    public override ImmutableArray<ParameterSpec> Parameters { get; } =
    [
        ParameterSpec.Free("L0", 1, 2, 3),
        ParameterSpec.Log("A", -1, 0, 1),
        ParameterSpec.Bounded("alpha", 0, 5, 0.3, 0.6, 1),
        ParameterSpec.Bounded("C", 0, double.PositiveInfinity, 0, 0.1, 1),
    ];

    /// <inheritdoc />
    public override double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient)
    {
        double power = Math.Exp(theta[1] - theta[2] * logX[0]);
        double prediction = theta[0] + power - theta[3] * x[1];
        if (!(prediction > 0) || !double.IsFinite(prediction)) return double.NaN;
        if (!gradient.IsEmpty)
        {
            gradient[0] = 1 / prediction;
            gradient[1] = power / prediction;
            gradient[2] = -power * logX[0] / prediction;
            gradient[3] = -x[1] / prediction;
        }
        return Math.Log(prediction);
    }
}

/// <summary>Law 8, optimal learning rate <c>eta_opt = c N^a D^b</c> (Step Law, Li et al. 2025), fitted as a plane in log space.</summary>
public sealed class StepLearningRateLaw : ScalingLaw
{
    /// <inheritdoc />
    public override string Name => "step-lr";
    /// <inheritdoc />
    public override string Title => "Optimal learning rate (Step Law)";
    /// <inheritdoc />
    public override string Formula => "eta_opt(N, D) = c * N^a * D^b";
    /// <inheritdoc />
    public override string Reference => "Li et al. 2025, Predictable scale: part I, optimal hyperparameter scaling law in large language model pretraining (Step Law)";
    /// <inheritdoc />
    public override string OutputName => "eta_opt";
    /// <inheritdoc />
    public override ImmutableArray<InputSpec> Inputs { get; } = [new("N", true, "parameters"), new("D", true, "training tokens")];
    /// <inheritdoc />
    public override ImmutableArray<ParameterSpec> Parameters { get; } =
    [
        ParameterSpec.Log("c", -5, 0, 5),
        ParameterSpec.Free("a", -1, 0),
        ParameterSpec.Free("b", -0.5, 0, 0.5),
    ];

    /// <inheritdoc />
    public override double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient)
    {
        if (!gradient.IsEmpty)
        {
            gradient[0] = 1;
            gradient[1] = logX[0];
            gradient[2] = logX[1];
        }
        return theta[0] + theta[1] * logX[0] + theta[2] * logX[1];
    }
}

/// <summary>Law 8 (second part), optimal batch size <c>B_opt = d D^e</c> (Step Law, Li et al. 2025).</summary>
public sealed class StepBatchSizeLaw : ScalingLaw
{
    /// <inheritdoc />
    public override string Name => "step-batch";
    /// <inheritdoc />
    public override string Title => "Optimal batch size (Step Law)";
    /// <inheritdoc />
    public override string Formula => "B_opt(D) = d * D^e";
    /// <inheritdoc />
    public override string Reference => "Li et al. 2025, Predictable scale: part I, optimal hyperparameter scaling law in large language model pretraining (Step Law)";
    /// <inheritdoc />
    public override string OutputName => "B_opt";
    /// <inheritdoc />
    public override ImmutableArray<InputSpec> Inputs { get; } = [new("D", true, "training tokens")];
    /// <inheritdoc />
    public override ImmutableArray<ParameterSpec> Parameters { get; } =
    [
        ParameterSpec.Log("d", -5, 0, 5),
        ParameterSpec.Free("e", 0, 0.5, 1),
    ];

    /// <inheritdoc />
    public override double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient)
    {
        if (!gradient.IsEmpty)
        {
            gradient[0] = 1;
            gradient[1] = logX[0];
        }
        return theta[0] + theta[1] * logX[0];
    }
}

/// <summary>
/// Law 9, a user-defined law: a C# delegate of (reported parameter values, input values) with named parameters,
/// bounds and a start grid, fitted by the same engine. The gradient is central finite differences unless given.
/// </summary>
public sealed class CustomLaw : ScalingLaw
{
    private readonly Func<double[], double[], double> _value;
    private readonly Action<double[], double[], double[]>? _gradient;

    /// <summary>Creates a user-defined law.</summary>
    /// <param name="name">Name shown in results.</param>
    /// <param name="formula">Formula text shown in results.</param>
    /// <param name="inputs">Input names, in the order of the data columns.</param>
    /// <param name="parameters">Parameters with bounds and starts (internal units; log-scale parameters start at logarithms).</param>
    /// <param name="value">The prediction for (reported parameter values, inputs); must be positive where defined.</param>
    /// <param name="gradient">Optional: fills d prediction / d reported parameter for (parameters, inputs, gradient).</param>
    /// <param name="reference">Where the law comes from.</param>
    public CustomLaw(string name, string formula, IEnumerable<string> inputs, IEnumerable<ParameterSpec> parameters,
        Func<double[], double[], double> value, Action<double[], double[], double[]>? gradient = null, string reference = "user-defined")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Formula = formula ?? "";
        Inputs = [.. inputs.Select(i => new InputSpec(i, false, "user input"))];
        Parameters = [.. parameters];
        _value = value ?? throw new ArgumentNullException(nameof(value));
        _gradient = gradient;
        Reference = reference;
        Validate();
    }

    /// <inheritdoc />
    public override string Name { get; }
    /// <inheritdoc />
    public override string Title => "User-defined law " + Name;
    /// <inheritdoc />
    public override string Formula { get; }
    /// <inheritdoc />
    public override string Reference { get; }
    /// <inheritdoc />
    public override ImmutableArray<InputSpec> Inputs { get; }
    /// <inheritdoc />
    public override ImmutableArray<ParameterSpec> Parameters { get; }
    /// <inheritdoc />
    public override bool HasAnalyticGradient => _gradient is not null;

    /// <inheritdoc />
    public override double LogValue(ReadOnlySpan<double> theta, ReadOnlySpan<double> x, ReadOnlySpan<double> logX, Span<double> gradient)
    {
        var p = ToReported(theta);
        var inputs = x.ToArray();
        double prediction = _value(p, inputs);
        if (!(prediction > 0) || !double.IsFinite(prediction)) return double.NaN;
        if (gradient.IsEmpty) return Math.Log(prediction);
        if (_gradient is not null)
        {
            var g = new double[p.Length];
            _gradient(p, inputs, g);
            for (int j = 0; j < p.Length; j++) gradient[j] = g[j] * (Parameters[j].LogScale ? p[j] : 1) / prediction;
        }
        else
        {
            // Central differences of log(prediction) in internal units.
            var shifted = theta.ToArray();
            for (int j = 0; j < shifted.Length; j++)
            {
                double h = 1e-6 * (1 + Math.Abs(theta[j]));
                shifted[j] = theta[j] + h;
                double up = _value(ToReported(shifted), inputs);
                shifted[j] = theta[j] - h;
                double down = _value(ToReported(shifted), inputs);
                shifted[j] = theta[j];
                gradient[j] = up > 0 && down > 0 ? (Math.Log(up) - Math.Log(down)) / (2 * h) : (up - down) / (2 * h) / prediction;
            }
        }
        return Math.Log(prediction);
    }
}
