using System.Globalization;
using ScalingInteractive.Fitting;

namespace ScalingInteractive.Claims;

/// <summary>A fitted parameter next to the value that generated the data.</summary>
/// <param name="Name">Parameter name.</param>
/// <param name="Truth">The generating value.</param>
/// <param name="Estimate">The fitted value.</param>
/// <param name="Lower">Lower end of its interval (NaN without one).</param>
/// <param name="Upper">Upper end of its interval (NaN without one).</param>
public sealed record ParameterEstimate(string Name, double Truth, double Estimate, double Lower = double.NaN, double Upper = double.NaN)
{
    /// <summary>The truth lies in [Lower, Upper].</summary>
    public bool Covered => Lower <= Truth && Truth <= Upper;

    /// <summary>|estimate - truth|.</summary>
    public double Error => Math.Abs(Estimate - Truth);
}

/// <summary>
/// Judges of notebook 01's claims: the fitting engine on synthetic data whose generating parameters are known
/// (laws 1-8 of the scaling-law literature; Hoffmann et al. 2022, Besiroglu et al. 2024, Isik et al. 2024, Tissue et
/// al. 2024, Li et al. 2025 "Step Law").
/// </summary>
public static class FittingClaims
{
    /// <summary>Short citation.</summary>
    public const string Paper = "scaling-law fitting (synthetic truth)";

    /// <summary>The claims notebook 01 judges, in order.</summary>
    public static IReadOnlyList<string> ClaimIds { get; } = ["1a", "1b", "2a", "2b", "3", "4", "5"];

    /// <summary>The verdict table of notebook 01.</summary>
    public static VerdictTable Table(params ClaimVerdict[] verdicts) => new(Paper, ClaimIds, verdicts);

    private static string F(double x, string format) => x.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>Each parameter of a fit next to its generating value, with the fit's bootstrap interval when it has one.</summary>
    public static IReadOnlyList<ParameterEstimate> Estimates(ScalingLawFit fit, IReadOnlyList<double> truth)
    {
        ArgumentNullException.ThrowIfNull(fit);
        ArgumentNullException.ThrowIfNull(truth);
        return fit.Law.ParameterNames.Select((name, j) =>
        {
            var (lo, hi) = fit.Bootstrap is { } b ? b.Interval(name) : (double.NaN, double.NaN);
            return new ParameterEstimate(name, truth[j], fit[name], lo, hi);
        }).ToList();
    }

    private static List<Evidence> EvidenceOf(IEnumerable<ParameterEstimate> ps) => ps.SelectMany(p => new[]
    {
        new Evidence($"{p.Name} estimate", p.Estimate, $"truth {F(p.Truth, "G4")}"),
        new Evidence($"{p.Name} interval", p.Upper - p.Lower, $"[{F(p.Lower, "G4")}, {F(p.Upper, "G4")}]{(p.Covered ? "" : ", truth outside")}"),
    }).ToList();

