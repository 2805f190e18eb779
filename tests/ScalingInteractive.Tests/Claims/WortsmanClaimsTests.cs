using ScalingInteractive.Claims;
using ScalingInteractive.Proxies;

namespace ScalingInteractive.Tests.Claims;

/// <summary>Every branch of notebook 02's judges on hand-built sweep rows and sensitivity rows.</summary>
public class WortsmanClaimsTests
{
    private static ProxySweepRow Row(int width, double lr, double final, double maxLogit, double[] steps, double[] logits, bool diverged = false, long seed = 0,
        double logZ = 0, string setting = "baseline") =>
        new($"k{width}-{lr}-{seed}", "sweep", setting, width, width * 100, lr, seed, 8, 1000, 5.0, diverged ? double.NaN : final, diverged, diverged ? "loss" : null,
            maxLogit, logZ, 1, steps, steps.Select(_ => 3.0).ToArray(), logits, steps.Select(_ => logZ).ToArray());

    // Widths 16 and 32, rates 0.01 and 1: L0 = 5, L* = 1.8, degraded above 1.8 + 0.9 x 3.2 = 4.68.
    private static List<ProxySweepRow> Sweep(double wideLowLogit) =>
    [
        Row(16, 0.01, 2.0, 10, [10, 20], [5, 10]), Row(16, 1.0, 2.1, 50, [10, 20], [20, 50]),
        Row(32, 0.01, 1.8, wideLowLogit, [10, 20], [wideLowLogit / 2, wideLowLogit]), Row(32, 1.0, 0, 500, [10], [500], diverged: true),
    ];

    [Fact]
    public void Instability_parts_a_to_d_by_hand()
    {
        var p = WortsmanClaims.MeasureInstability(Sweep(12), 0, [16, 32], [0.01, 1.0]);
        Assert.True(p.LossDegrades);      // width 16: 2.1 > 2.0 + 0.05; width 32 diverged counts as L0 = 5 > 1.85
        Assert.Equal(500.0 / 12, p.Growth[32], 9);
        Assert.True(p.OrdersOfMagnitude); // 41.7x >= 10x
        Assert.Equal(2, p.WiderLarger);   // lr 0.01: 12 > 10 up to step 20; lr 1: 500 > 20 up to step 10 (width 32 stopped there)
        Assert.True(double.IsPositiveInfinity(p.FailingRate[16]));
        Assert.Equal(1.0, p.FailingRate[32]);
        Assert.True(p.FailsLower);
        Assert.True(p.RatioLarger);       // 41.7x > 50 / 10 = 5x
        Assert.True(p.PaperForm);
        var notWider = WortsmanClaims.MeasureInstability(Sweep(8), 0, [16, 32], [0.01, 1.0]);
        Assert.Equal(1, notWider.WiderLarger); // lr 0.01: 8 < 10
        Assert.False(notWider.PaperForm);
    }

    private static InstabilityParts Parts(long seed, bool paper, bool ratio = false) =>
        new(seed, paper, true, 5, 5, true, ratio, new Dictionary<int, double>(), new Dictionary<int, double>(), "");

    [Fact]
    public void Claim_1_over_seeds()
    {
        var all = WortsmanClaims.AttentionLogitGrowth([Parts(0, true), Parts(1, true), Parts(2, true)]);
        Assert.Equal(ClaimOutcome.Holds, all.Outcome);
        Assert.Contains("fails for every seed: systematic", all.Finding);
        Assert.Contains("flips between seeds", WortsmanClaims.AttentionLogitGrowth([Parts(0, true, true), Parts(1, true)]).Finding);
        var some = WortsmanClaims.AttentionLogitGrowth([Parts(0, true), Parts(1, false)]);
        Assert.Equal(ClaimOutcome.Inconclusive, some.Outcome);
        Assert.Contains("within seed noise", some.Finding);
        Assert.Equal(ClaimOutcome.Fails, WortsmanClaims.AttentionLogitGrowth([Parts(0, false), Parts(1, false)]).Outcome);
        Assert.Equal(ClaimOutcome.Inconclusive, WortsmanClaims.AttentionLogitGrowth([]).Outcome);
    }

    private static LrSensitivityRow Sens(double sensitivity, double topLogit = 100, double topLoss = 3) =>
        new("s", 16, 1600, 5, 2, 0.01, sensitivity, 0, 5, [0.01, 1], [2, topLoss], [10, topLogit]);

