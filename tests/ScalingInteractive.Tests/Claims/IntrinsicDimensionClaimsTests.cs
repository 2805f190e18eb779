using ScalingInteractive.Claims;
using ScalingInteractive.IntrinsicDimension;

namespace ScalingInteractive.Tests.Claims;

/// <summary>Every branch of notebook 03's judges on hand-built sweeps; expected d values are computed by hand in the comments.</summary>
public class IntrinsicDimensionClaimsTests
{
    // A one-seed report: the baseline run and one run per (d, accuracy) of the fastfood series.
    private static IntrinsicDimensionReport Report(double baseline, long parameters, params (long D, double Accuracy)[] curve) =>
        new("t", "accuracy", curve.Select(p => new SubspaceRun($"k{p.D}", "t", "fastfood", p.D, false, false, 0, p.Accuracy, 0, 0, false, parameters))
            .Prepend(new SubspaceRun("full", "t", "full", 0, false, false, 0, baseline, 0, 0, false, parameters)).ToList(), resamples: 0);

    private static LanguageModelArm Arm(double theta0, params (long D, double Accuracy)[] curve) => new("arm", Report(1.0, 1000, curve), theta0);

    private static IReadOnlyList<CurvePoint> Curve(params (long D, double Mean)[] points) => points.Select(p => new CurvePoint(p.D, p.Mean, 0, p.Mean, p.Mean, 1)).ToList();

    [Fact]
    public void D90_far_below_D_holds_fails_and_is_inconclusive_when_the_sweep_stops_short()
    {
        // d90 = 10^(2 + (0.9 - 0.5) / (0.95 - 0.5)) = 10^(2.8889) = 774.3
        var holds = IntrinsicDimensionClaims.D90FarBelowParameterCount(Report(1.0, 100_000, (100, 0.5), (1000, 0.95)));
        Assert.Equal(ClaimOutcome.Holds, holds.Outcome);
        Assert.Equal(774.26, holds["d90"], 1);
        // D/10 = 100 < 774: a reached d90 above it fails.
        Assert.Equal(ClaimOutcome.Fails, IntrinsicDimensionClaims.D90FarBelowParameterCount(Report(1.0, 1000, (100, 0.5), (1000, 0.95))).Outcome);
        // Not reached by d = 1000 while D/10 = 10,000: the sweep cannot tell.
        var shortSweep = IntrinsicDimensionClaims.D90FarBelowParameterCount(Report(1.0, 100_000, (100, 0.5), (1000, 0.6)));
        Assert.Equal(ClaimOutcome.Inconclusive, shortSweep.Outcome);
        Assert.True(double.IsPositiveInfinity(shortSweep["d90"]));
        Assert.Equal("1a", holds.Id);
    }

    [Fact]
    public void Cnn_below_mlp_holds_ties_and_fails()
    {
        var mlp = Report(1.0, 1000, (100, 0.5), (1000, 0.95)); // 774
        var cnnLower = Report(1.0, 500, (100, 0.95));           // 100
        var cnnHigher = Report(1.0, 500, (1000, 0.5), (10000, 0.95));
        Assert.Equal(ClaimOutcome.Holds, IntrinsicDimensionClaims.CnnBelowMlp(cnnLower, mlp).Outcome);
        Assert.Equal(ClaimOutcome.Fails, IntrinsicDimensionClaims.CnnBelowMlp(cnnHigher, mlp).Outcome);
        Assert.Equal(ClaimOutcome.Inconclusive, IntrinsicDimensionClaims.CnnBelowMlp(Report(1.0, 500, (100, 0.5)), Report(1.0, 1000, (100, 0.6))).Outcome); // neither reached
    }

    [Fact]
    public void Dense_and_fastfood_agree_within_the_tolerance_at_every_shared_d()
    {
        var fast = Report(1.0, 1000, (30, 0.33), (100, 0.61), (300, 0.81));
        var close = IntrinsicDimensionClaims.DenseAgreesWithFastfood(Report(1.0, 1000, (30, 0.34), (100, 0.613)), fast);
        Assert.Equal(ClaimOutcome.Holds, close.Outcome);
        Assert.Equal(0.01, close["largest difference"], 9);
        Assert.Equal(ClaimOutcome.Fails, IntrinsicDimensionClaims.DenseAgreesWithFastfood(Report(1.0, 1000, (30, 0.34), (100, 0.70)), fast).Outcome); // 0.09 apart
        Assert.Equal(ClaimOutcome.Inconclusive, IntrinsicDimensionClaims.DenseAgreesWithFastfood(Report(1.0, 1000, (10, 0.2)), fast).Outcome);
    }