    /// <summary>
    /// Claim 1a: law 1 is recovered from noisy data.
    /// Rule: inconclusive without bootstrap intervals; holds when every generating value lies in its 95 % interval and
    /// every exponent in <paramref name="exponents"/> is within <paramref name="tolerance"/> ("a few hundredths") of
    /// its truth; fails otherwise.
    /// </summary>
    public static ClaimVerdict RecoversLaw1(IReadOnlyList<ParameterEstimate> parameters, IReadOnlyList<string> exponents, double tolerance = 0.05)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(exponents);
        const string claim = "Law 1 (Chinchilla) is recovered from noisy data: the truth lies in every 95 % bootstrap interval and the exponents are within a few hundredths.";
        string rule = $"holds when every truth is inside its interval and every exponent within {F(tolerance, "G")} of its truth; inconclusive without intervals";
        var evidence = EvidenceOf(parameters);
        if (parameters.Count == 0 || parameters.Any(p => double.IsNaN(p.Lower) || double.IsNaN(p.Upper)))
            return new(Paper, "1a", claim, ClaimOutcome.Inconclusive, "inconclusive: no bootstrap intervals", rule, "bootstrap intervals", evidence);
        var outside = parameters.Where(p => !p.Covered).Select(p => p.Name).ToList();
        var far = parameters.Where(p => exponents.Contains(p.Name) && !(p.Error <= tolerance)).Select(p => p.Name).ToList();
        return outside.Count == 0 && far.Count == 0
            ? new(Paper, "1a", claim, ClaimOutcome.Holds, $"holds: every truth inside its interval; exponent errors {string.Join(", ", parameters.Where(p => exponents.Contains(p.Name)).Select(p => $"{p.Name} {F(p.Error, "F3")}"))}", rule, "bootstrap intervals and exponent errors", evidence)
            : new(Paper, "1a", claim, ClaimOutcome.Fails, $"fails: truth outside the interval of [{string.Join(", ", outside)}], exponents off by more than {F(tolerance, "G")}: [{string.Join(", ", far)}]", rule, "bootstrap intervals and exponent errors", evidence);
    }

    /// <summary>
    /// Claim 1b: the nominal-level intervals cover the truth about as often as they claim.
    /// Rule: with coverage c = covered / simulations and the binomial standard error sqrt(nominal (1 - nominal) / simulations),
    /// holds when |c - nominal| is at most two standard errors, fails otherwise; inconclusive without simulations.
    /// </summary>
    public static ClaimVerdict IntervalCoverage(int covered, int simulations, double nominal = 0.95)
    {
        const string claim = "Across repeated noisy data sets, the 95 % percentile intervals contain the true exponent close to 95 % of the time.";
        const string rule = "holds when the coverage is within 2 binomial standard errors of the nominal level";
        if (simulations <= 0) return new(Paper, "1b", claim, ClaimOutcome.Inconclusive, "inconclusive: no simulation", rule, "coverage simulation", []);
        double coverage = (double)covered / simulations, se = Math.Sqrt(nominal * (1 - nominal) / simulations);
        var evidence = new List<Evidence> { new("coverage", coverage, $"{covered} of {simulations}"), new("nominal", nominal), new("binomial standard error", se) };
        return Math.Abs(coverage - nominal) <= 2 * se
            ? new(Paper, "1b", claim, ClaimOutcome.Holds, $"holds: coverage {F(coverage, "P0")} within 2 standard errors ({F(2 * se, "P0")}) of {F(nominal, "P0")}", rule, "coverage simulation", evidence)
            : new(Paper, "1b", claim, ClaimOutcome.Fails, $"fails: coverage {F(coverage, "P0")} is more than 2 standard errors ({F(2 * se, "P0")}) from {F(nominal, "P0")}", rule, "coverage simulation", evidence);
    }

    /// <summary>Claim 2a from two law comparisons: see <see cref="AicPicksGeneratingLaws(string, string, string, string)"/>.</summary>
    public static ClaimVerdict AicPicksGeneratingLaws(LawComparison crossEntropy, string crossEntropyLaw, LawComparison bleu, string bleuLaw)
    {
        ArgumentNullException.ThrowIfNull(crossEntropy);
        ArgumentNullException.ThrowIfNull(bleu);
        return AicPicksGeneratingLaws(crossEntropy.Best.Law.Name, crossEntropyLaw, bleu.Best.Law.Name, bleuLaw);
    }

    /// <summary>
    /// Claim 2a: AIC picks the generating law for each downstream metric (law 2 for the cross-entropy, law 4 for BLEU).
    /// Rule: holds when the lowest-AIC law is the generating one for both metrics; fails otherwise.
    /// </summary>
    public static ClaimVerdict AicPicksGeneratingLaws(string crossEntropyBest, string crossEntropyLaw, string bleuBest, string bleuLaw)
    {
        const string claim = "AIC picks law 2 for the downstream cross-entropy and law 4 for BLEU among laws 2-4.";
        const string rule = "holds when the lowest-AIC law is the generating law for both metrics";
        bool ce = crossEntropyBest == crossEntropyLaw, bl = bleuBest == bleuLaw;
        string numbers = $"cross-entropy: {crossEntropyBest} (truth {crossEntropyLaw}); BLEU: {bleuBest} (truth {bleuLaw})";
        var evidence = new List<Evidence> { new("cross-entropy: generating law picked", ce ? 1 : 0, crossEntropyBest), new("BLEU: generating law picked", bl ? 1 : 0, bleuBest) };
        return ce && bl ? new(Paper, "2a", claim, ClaimOutcome.Holds, $"holds: {numbers}", rule, "AIC", evidence)
            : new(Paper, "2a", claim, ClaimOutcome.Fails, $"fails: {numbers}", rule, "AIC", evidence);
    }

    /// <summary>
    /// Claim 2b: with misaligned pre-training data, law 2 still fits the cross-entropy while law 4 cannot follow BLEU.
    /// Rule: holds when the cross-entropy's R² is at least <paramref name="nearOne"/> and the misaligned BLEU's R² is
    /// at least <paramref name="drop"/> below the aligned BLEU's; fails otherwise.
    /// </summary>
    public static ClaimVerdict MisalignedBleuLeavesTheLaw(double crossEntropyR2, double alignedBleuR2, double misalignedBleuR2, double nearOne = 0.99, double drop = 0.1)
    {
        const string claim = "With misaligned pre-training data law 2 still fits the cross-entropy while law 4 cannot follow BLEU.";
        string rule = $"holds when R²(cross-entropy) >= {F(nearOne, "G")} and R²(misaligned BLEU) <= R²(aligned BLEU) - {F(drop, "G")}";
        var evidence = new List<Evidence> { new("R² cross-entropy, law 2", crossEntropyR2), new("R² BLEU aligned, law 4", alignedBleuR2), new("R² BLEU misaligned, law 4", misalignedBleuR2) };
        bool holds = crossEntropyR2 >= nearOne && misalignedBleuR2 <= alignedBleuR2 - drop;
        string numbers = $"R² {F(crossEntropyR2, "F4")} (cross-entropy), {F(alignedBleuR2, "F4")} (BLEU aligned), {F(misalignedBleuR2, "F4")} (BLEU misaligned)";
        return new(Paper, "2b", claim, holds ? ClaimOutcome.Holds : ClaimOutcome.Fails, (holds ? "holds: " : "fails: ") + numbers, rule, "R² of the three fits", evidence);
    }

    /// <summary>
    /// Claim 3: law 7 fitted on a constant and a cosine curve predicts an unseen warm-up-stable-decay curve.
    /// Rule: holds when the largest relative error over the steps is below <paramref name="tolerance"/>; fails
    /// otherwise; inconclusive when the error is not a number.
    /// </summary>
    public static ClaimVerdict PredictsWsdCurve(double worstRelativeError, double tolerance = 0.01)
    {
        const string claim = "Law 7 fitted on a constant and a cosine loss curve predicts a warm-up-stable-decay curve within 1 % at every step.";
        string rule = $"holds when the largest relative error is below {F(tolerance, "P0")}";
        var evidence = new List<Evidence> { new("largest relative error", worstRelativeError), new("tolerance", tolerance) };
        if (double.IsNaN(worstRelativeError)) return new(Paper, "3", claim, ClaimOutcome.Inconclusive, "inconclusive: no prediction", rule, "WSD prediction", evidence);
        return worstRelativeError < tolerance
            ? new(Paper, "3", claim, ClaimOutcome.Holds, $"holds: largest relative error {F(worstRelativeError, "P3")}", rule, "WSD prediction", evidence)
            : new(Paper, "3", claim, ClaimOutcome.Fails, $"fails: largest relative error {F(worstRelativeError, "P3")}", rule, "WSD prediction", evidence);
    }

    /// <summary>
    /// Claim 4: law 8 recovers the optimal learning-rate and batch-size exponents.
    /// Rule: holds when every exponent is within <paramref name="tolerance"/> of its truth; fails otherwise;
    /// inconclusive without exponents.
    /// </summary>
    public static ClaimVerdict RecoversStepLawExponents(IReadOnlyList<ParameterEstimate> exponents, double tolerance = 0.05)
    {
        ArgumentNullException.ThrowIfNull(exponents);
        const string claim = "Law 8 (Step Law) recovers each optimal learning-rate and batch-size exponent to within 0.05 of the truth.";
        string rule = $"holds when every exponent is within {F(tolerance, "G")} of its truth";
        var evidence = exponents.Select(p => new Evidence(p.Name, p.Estimate, $"truth {F(p.Truth, "G4")}, error {F(p.Error, "F3")}")).ToList();
        if (exponents.Count == 0) return new(Paper, "4", claim, ClaimOutcome.Inconclusive, "inconclusive: no exponent", rule, "exponent errors", evidence);
        var far = exponents.Where(p => !(p.Error <= tolerance)).ToList();
        string numbers = string.Join(", ", exponents.Select(p => $"{p.Name} {F(p.Estimate, "F3")} (truth {F(p.Truth, "G4")})"));
        return far.Count == 0
            ? new(Paper, "4", claim, ClaimOutcome.Holds, $"holds: {numbers}", rule, "exponent errors", evidence)
            : new(Paper, "4", claim, ClaimOutcome.Fails, $"fails: {string.Join(", ", far.Select(p => p.Name))} off by more than {F(tolerance, "G")} ({numbers})", rule, "exponent errors", evidence);
    }

    /// <summary>
    /// Claim 5: the compute-optimal exponents follow from law 1, and extrapolation widens the uncertainty.
    /// Rule: inconclusive without bootstrap intervals or budgets; holds when both exponents are within
    /// <paramref name="tolerance"/> of the generating a and b and the relative interval width of N_opt at the largest
    /// budget is more than twice that of exponent a ("much wider"); fails otherwise.
    /// </summary>
    public static ClaimVerdict AllocationFollowsLaw1(ComputeOptimalAllocation allocation, double truthA, double truthB, double tolerance = 0.05)
    {
        ArgumentNullException.ThrowIfNull(allocation);
        const string claim = "Compute-optimal exponents follow from law 1 (close to the generating a and b), with intervals much wider for N_opt at large compute than for the exponents.";
        string rule = $"holds when |a - truth| and |b - truth| are at most {F(tolerance, "G")} and N_opt's relative interval width at the largest budget exceeds twice exponent a's; inconclusive without intervals";
        var (a, b) = (allocation.ExponentA, allocation.ExponentB);
        var evidence = new List<Evidence> { new("a", a.Estimate, $"truth {F(truthA, "F3")}"), new("b", b.Estimate, $"truth {F(truthB, "F3")}") };
        if (!allocation.HasIntervals || allocation.Rows.Count == 0)
            return new(Paper, "5", claim, ClaimOutcome.Inconclusive, "inconclusive: no bootstrap intervals", rule, "allocation intervals", evidence);
        var top = allocation.Rows.MaxBy(r => r.Compute)!;
        double nWidth = (top.N.Upper - top.N.Lower) / top.N.Estimate, aWidth = (a.Upper - a.Lower) / a.Estimate;
        evidence.Add(new("N_opt relative interval width", nWidth, $"at C = {F(top.Compute, "G3")}"));
        evidence.Add(new("a relative interval width", aWidth));
        bool close = Math.Abs(a.Estimate - truthA) <= tolerance && Math.Abs(b.Estimate - truthB) <= tolerance, wider = nWidth > 2 * aWidth;
        string numbers = $"a {F(a.Estimate, "F3")} (truth {F(truthA, "F3")}), b {F(b.Estimate, "F3")} (truth {F(truthB, "F3")}); relative width N_opt {F(nWidth, "G3")} vs a {F(aWidth, "G3")}";
        return close && wider
            ? new(Paper, "5", claim, ClaimOutcome.Holds, $"holds: {numbers}", rule, "allocation intervals", evidence)
            : new(Paper, "5", claim, ClaimOutcome.Fails, $"fails: {numbers}", rule, "allocation intervals", evidence);
    }
}
