using System.Globalization;
using ScalingInteractive.IntrinsicDimension;

namespace ScalingInteractive.Claims;

/// <summary>
/// One fine-tuning starting point of a language-model intrinsic-dimension experiment: its sweep and the accuracy of
/// theta0 itself on the target (the subspace run at d = 0).
/// </summary>
/// <param name="Name">Arm name, e.g. <c>T-w32-pretrained</c>.</param>
/// <param name="Report">The sweep over d (its first series is used) with the full fine-tuning baseline.</param>
/// <param name="Theta0Accuracy">theta0's own accuracy on the target.</param>
public sealed record LanguageModelArm(string Name, IntrinsicDimensionReport Report, double Theta0Accuracy)
{
    /// <summary>
    /// d at an accuracy target on the log-interpolated mean curve: 0 when theta0 already reaches it, infinity when no
    /// swept d does.
    /// </summary>
    public double DAt(double target) => IntrinsicDimensionClaims.DAt(Report.Series[0].Curve, Theta0Accuracy, target);

    /// <summary>d90 relative to this arm's own full fine-tuning baseline.</summary>
    public double D90 => DAt(0.9 * Report.Baseline);
}

/// <summary>
/// One seed's SAID and plain-subspace (DID) curves on the same pre-trained theta0 and the same grid of d.
/// </summary>
/// <param name="Seed">Projection and batch-order seed.</param>
/// <param name="Baseline">Full fine-tuning baseline the targets are fractions of (the DID sweep's, for that seed).</param>
/// <param name="Did">Plain subspace curve, restricted to the d that SAID was swept at.</param>
/// <param name="Said">SAID curve.</param>
public sealed record SaidSeedCurves(int Seed, double Baseline, IReadOnlyList<CurvePoint> Did, IReadOnlyList<CurvePoint> Said)
{
    /// <summary>The curves of two sweeps of one seed: DID restricted to SAID's d, against the DID sweep's baseline.</summary>
    public static SaidSeedCurves From(int seed, IntrinsicDimensionReport did, IntrinsicDimensionReport said)
    {
        ArgumentNullException.ThrowIfNull(did);
        ArgumentNullException.ThrowIfNull(said);
        var saidCurve = said.Series[0].Curve;
        var dims = saidCurve.Select(p => p.Dimension).ToHashSet();
        return new SaidSeedCurves(seed, did.Baseline, did.Series[0].Curve.Where(p => dims.Contains(p.Dimension)).ToList(), saidCurve);
    }
}

/// <summary>
/// Judges of notebook 03's claims (Li et al. 2018, "Measuring the intrinsic dimension of objective landscapes";
/// Aghajanyan et al. 2020, "Intrinsic dimensionality explains the effectiveness of language model fine-tuning").
/// d values are log-interpolated crossings of the mean curve; a d not reached within the sweep is infinity
/// (above the largest swept d); equal values, infinity included, are a tie.
/// </summary>
public static class IntrinsicDimensionClaims
{
    /// <summary>Short citation of the papers.</summary>
    public const string Paper = "Li et al. 2018; Aghajanyan et al. 2020";

    /// <summary>The claims notebook 03 judges, in order.</summary>
    public static IReadOnlyList<string> ClaimIds { get; } = ["1a", "1b", "2", "3", "4", "4c", "5"];

    /// <summary>The verdict table of notebook 03 (complete when every id of <see cref="ClaimIds"/> has a verdict).</summary>
    public static VerdictTable Table(params ClaimVerdict[] verdicts) => new(Paper, ClaimIds, verdicts);

    /// <summary>d at a target on a curve: 0 when theta0 reaches it, else the log-interpolated crossing, infinity when not reached.</summary>
    public static double DAt(IReadOnlyList<CurvePoint> curve, double theta0Accuracy, double target) =>
        theta0Accuracy >= target ? 0 : IntrinsicDimensionAnalysis.Crossing(curve, target).Interpolated ?? double.PositiveInfinity;

    /// <summary>Interpolated d90 of a series (infinity when not reached).</summary>
    public static double D90(IntrinsicDimensionReport report, string series = "fastfood")
    {
        ArgumentNullException.ThrowIfNull(report);
        return report.Series.FirstOrDefault(s => s.Name == series)?.D90?.Interpolated ?? double.PositiveInfinity;
    }

