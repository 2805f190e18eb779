using ScalingInteractive.Claims;
using ScalingInteractive.LoraSpectra;
using ScalingInteractive.Proxies;

namespace ScalingInteractive.Tests.Claims;

/// <summary>Every branch of notebook 04's checks and classification on hand-built runs (width 96: ranks up to 8 are within r/d = 1/12).</summary>
public class LoraClaimsTests
{
    private static ModelSpectrum Spectrum(int intruders) =>
        new("s", 10, 0.5, [new LayerSpectrum("l", 4, 4, [], new int[intruders], [], [], [], [], [], 0, [], [], 0)]);

    private static LoraRunRecord Run(int rank, int intruders, double target = 2.0, double forgetting = 0.1, bool rs = false, double lr = 1e-2) => new()
    {
        Method = rank == 0 ? "full" : $"{(rs ? "rsLoRA" : "LoRA")} r={rank}", Rank = rank, RsLora = rs, LearningRate = lr, TargetLoss = target,
        PretrainLossBefore = 2.0, PretrainLossAfter = 2.0 + forgetting, Spectrum = Spectrum(intruders),
    };

    private static LoraExperimentResult Experiment(IReadOnlyList<LoraRunRecord> runs, params LoraSequenceRecord[] sequences) =>
        new(new LoraExperimentOptions { Model = new ProxyModelConfig { Width = 96, Depth = 2, Heads = 4, ContextLength = 64 } }, "A", ["B", "C"], 2.0, runs, sequences);

    private static LoraSequenceRecord Sequence(int rank, double bAfterB, double bAtEnd, bool diverged = false) => new()
    {
        Method = rank == 0 ? "full" : $"LoRA r={rank}", Rank = rank, Tasks = ["A", "B", "C"], Diverged = diverged,
        Losses = [[2.0, 5.0, 5.0], [2.2, bAfterB, 4.0], [2.3, bAtEnd, 1.2]],
    };

    [Fact]
    public void More_intruders_counts_only_ranks_within_the_ratio()
    {
        // Within r/d <= 1/12: mean (4 + 6 + 5) / 3 = 5 > 4. With rank 16 (0 intruders) counted: 15 / 4 = 3.75 < 4.
        var e = Experiment([Run(0, 4), Run(1, 4), Run(4, 6), Run(1, 5, rs: true), Run(16, 0)]);
        Assert.True(LoraClaims.CheckMoreIntruders(e, LoraClaims.PaperMaxRankRatio).Holds);
        Assert.False(LoraClaims.CheckMoreIntruders(e, double.PositiveInfinity).Holds);
        Assert.Null(LoraClaims.CheckMoreIntruders(Experiment([Run(0, 4), Run(16, 0)]), LoraClaims.PaperMaxRankRatio).Holds);
    }

    [Fact]
    public void Rank_and_rslora_checks()
    {
        var e = Experiment([Run(0, 0), Run(1, 4), Run(4, 6), Run(1, 5, rs: true), Run(4, 3, rs: true)]);
        var rank = LoraClaims.CheckFewerIntrudersAtHigherRank(e, LoraClaims.PaperMaxRankRatio);
        Assert.False(rank.Holds); // r=4 has 6, more than r=1's 4
        Assert.Equal("r=1: 4, r=4: 6", rank.Evidence);
        Assert.True(LoraClaims.CheckFewerIntrudersAtHigherRank(Experiment([Run(0, 0), Run(1, 4), Run(4, 1)]), 1.0 / 12).Holds);
        Assert.Null(LoraClaims.CheckFewerIntrudersAtHigherRank(Experiment([Run(0, 0), Run(1, 4)]), 1.0 / 12).Holds);
        // rsLoRA 5 + 3 = 8 vs LoRA 4 + 6 = 10.
        var rs = LoraClaims.CheckRsLoraFewerIntruders(e, LoraClaims.PaperMaxRankRatio);
        Assert.True(rs.Holds);
        Assert.Equal("rsLoRA 8 vs LoRA 10 over ranks [1, 4]", rs.Evidence);
        Assert.Null(LoraClaims.CheckRsLoraFewerIntruders(Experiment([Run(0, 0), Run(1, 4)]), 1.0 / 12).Holds);
    }

