using ScalingInteractive.Claims;
using ScalingInteractive.Fitting;

namespace ScalingInteractive.Tests.Claims;

/// <summary>Every branch of notebook 01's judges on hand-picked numbers.</summary>
public class FittingClaimsTests
{
    private static readonly string[] Exponents = ["alpha", "beta"];

    [Fact]
    public void Law1_recovery_needs_covered_truths_and_close_exponents()
    {
        ParameterEstimate[] good = [new("E", 1.69, 1.66, 1.46, 1.78), new("alpha", 0.34, 0.331, 0.26, 0.41), new("beta", 0.28, 0.276, 0.20, 0.34)];
        var holds = FittingClaims.RecoversLaw1(good, Exponents);
        Assert.Equal(ClaimOutcome.Holds, holds.Outcome);
        Assert.Contains("alpha 0.009", holds.Finding); // |0.331 - 0.34|
        // beta's truth 0.28 outside [0.29, 0.34].
        Assert.Equal(ClaimOutcome.Fails, FittingClaims.RecoversLaw1([good[0], good[1], new("beta", 0.28, 0.31, 0.29, 0.34)], Exponents).Outcome);
        // alpha covered by a wide interval but 0.08 off (> 0.05).
        Assert.Equal(ClaimOutcome.Fails, FittingClaims.RecoversLaw1([good[0], new("alpha", 0.34, 0.42, 0.2, 0.6), good[2]], Exponents).Outcome);
        Assert.Equal(ClaimOutcome.Inconclusive, FittingClaims.RecoversLaw1([new("alpha", 0.34, 0.33)], Exponents).Outcome);
    }

    [Fact]
    public void Coverage_within_two_binomial_standard_errors_holds()
    {
        // n = 100: SE = sqrt(0.95 * 0.05 / 100) = 0.02179; 2 SE = 0.0436. 96 % holds, 90 % (0.05 away) fails.
        var v = FittingClaims.IntervalCoverage(96, 100);
        Assert.Equal(ClaimOutcome.Holds, v.Outcome);
        Assert.Equal(0.021794, v["binomial standard error"], 5);
        Assert.Equal(ClaimOutcome.Fails, FittingClaims.IntervalCoverage(90, 100).Outcome);
        Assert.Equal(ClaimOutcome.Fails, FittingClaims.IntervalCoverage(100, 100).Outcome); // 5 % above: over-coverage is not "about as often"
        // n = 20: 2 SE = 0.0975: 18 of 20 (90 %) holds.
        Assert.Equal(ClaimOutcome.Holds, FittingClaims.IntervalCoverage(18, 20).Outcome);
        Assert.Equal(ClaimOutcome.Inconclusive, FittingClaims.IntervalCoverage(0, 0).Outcome);
    }

    [Fact]
    public void Aic_must_pick_the_generating_law_for_both_metrics()
    {
        Assert.Equal(ClaimOutcome.Holds, FittingClaims.AicPicksGeneratingLaws("saturating-power", "saturating-power", "bleu-log", "bleu-log").Outcome);
        Assert.Equal(ClaimOutcome.Fails, FittingClaims.AicPicksGeneratingLaws("saturating-power", "saturating-power", "power", "bleu-log").Outcome);
    }

    [Fact]
    public void Misaligned_bleu_must_fall_well_below_the_aligned_fit()
    {
        Assert.Equal(ClaimOutcome.Holds, FittingClaims.MisalignedBleuLeavesTheLaw(0.9943, 0.9981, 0.1931).Outcome);
        Assert.Equal(ClaimOutcome.Fails, FittingClaims.MisalignedBleuLeavesTheLaw(0.9943, 0.9981, 0.95).Outcome);  // only 0.048 below
        Assert.Equal(ClaimOutcome.Fails, FittingClaims.MisalignedBleuLeavesTheLaw(0.97, 0.9981, 0.1931).Outcome);  // cross-entropy not near 1
    }

    [Fact]
    public void Wsd_prediction_within_one_percent()
    {
        Assert.Equal(ClaimOutcome.Holds, FittingClaims.PredictsWsdCurve(0.0011).Outcome);
        Assert.Equal(ClaimOutcome.Fails, FittingClaims.PredictsWsdCurve(0.012).Outcome);
        Assert.Equal(ClaimOutcome.Inconclusive, FittingClaims.PredictsWsdCurve(double.NaN).Outcome);
    }

    [Fact]
    public void Step_law_exponents_within_the_tolerance()
    {
        ParameterEstimate[] close = [new("a", -0.713, -0.674), new("b", 0.307, 0.277), new("e", 0.571, 0.599)]; // errors 0.039, 0.030, 0.028
        Assert.Equal(ClaimOutcome.Holds, FittingClaims.RecoversStepLawExponents(close).Outcome);
        Assert.Equal(ClaimOutcome.Fails, FittingClaims.RecoversStepLawExponents([close[0], close[1], new("e", 0.571, 0.64)]).Outcome); // 0.069
        Assert.Equal(ClaimOutcome.Inconclusive, FittingClaims.RecoversStepLawExponents([]).Outcome);
    }

    private static ComputeOptimalAllocation Allocation(double a, double b, Quantity nAtTop, bool intervals = true) => new()
    {
        ExponentA = new(a, a - 0.02, a + 0.02), ExponentB = new(b, b - 0.02, b + 0.02), Level = 0.95, HasIntervals = intervals,
        Rows = [new AllocationRow(1e20, new(1e9, 0.9e9, 1.1e9), default, default, default), new AllocationRow(1e25, nAtTop, default, default, default)],
        Targets = [],
    };

    [Fact]
    public void Allocation_needs_close_exponents_and_wider_extrapolated_intervals()
    {
        // a = 0.45 with [0.43, 0.47]: relative width 0.04 / 0.45 = 0.0889. N_opt at 1e25 in [0.5e11, 2e11] around 1e11: relative width 1.5.
        var holds = FittingClaims.AllocationFollowsLaw1(Allocation(0.45, 0.55, new(1e11, 0.5e11, 2e11)), 0.452, 0.548);
        Assert.Equal(ClaimOutcome.Holds, holds.Outcome);
        Assert.Equal(1.5, holds["N_opt relative interval width"], 9);
        Assert.Equal(0.04 / 0.45, holds["a relative interval width"], 9);
        // N_opt's interval [0.95e11, 1.05e11]: relative width 0.1 < 2 x 0.0889.
        Assert.Equal(ClaimOutcome.Fails, FittingClaims.AllocationFollowsLaw1(Allocation(0.45, 0.55, new(1e11, 0.95e11, 1.05e11)), 0.452, 0.548).Outcome);
        Assert.Equal(ClaimOutcome.Fails, FittingClaims.AllocationFollowsLaw1(Allocation(0.52, 0.48, new(1e11, 0.5e11, 2e11)), 0.452, 0.548).Outcome); // a off by 0.068
        Assert.Equal(ClaimOutcome.Inconclusive, FittingClaims.AllocationFollowsLaw1(Allocation(0.45, 0.55, new(1e11, 0.5e11, 2e11), intervals: false), 0.452, 0.548).Outcome);
    }
}