    private static string Show(double d) => double.IsPositiveInfinity(d) ? "not reached" : d.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>
    /// Claim 1a: the MLP's d90 is tiny next to its parameter count D.
    /// Rule: holds when d90 &lt; D/10; fails when d90 (reached) is at least D/10; inconclusive when d90 is not reached
    /// and the largest swept d is below D/10 (the sweep cannot tell; the notebook used to count this as a failure).
    /// </summary>
    public static ClaimVerdict D90FarBelowParameterCount(IntrinsicDimensionReport mlp, string series = "fastfood")
    {
        ArgumentNullException.ThrowIfNull(mlp);
        const string claim = "The MLP's d90 on MNIST is far below its parameter count D (Li et al.: about 750 of 199,210 on 60k).";
        const string rule = "holds when d90 < D/10; fails when a reached d90 is at least D/10; inconclusive when d90 is not reached below D/10";
        double d90 = D90(mlp, series), bound = mlp.ParameterCount / 10.0;
        long largest = mlp.Series.FirstOrDefault(s => s.Name == series)?.Curve.Select(p => p.Dimension).DefaultIfEmpty(0).Max() ?? 0;
        var evidence = new List<Evidence> { new("d90", d90, series), new("D", mlp.ParameterCount, "parameters"), new("baseline accuracy", mlp.Baseline), new("largest swept d", largest) };
        var (outcome, finding) = d90 < bound ? (ClaimOutcome.Holds, $"holds: d90 {Show(d90)} of D = {mlp.ParameterCount:N0}")
            : double.IsFinite(d90) || largest >= bound ? (ClaimOutcome.Fails, $"genuine non-replication at this scale: d90 {Show(d90)} is not below D/10 = {bound:N0}")
            : (ClaimOutcome.Inconclusive, $"inconclusive: d90 not reached by the largest swept d {largest:N0}, below D/10 = {bound:N0}");
        return new(Paper, "1a", claim, outcome, finding, rule, "d90 against D/10", evidence);
    }

    /// <summary>
    /// Claim 1b: the CNN's d90 is lower than the MLP's on the same task.
    /// Rule: holds when d90(CNN) &lt; d90(MLP); inconclusive on a tie (equal, or neither reached); fails otherwise.
    /// </summary>
    public static ClaimVerdict CnnBelowMlp(IntrinsicDimensionReport cnn, IntrinsicDimensionReport mlp, string series = "fastfood")
    {
        ArgumentNullException.ThrowIfNull(cnn);
        ArgumentNullException.ThrowIfNull(mlp);
        const string claim = "The LeNet-style CNN has a lower d90 than the MLP on MNIST (Li et al.: about 290 vs 750).";
        const string rule = "holds when d90(CNN) < d90(MLP); a tie (equal or neither reached) is inconclusive; fails otherwise";
        double c = D90(cnn, series), m = D90(mlp, series);
        var evidence = new List<Evidence> { new("d90 CNN", c), new("d90 MLP", m), new("D CNN", cnn.ParameterCount), new("D MLP", mlp.ParameterCount) };
        var (outcome, finding) = Compare(c, m, $"CNN {Show(c)} vs MLP {Show(m)}");
        return new(Paper, "1b", claim, outcome, finding, rule, "d90 of both models", evidence);
    }

    // Lower is the claim's direction: holds when a < b, a tie is inconclusive.
    private static (ClaimOutcome, string) Compare(double a, double b, string numbers) =>
        a < b ? (ClaimOutcome.Holds, $"holds: {numbers}")
        : a == b ? (ClaimOutcome.Inconclusive, $"inconclusive: a tie on the grid ({numbers})")
        : (ClaimOutcome.Fails, $"genuine non-replication at this scale: {numbers}");