    [Fact]
    public void Forgetting_at_matched_loss_needs_a_run_within_the_tolerance_with_more_intruders()
    {
        // Full: target 2.0, 2 intruders, forgetting 0.1. LoRA at 2.05 (within 0.1) with 4 intruders forgets 0.3; the one at 2.5 is not matched.
        var holds = LoraClaims.CheckForgetsMoreAtMatchedLoss(Experiment([Run(0, 2), Run(1, 4, 2.05, 0.3), Run(4, 9, 2.5, 0.0)]), LoraClaims.PaperMaxRankRatio);
        Assert.True(holds.Holds);
        Assert.False(LoraClaims.CheckForgetsMoreAtMatchedLoss(Experiment([Run(0, 2), Run(1, 4, 2.05, 0.05)]), LoraClaims.PaperMaxRankRatio).Holds);
        var none = LoraClaims.CheckForgetsMoreAtMatchedLoss(Experiment([Run(0, 2), Run(1, 4, 2.5, 0.3), Run(4, 4, 2.6)]), LoraClaims.PaperMaxRankRatio);
        Assert.Null(none.Holds);
        Assert.Contains("closest gap 0.500", none.Evidence);
    }

    [Fact]
    public void Sequence_forgetting_compares_the_regression_on_the_first_task()
    {
        // Full: B 1.0 after B, 1.5 at the end (+0.5); LoRA: 1.0 -> 2.0 (+1.0).
        Assert.Equal(0.5, LoraClaims.RegressionOnFirstTask(Sequence(0, 1.0, 1.5)), 12);
        Assert.True(LoraClaims.CheckMoreForgettingInSequence(Experiment([Run(0, 0)], Sequence(0, 1.0, 1.5), Sequence(1, 1.0, 2.0))).Holds);
        Assert.False(LoraClaims.CheckMoreForgettingInSequence(Experiment([Run(0, 0)], Sequence(0, 1.0, 2.5), Sequence(1, 1.0, 2.0))).Holds);
        Assert.Null(LoraClaims.CheckMoreForgettingInSequence(Experiment([Run(0, 0)])).Holds);
        Assert.Null(LoraClaims.CheckMoreForgettingInSequence(Sequence(1, 1.0, 2.0), Sequence(0, 1.0, 1.5, diverged: true)).Holds);
    }

    [Fact]
    public void Mitigation_needs_a_fall_on_A_larger_than_the_rise_on_the_target()
    {
        LoraRunRecord Mitigated(double aFall, double targetRise) => Run(1, 3, 2.0, 0.3) with
            { MitigatedDirections = 2, MitigatedPretrainLoss = 2.3 - aFall, MitigatedTargetLoss = 2.0 + targetRise };
        Assert.True(LoraClaims.CheckMitigationLowersForgetting(Experiment([Run(0, 0), Mitigated(0.1, 0.05)]), 1.0 / 12).Holds);
        Assert.False(LoraClaims.CheckMitigationLowersForgetting(Experiment([Run(0, 0), Mitigated(0.1, 0.2)]), 1.0 / 12).Holds);
        Assert.False(LoraClaims.CheckMitigationLowersForgetting(Experiment([Run(0, 0), Mitigated(-0.01, -0.1)]), 1.0 / 12).Holds); // A rises
        Assert.Null(LoraClaims.CheckMitigationLowersForgetting(Experiment([Run(0, 0), Run(1, 3)]), 1.0 / 12).Holds);
    }

