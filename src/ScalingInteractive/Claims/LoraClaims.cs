using System.Globalization;
using ScalingInteractive.LoraSpectra;

namespace ScalingInteractive.Claims;

/// <summary>
/// One experiment's test of a claim: true agrees with the paper, false contradicts it, null when the run cannot test it.
/// </summary>
/// <param name="Holds">The test's result (null: not testable here, or a tie).</param>
/// <param name="Evidence">The numbers in words.</param>
/// <param name="MatchingDependent">At matched target loss: the two ways of matching the loss disagree (the result is then null).</param>
/// <param name="WithinError">The effect is within two standard errors of none: a tie (the result is then null).</param>
public sealed record LoraCheck(bool? Holds, string Evidence, bool MatchingDependent = false, bool WithinError = false)
{
    /// <summary>The result in words: <c>holds</c>, <c>FAILS</c>, <c>tie</c> (within two standard errors) or <c>n/a</c>.</summary>
    public string Shown => Holds is null ? (WithinError ? "tie" : "n/a") : Holds.Value ? "holds" : "FAILS";

    /// <inheritdoc />
    public override string ToString() => $"{Shown} ({Evidence})";
}

/// <summary>A LoRA run and full fine-tuning measured at (nearly) the same target loss (control M).</summary>
/// <param name="LoraIntruders">The LoRA run's intruder count.</param>
/// <param name="LoraForgetting">The LoRA run's forgetting (loss on A after minus before).</param>
/// <param name="FullIntruders">Full fine-tuning's intruder count.</param>
/// <param name="FullForgetting">Full fine-tuning's forgetting.</param>
/// <param name="TargetGap">LoRA's target loss minus full fine-tuning's.</param>
public sealed record MatchedLossPair(int LoraIntruders, double LoraForgetting, int FullIntruders, double FullForgetting, double TargetGap);

/// <summary>The controls that say whether a failure can be blamed on the setting (notebook 04, section 3).</summary>
/// <param name="BasePretrained">Control P: the base is pre-trained enough to have a spectrum to intrude on.</param>
/// <param name="MethodsAtGridEdge">Control L: LoRA methods whose chosen rate is at an edge of the grid and that miss full fine-tuning's target loss.</param>
/// <param name="MatchedPerformanceReached">Some LoRA run ends within the tolerance of full fine-tuning's target loss.</param>
public sealed record LoraRegimeControls(bool BasePretrained, IReadOnlyList<string> MethodsAtGridEdge, bool MatchedPerformanceReached)
{
    /// <summary>Both controls P and L pass: a failure is not the setting's fault.</summary>
    public bool RegimeSound => BasePretrained && MethodsAtGridEdge.Count == 0;
}

/// <summary>
/// Judges of notebook 04's claims (Shuttleworth et al. 2024, "LoRA vs full fine-tuning: an illusion of equivalence").
/// Each claim is first checked on one experiment (the <c>Check</c> methods: the earlier regime, the regime matched by
/// ratio, control A) and at matched target loss (control M); the claim's verdict then classifies those checks with
/// <see cref="Classify"/>.
/// </summary>
public static class LoraClaims
{
    /// <summary>Short citation.</summary>
    public const string Paper = "Shuttleworth et al. 2024";

    /// <summary>Target loss difference (nats) that counts as matched performance.</summary>
    public const double MatchTolerance = 0.1;

    /// <summary>The largest r/d in the paper (r the rank, d the smaller side of the adapted matrix).</summary>
    public const double PaperMaxRankRatio = 1.0 / 12;

    /// <summary>The claims notebook 04 judges, in order.</summary>
    public static IReadOnlyList<string> ClaimIds { get; } = ["1", "2a", "2b", "3", "4", "5"];

    /// <summary>The verdict table of notebook 04.</summary>
    public static VerdictTable Table(params ClaimVerdict[] verdicts) => new(Paper, ClaimIds, verdicts);

    private static string F(double x, string format) => x.ToString(format, CultureInfo.InvariantCulture);

    private static bool InRegime(LoraRunRecord r, int width, double maxRatio) => r.Rank == 0 || r.Rank <= maxRatio * width + 1e-9;