    [Fact]
    public void A_theta0_that_already_reaches_the_target_has_d_zero()
    {
        Assert.Equal(0, Arm(0.95, (100, 0.99)).D90);
        Assert.Equal(100, Arm(0.1, (100, 0.99)).D90, 6);
        Assert.True(double.IsPositiveInfinity(Arm(0.1, (100, 0.5)).D90));
    }

    [Fact]
    public void Pretraining_lowers_d90_is_classified_by_regime()
    {
        var low = Arm(0.1, (100, 0.95));                   // d90 100
        var high = Arm(0.1, (100, 0.5), (1000, 0.95));     // d90 774
        var never = Arm(0.1, (100, 0.5));                  // not reached
        // (S random, S pre-trained, T random, T pre-trained)
        var s = IntrinsicDimensionClaims.PretrainingLowersD90(high, low, high, low);
        Assert.Equal(ClaimOutcome.Holds, s.Outcome);
        Assert.StartsWith("holds", s.Finding);
        var t = IntrinsicDimensionClaims.PretrainingLowersD90(low, high, never, low);
        Assert.Equal(ClaimOutcome.Holds, t.Outcome);
        Assert.StartsWith("regime mismatch", t.Finding);
        Assert.Equal(ClaimOutcome.Inconclusive, IntrinsicDimensionClaims.PretrainingLowersD90(low, high, never, never).Outcome); // a tie in T
        var fails = IntrinsicDimensionClaims.PretrainingLowersD90(low, high, low, high);
        Assert.Equal(ClaimOutcome.Fails, fails.Outcome);
        Assert.StartsWith("genuine non-replication", fails.Finding);
    }

    [Fact]
    public void Larger_model_lowers_d90_is_classified_by_regime()
    {
        var low = Arm(0.1, (100, 0.95));
        var high = Arm(0.1, (100, 0.5), (1000, 0.95));
        // (S smaller, S larger, T smaller, T larger)
        Assert.Equal(ClaimOutcome.Holds, IntrinsicDimensionClaims.LargerModelLowersD90(high, low, low, high).Outcome);
        Assert.StartsWith("regime mismatch", IntrinsicDimensionClaims.LargerModelLowersD90(low, high, high, low).Finding);
        Assert.Equal(ClaimOutcome.Inconclusive, IntrinsicDimensionClaims.LargerModelLowersD90(low, high, low, low).Outcome);
        Assert.Equal(ClaimOutcome.Fails, IntrinsicDimensionClaims.LargerModelLowersD90(low, high, low, high).Outcome);
    }

    [Fact]
    public void The_loss_matched_control_needs_the_loss_reached_and_then_compares_d90()
    {
        var low = Arm(0.1, (100, 0.95));
        var high = Arm(0.1, (100, 0.5), (1000, 0.95));
        Assert.Equal(ClaimOutcome.Inconclusive, IntrinsicDimensionClaims.LargerModelLowersD90AtOneLoss(high, low, 2.10, 2.09, 2000).Outcome);
        Assert.Equal(ClaimOutcome.Holds, IntrinsicDimensionClaims.LargerModelLowersD90AtOneLoss(high, low, 2.08, 2.09, 800).Outcome);
        Assert.Equal(ClaimOutcome.Inconclusive, IntrinsicDimensionClaims.LargerModelLowersD90AtOneLoss(low, low, 2.09, 2.09, 800).Outcome); // tie
        var fails = IntrinsicDimensionClaims.LargerModelLowersD90AtOneLoss(low, high, 2.08, 2.09, 800);
        Assert.Equal(ClaimOutcome.Fails, fails.Outcome);
        Assert.Equal("4c", fails.Id);
    }

    // Seed curves sharing the grid d = 10, 100.
    private static SaidSeedCurves Seed(int seed, double baseline, (double At10, double At100) did, (double At10, double At100) said) =>
        new(seed, baseline, Curve((10, did.At10), (100, did.At100)), Curve((10, said.At10), (100, said.At100)));