    private static ArmPair Pair(double reference, double setting, int width = 16, double referenceLogit = 100, double settingLogit = 10) =>
        new(width, Sens(reference, referenceLogit), Sens(setting, settingLogit));

    [Fact]
    public void Claim_2_recipe_and_regime_controls()
    {
        ArmPair[] recipe = [Pair(0.3, 0.2, 16), Pair(0.5, 0.3, 32)];
        Assert.Equal(ClaimOutcome.Holds, WortsmanClaims.QkLayerNormLowersSensitivity(recipe, new Dictionary<string, ArmPair> { ["no z-loss"] = Pair(0.3, 0.25, 32) }).Outcome);
        // A control that lowers it by only 0.005 (< 0.01) loses it: regime mismatch.
        var mismatch = WortsmanClaims.QkLayerNormLowersSensitivity(recipe, new Dictionary<string, ArmPair> { ["no warm-up"] = Pair(0.3, 0.295, 32) });
        Assert.Equal(ClaimOutcome.Holds, mismatch.Outcome);
        Assert.StartsWith("regime mismatch", mismatch.Finding);
        Assert.Contains("'no warm-up'", mismatch.Finding);
        Assert.Equal(ClaimOutcome.Fails, WortsmanClaims.QkLayerNormLowersSensitivity([Pair(0.3, 0.2), Pair(0.5, 0.3, 32, 100, 200)], new Dictionary<string, ArmPair>()).Outcome); // top logit higher at width 32
        Assert.Equal(ClaimOutcome.Fails, WortsmanClaims.QkLayerNormLowersSensitivity([Pair(0.3, 0.295)], new Dictionary<string, ArmPair>()).Outcome);
        Assert.Equal(ClaimOutcome.Inconclusive, WortsmanClaims.QkLayerNormLowersSensitivity([], new Dictionary<string, ArmPair>()).Outcome);
    }

    private static ProxySweepRow Z(double logZ, bool diverged = false) => Row(32, 1, 2, 1, [1], [1], diverged, logZ: logZ);

    [Fact]
    public void Claim_3_z_loss_arms()
    {
        ProxySweepRow[] none = [Z(5, diverged: true), Z(3)];  // drifts, 1 diverged
        ProxySweepRow[] ratio = [Z(0.2), Z(-0.5)];             // near zero, 0 diverged
        var mismatch = WortsmanClaims.ZLossPreventsDivergence(none, [Z(2), Z(3)], ratio);
        Assert.Equal(ClaimOutcome.Holds, mismatch.Outcome);
        Assert.StartsWith("regime mismatch", mismatch.Finding);
        Assert.StartsWith("holds, by name and by ratio", WortsmanClaims.ZLossPreventsDivergence(none, [Z(0.1), Z(0.3)], ratio).Finding);
        Assert.Equal(ClaimOutcome.Fails, WortsmanClaims.ZLossPreventsDivergence(none, [Z(2)], [Z(0.1), Z(0.2, diverged: true)]).Outcome); // as many diverged as without
        var noDivergence = WortsmanClaims.ZLossPreventsDivergence([Z(5), Z(3)], [Z(2)], ratio);
        Assert.Equal(ClaimOutcome.Inconclusive, noDivergence.Outcome);
        Assert.Contains("log Z drifts", noDivergence.Finding);
        Assert.Contains("when matched by ratio, not at the paper's coefficient by name (regime mismatch)", noDivergence.Finding);
    }