    // Selected LoRA runs (one per method) with r/d at most maxRatio and a spectrum.
    private static List<LoraRunRecord> SelectedLora(LoraExperimentResult e, double maxRatio) =>
        e.Selected.Where(r => r.Rank > 0 && InRegime(r, e.Options.Model.Width, maxRatio) && r.Spectrum is not null).ToList();

    /// <summary>Claim 1 on one experiment: the mean intruder count over the selected LoRA runs (r/d at most <paramref name="maxRatio"/>) exceeds full fine-tuning's; null without LoRA runs.</summary>
    public static LoraCheck CheckMoreIntruders(LoraExperimentResult e, double maxRatio)
    {
        ArgumentNullException.ThrowIfNull(e);
        var sel = SelectedLora(e, maxRatio);
        int full = e.Full?.Spectrum?.TotalIntruders ?? 0;
        double mean = sel.Count > 0 ? sel.Average(r => r.Spectrum!.TotalIntruders) : double.NaN;
        return new(e.Full is null || sel.Count == 0 ? null : mean > full, $"LoRA mean {F(mean, "F1")} vs full {full}");
    }

    /// <summary>Claim 2a on one experiment: plain LoRA at its highest rank has fewer intruders than at its lowest; null with fewer than two ranks.</summary>
    public static LoraCheck CheckFewerIntrudersAtHigherRank(LoraExperimentResult e, double maxRatio)
    {
        ArgumentNullException.ThrowIfNull(e);
        var plain = SelectedLora(e, maxRatio).Where(r => !r.RsLora).OrderBy(r => r.Rank).ToList();
        return plain.Count < 2 ? new(null, "fewer than two ranks")
            : new(plain[^1].Spectrum!.TotalIntruders < plain[0].Spectrum!.TotalIntruders, string.Join(", ", plain.Select(r => $"r={r.Rank}: {r.Spectrum!.TotalIntruders}")));
    }

    /// <summary>Claim 2b on one experiment: summed over the ranks run both ways, rsLoRA has fewer intruders than LoRA; null when no rank has both.</summary>
    public static LoraCheck CheckRsLoraFewerIntruders(LoraExperimentResult e, double maxRatio)
    {
        ArgumentNullException.ThrowIfNull(e);
        var sel = SelectedLora(e, maxRatio);
        var plain = sel.Where(r => !r.RsLora).ToList();
        var pairs = sel.Where(r => r.RsLora).Select(rs => (rs, p: plain.FirstOrDefault(p => p.Rank == rs.Rank))).Where(x => x.p is not null).ToList();
        int rsSum = pairs.Sum(x => x.rs.Spectrum!.TotalIntruders), plSum = pairs.Sum(x => x.p!.Spectrum!.TotalIntruders);
        return new(pairs.Count == 0 ? null : rsSum < plSum, $"rsLoRA {rsSum} vs LoRA {plSum} over ranks [{string.Join(", ", pairs.Select(x => x.rs.Rank))}]");
    }

    /// <summary>
    /// Claim 3 on one experiment: the LoRA runs of the whole grid (any rate, not diverged, r/d at most
    /// <paramref name="maxRatio"/>) whose target loss is within <paramref name="tolerance"/> of full fine-tuning's and that
    /// have more intruders than it forget more on average; null when there is no such run.
    /// </summary>
    public static LoraCheck CheckForgetsMoreAtMatchedLoss(LoraExperimentResult e, double maxRatio, double tolerance = MatchTolerance)
    {
        ArgumentNullException.ThrowIfNull(e);
        var full = e.Full;
        if (full?.Spectrum is null) return new(null, "no full fine-tuning run");
        int d = e.Options.Model.Width, fullIntr = full.Spectrum.TotalIntruders;
        var candidates = e.Runs.Where(r => r.Rank > 0 && InRegime(r, d, maxRatio) && !r.Diverged).ToList();
        var matched = candidates.Where(r => r.Spectrum is not null && Math.Abs(r.TargetLoss - full.TargetLoss) <= tolerance && r.Spectrum.TotalIntruders > fullIntr).ToList();
        if (matched.Count == 0)
            return new(null, $"no LoRA run with intruders within {F(tolerance, "G")} of full's target {F(full.TargetLoss, "F3")} " +
                             $"(closest gap {F(candidates.Select(r => Math.Abs(r.TargetLoss - full.TargetLoss)).DefaultIfEmpty(double.NaN).Min(), "F3")})");
        double forget = matched.Average(r => r.Forgetting);
        return new(forget > full.Forgetting, $"{matched.Count} matched LoRA runs forget {F(forget, "+0.000;-0.000")} vs full {F(full.Forgetting, "+0.000;-0.000")}");
    }