    [Fact]
    public void Said_resolved_at_d90_holds_when_lower()
    {
        // theta0 0.5 over 10,000 tokens: SE = sqrt(0.25 / 10^4) = 0.005. Baseline 0.6: d90 target 0.54, 0.04 = 8 SE above theta0.
        // DID: 10^(1 + (0.54 - 0.52) / 0.03) = 46.4; SAID reaches 0.54 at d = 10.
        var v = IntrinsicDimensionClaims.SaidLowersIntrinsicDimension([Seed(0, 0.6, (0.52, 0.55), (0.54, 0.56))], 0.5, 10_000);
        Assert.Equal(ClaimOutcome.Holds, v.Outcome);
        Assert.Equal(0.005, v["standard error of the accuracy"], 12);
        Assert.Equal(46.42, v["seed 0 d90 DID"], 2);
        Assert.Equal(10, v["seed 0 d90 SAID"], 9);
        Assert.Equal(8, v["seed 0 d90 margin"], 9);
    }

    [Fact]
    public void Said_unresolved_within_the_standard_error_is_decided_at_d95()
    {
        // Baseline 0.56: d90 target 0.504 is 0.004 < 2 SE = 0.01 above theta0 0.5, so d90 (SAID 10 < DID 10.2) does not decide.
        // d95 target 0.532: DID 10^(1 + (0.532 - 0.503) / 0.047) = 41.4; SAID never reaches it (0.52 at d = 100): not lower.
        var seed = Seed(0, 0.56, (0.503, 0.55), (0.51, 0.52));
        var v = IntrinsicDimensionClaims.SaidLowersIntrinsicDimension([seed], 0.5, 10_000);
        Assert.True(v["seed 0 d90 SAID"] < v["seed 0 d90 DID"]);
        Assert.Equal(41.4, v["seed 0 d95 DID"], 1);
        Assert.True(double.IsPositiveInfinity(v["seed 0 d95 SAID"]));
        Assert.Equal(ClaimOutcome.Fails, v.Outcome);
        // The same curves with theta0 0.3 (SE 0.0046, margin 0.204): d90 is resolved and SAID is lower there.
        Assert.Equal(ClaimOutcome.Holds, IntrinsicDimensionClaims.SaidLowersIntrinsicDimension([seed], 0.3, 10_000).Outcome);
    }

    [Fact]
    public void Said_ties_everywhere_is_inconclusive_and_ties_beside_wins_hold()
    {
        var tie = Seed(1, 0.6, (0.52, 0.55), (0.52, 0.55)); // identical curves: tie at d90, then at d95
        var win = Seed(0, 0.6, (0.52, 0.55), (0.54, 0.56));
        var allTie = IntrinsicDimensionClaims.SaidLowersIntrinsicDimension([tie], 0.5, 10_000);
        Assert.Equal(ClaimOutcome.Inconclusive, allTie.Outcome);
        Assert.Contains("a tie at d95 in every seed", allTie.Finding);
        var mixed = IntrinsicDimensionClaims.SaidLowersIntrinsicDimension([win, tie], 0.5, 10_000);
        Assert.Equal(ClaimOutcome.Holds, mixed.Outcome);
        Assert.Contains("the others tie", mixed.Finding);
    }

    [Fact]
    public void Said_seed_disagreement_is_inconclusive_and_lower_in_no_seed_fails()
    {
        var win = Seed(0, 0.6, (0.52, 0.55), (0.54, 0.56));
        var loss = Seed(1, 0.6, (0.54, 0.56), (0.52, 0.55)); // SAID 46.4 vs DID 10
        var split = IntrinsicDimensionClaims.SaidLowersIntrinsicDimension([win, loss], 0.5, 10_000);
        Assert.Equal(ClaimOutcome.Inconclusive, split.Outcome);
        Assert.Contains("seed-dependent", split.Finding);
        Assert.Equal(ClaimOutcome.Fails, IntrinsicDimensionClaims.SaidLowersIntrinsicDimension([loss], 0.5, 10_000).Outcome);
        Assert.Equal(ClaimOutcome.Inconclusive, IntrinsicDimensionClaims.SaidLowersIntrinsicDimension([], 0.5, 10_000).Outcome);
    }

    [Fact]
    public void The_table_is_complete_only_with_every_claim()
    {
        var v = IntrinsicDimensionClaims.CnnBelowMlp(Report(1.0, 500, (100, 0.95)), Report(1.0, 1000, (100, 0.5), (1000, 0.95)));
        var table = IntrinsicDimensionClaims.Table(v);
        Assert.False(table.Complete);
        Assert.Contains("data-complete=\"false\"", table.ToHtml());
        Assert.Equal(7, IntrinsicDimensionClaims.ClaimIds.Count);
    }
}