    [Fact]
    public void Mitigation_over_several_runs_is_a_tie_within_two_standard_errors_of_no_net_effect()
    {
        LoraRunRecord Mitigated(int rank, double aFall, double targetRise) => Run(rank, 3, 2.0, 0.3) with
            { MitigatedDirections = 2, MitigatedPretrainLoss = 2.3 - aFall, MitigatedTargetLoss = 2.0 + targetRise };
        // Notebook 04's six runs at commit 7f2d4c1 (falls on A, rises on the target): net effects
        // +0.163, +0.055, -0.044, -0.110, -0.081, -0.004, mean -0.0035, s.e. 0.041 by hand: a tie, not a failure.
        var before = Experiment([Run(0, 0), Mitigated(1, 0.247, 0.084), Mitigated(2, 0.187, 0.132), Mitigated(3, 0.179, 0.223),
            Mitigated(4, 0.039, 0.149), Mitigated(5, 0.089, 0.093), Mitigated(6, 0.066, 0.147)]);
        var tie = LoraClaims.CheckMitigationLowersForgetting(before, 1.0);
        Assert.Null(tie.Holds);
        Assert.True(tie.WithinError);
        Assert.Equal("tie", tie.Shown);
        Assert.Contains("s.e. over 6 runs", tie.Evidence);
        // The same falls with every rise 0.02: net mean +0.1145, s.e. 0.033, more than two standard errors: holds.
        var clear = Experiment([Run(0, 0), Mitigated(1, 0.247, 0.02), Mitigated(2, 0.187, 0.02), Mitigated(3, 0.179, 0.02),
            Mitigated(4, 0.039, 0.02), Mitigated(5, 0.089, 0.02), Mitigated(6, 0.066, 0.02)]);
        Assert.True(LoraClaims.CheckMitigationLowersForgetting(clear, 1.0).Holds);
        // A tie matched by ratio, with no check at matched loss, makes the claim inconclusive, not a non-replication.
        var v = LoraClaims.MitigationLowersForgetting(C(false), tie, Sound);
        Assert.Equal(ClaimOutcome.Inconclusive, v.Outcome);
        Assert.StartsWith("inconclusive (matched by ratio, the effect is within two standard errors of none)", v.Finding);
    }

    [Fact]
    public void Matched_pairs_judge_claims_1_and_3()
    {
        // Intruders: LoRA (5 + 2) / 2 = 3.5 vs full (1 + 3) / 2 = 2. Forgetting over the pair where LoRA has more: 0.3 vs 0.2.
        var (one, three) = LoraClaims.CheckPairs([new(5, 0.3, 1, 0.2, 0.02), new(2, 0.1, 3, 0.4, -0.03)]);
        Assert.True(one.Holds);
        Assert.Contains("target gaps <= 0.030", one.Evidence);
        Assert.True(three.Holds);
        var (noneOne, noneThree) = LoraClaims.CheckPairs([]);
        Assert.Null(noneOne.Holds);
        Assert.Null(noneThree.Holds);
        var (fewer, untestable) = LoraClaims.CheckPairs([new(1, 0.3, 3, 0.2, 0.0)]);
        Assert.False(fewer.Holds);
        Assert.Null(untestable.Holds);
    }

    [Fact]
    public void Two_ways_of_matching_that_disagree_leave_the_claim_matching_dependent()
    {
        var disagree = LoraClaims.CombineMatching(new(false, "e"), new(true, "g"));
        Assert.Null(disagree.Holds);
        Assert.True(disagree.MatchingDependent);
        Assert.True(LoraClaims.CombineMatching(new(true, "e"), new(null, "g")).Holds);
        var untested = LoraClaims.CombineMatching(new(null, "e"), new(true, "g"));
        Assert.Null(untested.Holds);
        Assert.False(untested.MatchingDependent);
    }

    [Fact]
    public void Ranks_at_a_common_level_use_each_trajectory_snapshot()
    {
        LoraTrajectoryRecord Trajectory(int intruders, bool reached = true) => new()
        {
            Snapshots = reached ? [new LoraLossSnapshot { Level = 2.5, Step = 10, TargetLoss = 2.49, Spectrum = Spectrum(intruders) }] : [],
        };
        var (a, b) = LoraClaims.CheckRanksAtLevel([(Run(1, 0), Trajectory(7)), (Run(4, 0), Trajectory(3)), (Run(1, 0, rs: true), Trajectory(9)), (Run(4, 0, rs: true), Trajectory(2, reached: false))], 2.5);
        Assert.True(a.Holds);  // r=4: 3 < r=1: 7
        Assert.False(b.Holds); // rank 1 only (rank 4's rsLoRA never reached 2.5): 9 vs 7
        Assert.Equal("rsLoRA 9 vs LoRA 7 over ranks [1]", b.Evidence);
        Assert.Null(LoraClaims.CheckRanksAtLevel([(Run(1, 0), Trajectory(7))], 2.5).HigherRank.Holds);
    }