    [Fact]
    public void Claim_4_interventions()
    {
        ArmPair[] lower = [Pair(0.3, 0.2), Pair(0.5, 0.3, 32)], notLower = [Pair(0.3, 0.35), Pair(0.5, 0.3, 32)];
        Assert.StartsWith("regime mismatch", WortsmanClaims.IndependentWeightDecayLowersSensitivity(notLower, lower).Finding);
        Assert.Equal(ClaimOutcome.Holds, WortsmanClaims.IndependentWeightDecayLowersSensitivity(lower, lower).Outcome);
        Assert.Equal(ClaimOutcome.Fails, WortsmanClaims.IndependentWeightDecayLowersSensitivity(lower, notLower).Outcome);
        Assert.Equal(ClaimOutcome.Holds, WortsmanClaims.DecouplingLowersSensitivity(lower).Outcome);
        Assert.Equal(ClaimOutcome.Fails, WortsmanClaims.DecouplingLowersSensitivity(notLower).Outcome);
        Assert.StartsWith("regime mismatch", WortsmanClaims.MupLowersSensitivity(lower, notLower).Finding);
        Assert.StartsWith("holds, with and without", WortsmanClaims.MupLowersSensitivity(lower, lower).Finding);
        Assert.Equal(ClaimOutcome.Fails, WortsmanClaims.MupLowersSensitivity(notLower, lower).Outcome);
        Assert.Equal(ClaimOutcome.Holds, WortsmanClaims.WarmupLowersSensitivity(lower, lower).Outcome);
        Assert.Contains("'longer is better'", WortsmanClaims.WarmupLowersSensitivity(lower, notLower).Finding);
        Assert.Equal(ClaimOutcome.Fails, WortsmanClaims.WarmupLowersSensitivity(notLower, lower).Outcome);
        Assert.Equal("4d", WortsmanClaims.WarmupLowersSensitivity(notLower, lower).Id);
    }

    [Fact]
    public void Instability_prediction_by_hand()
    {
        // lr 0.01: logits 2 (w8), 4 (w16): slope 1, predicted 8 at w32 = measured. lr 1: 100, 200 (both diverged): predicted 400 = measured.
        // Threshold: smallest logit of a degraded smaller run = 100. Predicted 8 < 100 stable (it is), 400 >= 100 unstable (it diverged).
        List<ProxySweepRow> rows =
        [
            Row(8, 0.01, 2, 2, [1], [2]), Row(16, 0.01, 2, 4, [1], [4]), Row(32, 0.01, 2, 8, [1], [8]),
            Row(8, 1, 0, 100, [1], [100], diverged: true), Row(16, 1, 0, 200, [1], [200], diverged: true), Row(32, 1, 0, 400, [1], [400], diverged: true),
        ];
        var p = WortsmanClaims.PredictInstability(rows, 0, 32, [0.01, 1.0], r => r.MaxAttentionLogit, "whole run");
        Assert.Equal(100, p.Threshold);
        Assert.Equal(2, p.Matches);
        Assert.Equal(0, p.MeanError, 9);
        Assert.Equal(4, p.TopMargin, 9);
        Assert.Equal(1, p.TopSlope, 9);
        Assert.Equal(1, p.OtherMinSlope, 9);
        Assert.Equal(0, p.StableAboveThreshold);
    }

    private static InstabilityPrediction Prediction(long seed, int matches, double meanError = 0.5, double topMargin = 3) =>
        new(seed, "x", 100, matches, 5, meanError, topMargin, -3, 1, 0, "");

    [Fact]
    public void Claim_5_over_seeds()
    {
        InstabilityPrediction[] early = [Prediction(0, 5), Prediction(1, 5)];
        var artefact = WortsmanClaims.SmallModelsPredictInstability([Prediction(0, 4, topMargin: 0.2), Prediction(1, 4, topMargin: 0.3)], early);
        Assert.Equal(ClaimOutcome.Holds, artefact.Outcome);
        Assert.Contains("run-length artefact", artefact.Finding);
        Assert.Contains("borderline", WortsmanClaims.SmallModelsPredictInstability([Prediction(0, 4, topMargin: 1.2), Prediction(1, 5)], early).Finding);
        Assert.Contains("predicts as well", WortsmanClaims.SmallModelsPredictInstability([Prediction(0, 5), Prediction(1, 5)], early).Finding);
        // Every rate predicted but mean |log error| 1.2 in seed 1: that seed does not count.
        Assert.Equal(ClaimOutcome.Inconclusive, WortsmanClaims.SmallModelsPredictInstability([], [Prediction(0, 5), Prediction(1, 5, meanError: 1.2)]).Outcome);
        Assert.Equal(ClaimOutcome.Fails, WortsmanClaims.SmallModelsPredictInstability([], [Prediction(0, 4), Prediction(1, 3)]).Outcome);
        Assert.Equal(ClaimOutcome.Inconclusive, WortsmanClaims.SmallModelsPredictInstability([], []).Outcome);
        Assert.Equal(8, WortsmanClaims.ClaimIds.Count);
    }
}