    /// <summary>
    /// Claim 2: dense and Fastfood projections give the same curve.
    /// Rule: holds when, at every d both swept, the mean accuracies differ by less than <paramref name="tolerance"/>;
    /// fails when one d differs by more; inconclusive when they share no d.
    /// </summary>
    public static ClaimVerdict DenseAgreesWithFastfood(IntrinsicDimensionReport dense, IntrinsicDimensionReport fastfood, double tolerance = 0.05)
    {
        ArgumentNullException.ThrowIfNull(dense);
        ArgumentNullException.ThrowIfNull(fastfood);
        const string claim = "Dense and Fastfood random projections give the same accuracy at each d.";
        string rule = $"holds when |dense - fastfood| < {tolerance.ToString(CultureInfo.InvariantCulture)} at every d both swept; inconclusive when none is shared";
        var pairs = dense.Series[0].Curve.Select(p => (p.Dimension, Dense: p.Mean, Fast: fastfood.Series[0].Curve.FirstOrDefault(q => q.Dimension == p.Dimension)?.Mean))
            .Where(x => x.Fast is not null).Select(x => (x.Dimension, x.Dense, Fast: x.Fast!.Value)).ToList();
        var evidence = pairs.SelectMany(x => new[] { new Evidence($"dense d={x.Dimension}", x.Dense), new Evidence($"fastfood d={x.Dimension}", x.Fast) }).ToList();
        if (pairs.Count == 0) return new(Paper, "2", claim, ClaimOutcome.Inconclusive, "inconclusive: no d swept with both projections", rule, "accuracy at shared d", evidence);
        double worst = pairs.Max(x => Math.Abs(x.Dense - x.Fast));
        evidence.Add(new("largest difference", worst));
        return worst < tolerance
            ? new(Paper, "2", claim, ClaimOutcome.Holds, $"holds: largest difference {worst:F3} over {pairs.Count} shared d", rule, "accuracy at shared d", evidence)
            : new(Paper, "2", claim, ClaimOutcome.Fails, $"genuine non-replication at this scale: accuracies differ by {worst:F3}", rule, "accuracy at shared d", evidence);
    }

    /// <summary>
    /// Claim 3: pre-training lowers the intrinsic dimension of fine-tuning. Judged in regime S (synthetic pre-training,
    /// the first version) and in regime T (the paper's regime: pre-training on text in the task's language), each by
    /// d90 against the arm's own baseline (0 when theta0 already reaches it).
    /// Rule: holds when d90(pre-trained) &lt; d90(random) in S; regime mismatch (holds) when only in T; inconclusive when
    /// T ties; genuine non-replication (fails) otherwise. The notebook did not test the tie for this claim; it now does,
    /// as for claim 4.
    /// </summary>
    public static ClaimVerdict PretrainingLowersD90(LanguageModelArm synthRandom, LanguageModelArm synthPretrained, LanguageModelArm transferRandom, LanguageModelArm transferPretrained)
    {
        ArgumentNullException.ThrowIfNull(synthRandom);
        ArgumentNullException.ThrowIfNull(synthPretrained);
        ArgumentNullException.ThrowIfNull(transferRandom);
        ArgumentNullException.ThrowIfNull(transferPretrained);
        const string claim = "Pre-training lowers the intrinsic dimension (d90) of fine-tuning.";
        double sR = synthRandom.D90, sP = synthPretrained.D90, tR = transferRandom.D90, tP = transferPretrained.D90;
        double fixedT = 0.9 * transferRandom.Report.Baseline;
        var evidence = new List<Evidence>
        {
            new("S d90 random", sR), new("S d90 pre-trained", sP), new("T d90 random", tR), new("T d90 pre-trained", tP),
            new("T theta0 pre-trained", transferPretrained.Theta0Accuracy, "accuracy at d = 0"),
            new("T d random at fixed accuracy", transferRandom.DAt(fixedT), $"target {fixedT:F3}"), new("T d pre-trained at fixed accuracy", transferPretrained.DAt(fixedT), $"target {fixedT:F3}"),
        };
        var (outcome, finding) = Classify(sP < sR, tP < tR, tP == tR, $"S: random {Show(sR)} vs pre-trained {Show(sP)}; T: random {Show(tR)} vs pre-trained {Show(tP)}");
        return new(Paper, "3", claim, outcome, finding, RegimeRule, "d90 in regime T (the paper's regime) where regime S fails", evidence);
    }

    private const string RegimeRule = "holds in regime S: holds; only in regime T: regime mismatch (holds); a tie in T: inconclusive; fails in T too: genuine non-replication";

    private static (ClaimOutcome, string) Classify(bool inS, bool inT, bool tieT, string numbers) =>
        inS ? (ClaimOutcome.Holds, $"holds ({numbers})")
        : inT ? (ClaimOutcome.Holds, $"regime mismatch: holds in regime T only ({numbers})")
        : tieT ? (ClaimOutcome.Inconclusive, $"inconclusive: a tie on the grid in regime T ({numbers})")
        : (ClaimOutcome.Fails, $"genuine non-replication at this scale: fails in regime T too ({numbers})");