    /// <summary>Regression on the first task B of a sequence: its loss at the end minus right after training on it.</summary>
    public static double RegressionOnFirstTask(LoraSequenceRecord sequence)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        return sequence.Losses[^1][1] - sequence.Losses[1][1];
    }

    /// <summary>Claim 4 on one experiment: the lowest-rank LoRA sequence regresses more on B than full fine-tuning's; null without both (not diverged).</summary>
    public static LoraCheck CheckMoreForgettingInSequence(LoraExperimentResult e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var full = e.Sequences.FirstOrDefault(q => q.Rank == 0 && !q.Diverged);
        var lora = e.Sequences.Where(q => q.Rank > 0 && !q.Diverged).OrderBy(q => q.Rank).FirstOrDefault();
        return full is null || lora is null ? new(null, "no task sequence in this run") : CheckMoreForgettingInSequence(lora, full, "B-loss increase");
    }

    /// <summary>Claim 4 on a LoRA sequence and a full fine-tuning sequence (e.g. stopped at LoRA's task losses, control M); null when full diverged.</summary>
    public static LoraCheck CheckMoreForgettingInSequence(LoraSequenceRecord lora, LoraSequenceRecord full, string label = "B-loss increase at matched task losses")
    {
        ArgumentNullException.ThrowIfNull(lora);
        ArgumentNullException.ThrowIfNull(full);
        double l = RegressionOnFirstTask(lora), f = RegressionOnFirstTask(full);
        return new(full.Diverged ? null : l > f, $"{label}: full {F(f, "F3")}, {lora.Method} {F(l, "F3")}");
    }

    /// <summary>
    /// Claim 5 on one experiment, over the selected LoRA runs with intruders: scaling their intruder directions by
    /// lambda lowers the loss on A (forgetting) by more than it raises the target loss. Per run, the net effect is the fall
    /// on A minus the rise on the target. Rule: fails when A's loss does not fall on average; with two or more runs, a
    /// mean net effect within two standard errors (over runs) of zero is a tie (null, <see cref="LoraCheck.WithinError"/>),
    /// else its sign decides; a single run is decided by its sign. Null when no run had intruders.
    /// </summary>
    public static LoraCheck CheckMitigationLowersForgetting(LoraExperimentResult e, double maxRatio)
    {
        ArgumentNullException.ThrowIfNull(e);
        var mit = SelectedLora(e, maxRatio).Where(r => r.MitigatedDirections > 0).ToList();
        if (mit.Count == 0) return new(null, "no run had intruders");
        double aFall = mit.Average(r => r.PretrainLossAfter - r.MitigatedPretrainLoss), tRise = mit.Average(r => r.MitigatedTargetLoss - r.TargetLoss);
        var net = mit.Select(r => (r.PretrainLossAfter - r.MitigatedPretrainLoss) - (r.MitigatedTargetLoss - r.TargetLoss)).ToList();
        double mean = net.Average();
        double se = net.Count > 1 ? Math.Sqrt(net.Sum(x => (x - mean) * (x - mean)) / (net.Count - 1) / net.Count) : double.NaN;
        string evidence = $"A loss falls {F(aFall, "F4")} on average, target rises {F(tRise, "F4")}" +
            (net.Count > 1 ? $"; net {F(mean, "+0.0000;-0.0000")} +- {F(se, "F4")} (s.e. over {net.Count} runs)" : "");
        if (aFall <= 0) return new(false, evidence);
        if (net.Count > 1 && Math.Abs(mean) <= 2 * se) return new(null, evidence + ": within 2 standard errors of no net effect", WithinError: true);
        return new(mean > 0, evidence);
    }

    /// <summary>Every claim checked on one experiment, by claim id (the notebook's per-experiment table).</summary>
    public static IReadOnlyDictionary<string, LoraCheck> Checks(LoraExperimentResult e, double maxRatio) => new Dictionary<string, LoraCheck>
    {
        ["1"] = CheckMoreIntruders(e, maxRatio), ["2a"] = CheckFewerIntrudersAtHigherRank(e, maxRatio), ["2b"] = CheckRsLoraFewerIntruders(e, maxRatio),
        ["3"] = CheckForgetsMoreAtMatchedLoss(e, maxRatio), ["4"] = CheckMoreForgettingInSequence(e), ["5"] = CheckMitigationLowersForgetting(e, maxRatio),
    };

    /// <summary>
    /// Claims 1 and 3 on (LoRA, full) pairs at matched target loss (control M): claim 1 holds when LoRA's mean intruder
    /// count exceeds full's; claim 3, over the pairs where LoRA has more intruders, when LoRA's mean forgetting exceeds
    /// full's (null without such pairs). Both null without pairs.
    /// </summary>
    public static (LoraCheck MoreIntruders, LoraCheck MoreForgetting) CheckPairs(IReadOnlyList<MatchedLossPair> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0) return (new(null, "no pair within the tolerance"), new(null, "no pair within the tolerance"));
        double li = pairs.Average(p => p.LoraIntruders), fi = pairs.Average(p => p.FullIntruders);
        var more = pairs.Where(p => p.LoraIntruders > p.FullIntruders).ToList();
        var one = new LoraCheck(li > fi, $"LoRA mean {F(li, "F1")} vs full {F(fi, "F1")} intruders ({pairs.Count} pairs, target gaps <= {F(pairs.Max(p => Math.Abs(p.TargetGap)), "F3")})");
        if (more.Count == 0) return (one, new(null, "no LoRA run has more intruders than its matched full run"));
        double lf = more.Average(p => p.LoraForgetting), ff = more.Average(p => p.FullForgetting);
        return (one, new(lf > ff, $"{more.Count} LoRA runs with more intruders forget {F(lf, "+0.000")} vs full {F(ff, "+0.000")}"));
    }

    /// <summary>
    /// A claim at matched target loss from the two ways of matching it: early stopping decides; when the cross-check
    /// (full fine-tuning at a lower rate of its grid) also tests it and disagrees, the result depends on how the loss is
    /// matched (null, <see cref="LoraCheck.MatchingDependent"/>).
    /// </summary>
    public static LoraCheck CombineMatching(LoraCheck earlyStopping, LoraCheck lowerRate)
    {
        ArgumentNullException.ThrowIfNull(earlyStopping);
        ArgumentNullException.ThrowIfNull(lowerRate);
        bool dependent = earlyStopping.Holds is not null && lowerRate.Holds is not null && earlyStopping.Holds != lowerRate.Holds;
        return new(dependent ? null : earlyStopping.Holds, $"early stopping: {earlyStopping}; full at a lower rate: {lowerRate}", dependent);
    }

    /// <summary>
    /// Claims 2a and 2b at one common target-loss level (control M): each LoRA method's snapshot at that level from its
    /// trajectory; 2a holds when plain LoRA's highest rank has fewer intruders than its lowest (null with fewer than two),
    /// 2b when rsLoRA's intruders summed over the ranks with both are fewer than LoRA's (null when no rank has both).
    /// </summary>
    public static (LoraCheck HigherRank, LoraCheck RsLora) CheckRanksAtLevel(IReadOnlyList<(LoraRunRecord Run, LoraTrajectoryRecord Trajectory)> trajectories, double level)
    {
        ArgumentNullException.ThrowIfNull(trajectories);
        var at = trajectories.Select(x => (x.Run, Snap: x.Trajectory.At(level))).Where(x => x.Snap?.Spectrum is not null).ToList();
        var plain = at.Where(x => !x.Run.RsLora).OrderBy(x => x.Run.Rank).ToList();
        var rsPairs = at.Where(x => x.Run.RsLora).Select(x => (rs: x, p: plain.FirstOrDefault(p => p.Run.Rank == x.Run.Rank))).Where(x => x.p.Snap is not null).ToList();
        int rsSum = rsPairs.Sum(x => x.rs.Snap!.Spectrum!.TotalIntruders), plSum = rsPairs.Sum(x => x.p.Snap!.Spectrum!.TotalIntruders);
        var a = new LoraCheck(plain.Count < 2 ? null : plain[^1].Snap!.Spectrum!.TotalIntruders < plain[0].Snap!.Spectrum!.TotalIntruders,
            string.Join(", ", plain.Select(x => $"r={x.Run.Rank}: {x.Snap!.Spectrum!.TotalIntruders} (step {x.Snap.Step}, target {F(x.Snap.TargetLoss, "F3")})")));
        var b = new LoraCheck(rsPairs.Count == 0 ? null : rsSum < plSum, $"rsLoRA {rsSum} vs LoRA {plSum} over ranks [{string.Join(", ", rsPairs.Select(x => x.rs.Run.Rank))}]");
        return (a, b);
    }

    /// <summary>
    /// The classification every claim of notebook 04 uses, from its checks in the earlier regime (control R), in the
    /// regime matched by ratio (section 2) and at matched target loss (control M), with controls P and L.
    /// Rule: a result at matched loss that depends on how the loss is matched is inconclusive. Holds at matched loss:
    /// holds when it also holds by ratio, else regime mismatch (outcome holds). Fails at matched loss: inconclusive when
    /// control P or L is in doubt, else genuine non-replication (fails). Not tested at matched loss: the ratio-matched
    /// check decides: holds (in both regimes when the earlier one held too; regime mismatch when it did not), not
    /// testable or a tie within two standard errors is inconclusive, a failure is inconclusive when P or L is in doubt and a genuine non-replication otherwise.
    /// </summary>
    public static (ClaimOutcome Outcome, string Finding) Classify(LoraCheck earlier, LoraCheck byRatio, LoraCheck atMatchedLoss, LoraRegimeControls controls)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        ArgumentNullException.ThrowIfNull(byRatio);
        ArgumentNullException.ThrowIfNull(atMatchedLoss);
        ArgumentNullException.ThrowIfNull(controls);
        bool? before = earlier.Holds, after = byRatio.Holds, atLoss = atMatchedLoss.Holds;
        const string doubt = "inconclusive (base or learning-rate grid in doubt, controls P/L)";
        if (atMatchedLoss.MatchingDependent) return (ClaimOutcome.Inconclusive, "inconclusive at this scale (at matched target loss the verdict depends on how the loss is matched, control M)");
        if (atLoss == true)
            return (ClaimOutcome.Holds, after == true ? "holds (by ratio and at matched target loss)"
                : after is null ? "regime mismatch (not testable at unmatched loss, holds at matched target loss)"
                : "regime mismatch (fails at unmatched loss, holds at matched target loss)");
        if (atLoss == false)
            return !controls.RegimeSound ? (ClaimOutcome.Inconclusive, doubt)
                : (ClaimOutcome.Fails, after == true ? "genuine non-replication at this scale (holds only at unmatched loss, fails at matched target loss)"
                    : after is null ? "genuine non-replication at this scale (fails at matched target loss; not testable at unmatched loss)"
                    : "genuine non-replication at this scale (fails at unmatched and at matched target loss)");
        if (after == true) return (ClaimOutcome.Holds, before == true ? "holds (in both regimes)" : "regime mismatch (holds once matched by ratio)");
        if (after is null) return (ClaimOutcome.Inconclusive, byRatio.WithinError
            ? "inconclusive (matched by ratio, the effect is within two standard errors of none)" : "inconclusive (not testable in this run)");
        if (!controls.RegimeSound) return (ClaimOutcome.Inconclusive, doubt);
        return (ClaimOutcome.Fails, "genuine non-replication at this scale" + (controls.MatchedPerformanceReached ? "" : " (a comparison of each model with itself: target loss not matched to full fine-tuning's)"));
    }

    private const string RuleText = "classified from the earlier regime, the regime matched by ratio and matched target loss (LoraClaims.Classify): matched loss decides when it tests the claim, else the ratio-matched check; failures count only with controls P and L sound";

    private static ClaimVerdict Verdict(string id, string claim, LoraCheck earlier, LoraCheck byRatio, LoraCheck atMatchedLoss, LoraRegimeControls controls, string? extra = null)
    {
        var (outcome, finding) = Classify(earlier, byRatio, atMatchedLoss, controls);
        string decidedBy = atMatchedLoss.MatchingDependent || atMatchedLoss.Holds is not null ? "control M (matched target loss)" : "the regime matched by ratio";
        var evidence = new List<Evidence>
        {
            new("earlier regime", Code(earlier.Holds), earlier.ToString()), new("matched by ratio", Code(byRatio.Holds), byRatio.ToString()),
            new("at matched target loss", Code(atMatchedLoss.Holds), atMatchedLoss.ToString()),
            new("base pre-trained (control P)", controls.BasePretrained ? 1 : 0), new("methods at a grid edge (control L)", controls.MethodsAtGridEdge.Count, string.Join("; ", controls.MethodsAtGridEdge)),
        };
        return new(Paper, id, claim, outcome, finding + (extra is null ? "" : "; " + extra), RuleText, decidedBy, evidence);
    }

    // 1 holds, 0 fails, NaN not testable.
    private static double Code(bool? holds) => holds is null ? double.NaN : holds.Value ? 1 : 0;

    /// <summary>Claim 1: LoRA has more intruder dimensions than full fine-tuning. Rule: <see cref="Classify"/>.</summary>
    public static ClaimVerdict MoreIntrudersThanFull(LoraCheck earlier, LoraCheck byRatio, LoraCheck atMatchedLoss, LoraRegimeControls controls) =>
        Verdict("1", "LoRA-fine-tuned matrices have more intruder dimensions than fully fine-tuned ones.", earlier, byRatio, atMatchedLoss, controls);

    /// <summary>Claim 2a: intruders fall with rank. Rule: <see cref="Classify"/>.</summary>
    public static ClaimVerdict FewerIntrudersAtHigherRank(LoraCheck earlier, LoraCheck byRatio, LoraCheck atMatchedLoss, LoraRegimeControls controls) =>
        Verdict("2a", "Higher LoRA ranks produce fewer intruder dimensions.", earlier, byRatio, atMatchedLoss, controls);

    /// <summary>
    /// Claim 2b: rsLoRA has fewer intruders than LoRA. Rule: <see cref="Classify"/>, where the ratio-matched check
    /// counts as holding when it holds at alpha = 2r or at one fixed alpha for both (control A, the rsLoRA paper's and
    /// PEFT's convention).
    /// </summary>
    public static ClaimVerdict RsLoraFewerIntruders(LoraCheck earlier, LoraCheck byRatio, LoraCheck fixedAlpha, LoraCheck atMatchedLoss, LoraRegimeControls controls)
    {
        ArgumentNullException.ThrowIfNull(byRatio);
        ArgumentNullException.ThrowIfNull(fixedAlpha);
        var after = fixedAlpha.Holds == true ? fixedAlpha with { Evidence = $"at a fixed alpha: {fixedAlpha.Evidence}; at alpha = 2r: {byRatio}" } : byRatio;
        return Verdict("2b", "Rank-stabilised LoRA (alpha/sqrt(r)) produces fewer intruder dimensions than LoRA (alpha/r).", earlier, after, atMatchedLoss, controls,
            $"alpha = 2r for both: {byRatio.Shown}, both at a fixed alpha: {fixedAlpha.Shown}");
    }

    /// <summary>Claim 3: LoRA with intruders forgets more at matched target loss. Rule: <see cref="Classify"/>.</summary>
    public static ClaimVerdict MoreForgettingAtMatchedLoss(LoraCheck earlier, LoraCheck byRatio, LoraCheck atMatchedLoss, LoraRegimeControls controls) =>
        Verdict("3", "LoRA models with intruder dimensions forget more of the pre-training distribution at matched target loss.", earlier, byRatio, atMatchedLoss, controls);

    /// <summary>Claim 4: LoRA loses more on earlier tasks in a sequence. Rule: <see cref="Classify"/>.</summary>
    public static ClaimVerdict MoreForgettingInSequence(LoraCheck earlier, LoraCheck byRatio, LoraCheck atMatchedLoss, LoraRegimeControls controls) =>
        Verdict("4", "Trained on tasks in sequence, LoRA degrades more on earlier tasks than full fine-tuning.", earlier, byRatio, atMatchedLoss, controls);

    /// <summary>
    /// Claim 5: scaling intruder directions by lambda lowers forgetting at little target cost. Rule: <see cref="Classify"/>
    /// with no check at matched target loss (each model is compared with itself, so matching changes nothing).
    /// </summary>
    public static ClaimVerdict MitigationLowersForgetting(LoraCheck earlier, LoraCheck byRatio, LoraRegimeControls controls) =>
        Verdict("5", "Scaling the intruder directions of W by lambda = 0.75 lowers forgetting at little cost on the target.", earlier, byRatio,
            new LoraCheck(null, "not a comparison of two methods: the ratio-matched verdict stands"), controls);
}