    private static readonly LoraRegimeControls Sound = new(true, [], false);
    private static readonly LoraRegimeControls Doubtful = new(true, ["LoRA r=1 at lr 0.1 (target gap +0.4)"], false);
    private static LoraCheck C(bool? holds) => new(holds, "x");

    [Theory]
    // earlier, by ratio, at matched loss, controls sound -> outcome, finding prefix
    [InlineData(null, true, true, true, ClaimOutcome.Holds, "holds (by ratio and at matched")]
    [InlineData(null, null, true, true, ClaimOutcome.Holds, "regime mismatch (not testable")]
    [InlineData(null, false, true, true, ClaimOutcome.Holds, "regime mismatch (fails at unmatched")]
    [InlineData(null, true, false, true, ClaimOutcome.Fails, "genuine non-replication at this scale (holds only")]
    [InlineData(null, null, false, true, ClaimOutcome.Fails, "genuine non-replication at this scale (fails at matched target loss; not")]
    [InlineData(null, false, false, true, ClaimOutcome.Fails, "genuine non-replication at this scale (fails at unmatched and")]
    [InlineData(null, false, false, false, ClaimOutcome.Inconclusive, "inconclusive (base or learning-rate grid")]
    [InlineData(true, true, null, true, ClaimOutcome.Holds, "holds (in both regimes)")]
    [InlineData(false, true, null, true, ClaimOutcome.Holds, "regime mismatch (holds once matched by ratio)")]
    [InlineData(true, null, null, true, ClaimOutcome.Inconclusive, "inconclusive (not testable")]
    [InlineData(true, false, null, false, ClaimOutcome.Inconclusive, "inconclusive (base or learning-rate grid")]
    [InlineData(true, false, null, true, ClaimOutcome.Fails, "genuine non-replication at this scale (a comparison of each model with itself")]
    public void Classification_covers_every_branch(bool? earlier, bool? byRatio, bool? atLoss, bool sound, ClaimOutcome outcome, string finding)
    {
        var (o, f) = LoraClaims.Classify(C(earlier), C(byRatio), C(atLoss), sound ? Sound : Doubtful);
        Assert.Equal(outcome, o);
        Assert.StartsWith(finding, f);
    }

    [Fact]
    public void Matching_dependence_is_inconclusive_whatever_the_other_checks_say()
    {
        var v = LoraClaims.MoreForgettingAtMatchedLoss(C(true), C(true), LoraClaims.CombineMatching(C(false), C(true)), Sound);
        Assert.Equal(ClaimOutcome.Inconclusive, v.Outcome);
        Assert.Contains("depends on how the loss is matched", v.Finding);
        Assert.Equal("3", v.Id);
    }

    [Fact]
    public void Rslora_counts_as_holding_by_ratio_when_it_holds_at_a_fixed_alpha()
    {
        // By ratio it fails at alpha = 2r, holds at a fixed alpha; control M does not test it: the ratio check decides, and the earlier regime failed.
        var v = LoraClaims.RsLoraFewerIntruders(C(false), C(false), C(true), C(null), Sound);
        Assert.Equal(ClaimOutcome.Holds, v.Outcome);
        Assert.StartsWith("regime mismatch (holds once matched by ratio)", v.Finding);
        Assert.Equal(ClaimOutcome.Fails, LoraClaims.RsLoraFewerIntruders(C(false), C(false), C(false), C(false), Sound).Outcome);
    }

    [Fact]
    public void Mitigation_is_decided_by_ratio_and_matched_performance_changes_the_finding_only()
    {
        var v = LoraClaims.MitigationLowersForgetting(C(false), C(false), new LoraRegimeControls(true, [], true));
        Assert.Equal(ClaimOutcome.Fails, v.Outcome);
        Assert.Equal("genuine non-replication at this scale", v.Finding);
        Assert.Equal("the regime matched by ratio", v.DecidedBy);
        Assert.Equal(6, LoraClaims.ClaimIds.Count);
    }
}