    /// <summary>
    /// Claim 4: a larger pre-trained model has a lower intrinsic dimension, at equal pre-training steps, in regimes S and T.
    /// Rule: as claim 3 (<see cref="PretrainingLowersD90"/>), with d90(larger) &lt; d90(smaller).
    /// </summary>
    public static ClaimVerdict LargerModelLowersD90(LanguageModelArm synthSmall, LanguageModelArm synthLarge, LanguageModelArm transferSmall, LanguageModelArm transferLarge)
    {
        ArgumentNullException.ThrowIfNull(synthSmall);
        ArgumentNullException.ThrowIfNull(synthLarge);
        ArgumentNullException.ThrowIfNull(transferSmall);
        ArgumentNullException.ThrowIfNull(transferLarge);
        const string claim = "A larger pre-trained model has a lower d90 than a smaller one (equal pre-training steps).";
        double sS = synthSmall.D90, sL = synthLarge.D90, tS = transferSmall.D90, tL = transferLarge.D90;
        var evidence = new List<Evidence>
        {
            new("S d90 smaller", sS), new("S d90 larger", sL), new("T d90 smaller", tS), new("T d90 larger", tL),
            new("parameter ratio", (double)transferLarge.Report.ParameterCount / transferSmall.Report.ParameterCount, "larger / smaller"),
        };
        var (outcome, finding) = Classify(sL < sS, tL < tS, tL == tS, $"S: smaller {Show(sS)} vs larger {Show(sL)}; T: smaller {Show(tS)} vs larger {Show(tL)}");
        return new(Paper, "4", claim, outcome, finding, RegimeRule, "d90 in regime T where regime S fails", evidence);
    }

    /// <summary>
    /// Claim 4's control: the smaller model pre-trained until its validation loss on the pre-training text reaches the
    /// larger model's, against the larger model (regime T).
    /// Rule: inconclusive when the smaller model did not reach the larger's loss; holds when d90(larger) &lt; d90(smaller);
    /// inconclusive on a tie; genuine non-replication (fails) otherwise.
    /// </summary>
    /// <param name="lossMatched">The smaller model, pre-trained towards the larger's loss.</param>
    /// <param name="larger">The larger model.</param>
    /// <param name="reachedLoss">The smaller model's final pre-training validation loss.</param>
    /// <param name="targetLoss">The larger model's pre-training validation loss.</param>
    /// <param name="stepsTaken">Pre-training steps the smaller model took.</param>
    public static ClaimVerdict LargerModelLowersD90AtOneLoss(LanguageModelArm lossMatched, LanguageModelArm larger, double reachedLoss, double targetLoss, int stepsTaken)
    {
        ArgumentNullException.ThrowIfNull(lossMatched);
        ArgumentNullException.ThrowIfNull(larger);
        const string claim = "A larger pre-trained model has a lower d90 than a smaller one pre-trained to the same loss.";
        const string rule = "inconclusive when the smaller model misses the larger's pre-training loss; holds when d90(larger) < d90(smaller); a tie is inconclusive; fails otherwise";
        double m = lossMatched.D90, l = larger.D90;
        var evidence = new List<Evidence>
        {
            new("d90 smaller, loss-matched", m), new("d90 larger", l), new("smaller's pre-training loss", reachedLoss, "nats"),
            new("larger's pre-training loss", targetLoss, "nats"), new("smaller's pre-training steps", stepsTaken),
        };
        if (!(reachedLoss <= targetLoss))
            return new(Paper, "4c", claim, ClaimOutcome.Inconclusive, $"inconclusive: the smaller model reached {reachedLoss:F3}, not {targetLoss:F3}, within {stepsTaken} steps",
                rule, "the loss-matched control", evidence);
        var (outcome, finding) = Compare(l, m, $"larger {Show(l)} vs smaller at the same loss {Show(m)}");
        return new(Paper, "4c", claim, outcome, finding, rule, "the loss-matched control", evidence);
    }

    /// <summary>The binomial standard error of an accuracy measured over <paramref name="tokens"/> tokens.</summary>
    public static double AccuracyStandardError(double accuracy, long tokens) => Math.Sqrt(accuracy * (1 - accuracy) / tokens);

    /// <summary>
    /// Claim 5: SAID (one trainable scale per tensor, counted in d) reaches the target at a lower d than the plain
    /// subspace, on the same pre-trained theta0, judged per seed and then over seeds.
    /// Rule, per seed: d90 decides, unless it is unresolved (SAID and DID tie, or the d90 target lies within two
    /// standard errors of theta0's accuracy, where the crossing measures the metric's noise); then d95 decides, and a
    /// tie at d95 is a tie. Over seeds: lower in every seed holds; lower in every seed that is not a tie holds (the
    /// others tie); a tie in every seed is inconclusive; not lower and no tie in any seed fails (genuine
    /// non-replication); anything else is inconclusive (seed-dependent).
    /// </summary>
    /// <param name="seeds">Each seed's curves (the first is the main sweep).</param>
    /// <param name="theta0Accuracy">The pre-trained theta0's accuracy on the target.</param>
    /// <param name="validationTokens">Tokens the accuracy is measured over (for its standard error).</param>
    public static ClaimVerdict SaidLowersIntrinsicDimension(IReadOnlyList<SaidSeedCurves> seeds, double theta0Accuracy, long validationTokens)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        const string claim = "SAID reaches d90 at a lower d than the plain subspace (DID).";
        const string rule = "per seed: d90, or d95 when d90 ties or its target is within 2 standard errors of theta0's accuracy; over seeds: lower in every resolved seed holds, a tie in every seed or seed disagreement is inconclusive, lower in none fails";
        double se = AccuracyStandardError(theta0Accuracy, validationTokens);
        var evidence = new List<Evidence> { new("theta0 accuracy", theta0Accuracy), new("standard error of the accuracy", se, $"{validationTokens:N0} tokens") };
        if (seeds.Count == 0) return new(Paper, "5", claim, ClaimOutcome.Inconclusive, "inconclusive: no seed measured", rule, "seed control", evidence);
        var judged = new List<(int Seed, string Result)>();
        foreach (var s in seeds)
        {
            double did90 = DAt(s.Did, theta0Accuracy, 0.9 * s.Baseline), said90 = DAt(s.Said, theta0Accuracy, 0.9 * s.Baseline);
            double did95 = DAt(s.Did, theta0Accuracy, 0.95 * s.Baseline), said95 = DAt(s.Said, theta0Accuracy, 0.95 * s.Baseline);
            double margin = 0.9 * s.Baseline - theta0Accuracy;
            bool unresolved = said90 == did90 || margin < 2 * se;
            bool lower = unresolved ? said95 < did95 : said90 < did90;
            string result = lower ? "lower" : unresolved && said95 == did95 ? "tie" : "not lower";
            judged.Add((s.Seed, result));
            evidence.Add(new($"seed {s.Seed} d90 DID", did90)); evidence.Add(new($"seed {s.Seed} d90 SAID", said90));
            evidence.Add(new($"seed {s.Seed} d90 margin", margin / se, "standard errors above theta0"));
            if (unresolved) { evidence.Add(new($"seed {s.Seed} d95 DID", did95)); evidence.Add(new($"seed {s.Seed} d95 SAID", said95)); }
        }
        int lowerCount = judged.Count(j => j.Result == "lower"), ties = judged.Count(j => j.Result == "tie");
        string perSeed = $"SAID lower in {lowerCount} of {judged.Count} seeds ({string.Join(", ", judged.Select(j => $"seed {j.Seed}: {j.Result}"))})";
        var (outcome, finding) = lowerCount == judged.Count ? (ClaimOutcome.Holds, $"holds in every seed ({perSeed})")
            : lowerCount == 0 && ties == 0 ? (ClaimOutcome.Fails, $"genuine non-replication at this scale ({perSeed})")
            : ties == judged.Count ? (ClaimOutcome.Inconclusive, $"inconclusive at this scale: a tie at d95 in every seed ({perSeed})")
            : lowerCount + ties == judged.Count ? (ClaimOutcome.Holds, $"holds in every seed where it is resolved, the others tie ({perSeed})")
            : (ClaimOutcome.Inconclusive, $"inconclusive at this scale: seed-dependent ({perSeed})");
        return new(Paper, "5", claim, outcome, finding, rule, seeds.Count > 1 ? $"the seed control ({seeds.Count} seeds)" : "one seed", evidence);
    }
}
