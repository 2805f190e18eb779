namespace ScalingInteractive.IntrinsicDimension;

/// <summary>One measured point: the validation metric of a run at subspace dimension d with a seed.</summary>
/// <param name="Dimension">d.</param>
/// <param name="Seed">The run's seed (bootstrap resamples seeds).</param>
/// <param name="Metric">Validation metric, higher is better.</param>
public readonly record struct MetricPoint(long Dimension, int Seed, double Metric);

/// <summary>Mean metric over seeds at one d.</summary>
/// <param name="Dimension">d.</param>
/// <param name="Mean">Mean over seeds.</param>
/// <param name="StdDev">Sample standard deviation over seeds (0 for one seed).</param>
/// <param name="Min">Smallest seed value.</param>
/// <param name="Max">Largest seed value.</param>
/// <param name="Seeds">Number of seeds.</param>
public sealed record CurvePoint(long Dimension, double Mean, double StdDev, double Min, double Max, int Seeds);

/// <summary>The intrinsic dimension at one fraction of the baseline (d90 for 0.9), with its bootstrap interval.</summary>
/// <param name="Fraction">Fraction of the baseline metric, e.g. 0.9.</param>
/// <param name="Target">Fraction x baseline mean.</param>
/// <param name="Dimension">Smallest swept d whose mean metric reaches the target (null: none does).</param>
/// <param name="Interpolated">Crossing of the target on the mean curve, linear in log10 d between swept points (null: not reached).</param>
/// <param name="Lower">2.5th percentile of the bootstrap d (null: reached in fewer than 2.5% of resamples).</param>
/// <param name="Upper">97.5th percentile of the bootstrap d (null: not reached in at least 2.5% of resamples, i.e. above the swept range).</param>
/// <param name="ReachedShare">Share of bootstrap resamples in which some swept d reaches the target.</param>
public sealed record DimensionThreshold(double Fraction, double Target, long? Dimension, double? Interpolated, long? Lower, long? Upper, double ReachedShare);

/// <summary>d90 and friends (Li et al. 2018): from swept (d, seed, metric) points and the full-parameter baseline.</summary>
public static class IntrinsicDimensionAnalysis
{
    /// <summary>Fractions reported by default (d90 first).</summary>
    public static IReadOnlyList<double> DefaultFractions { get; } = [0.9, 0.5, 0.95, 0.99];

    /// <summary>Mean (and spread) of the metric over seeds at each swept d, in increasing d.</summary>
    public static IReadOnlyList<CurvePoint> Curve(IEnumerable<MetricPoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        return points.GroupBy(p => p.Dimension).OrderBy(g => g.Key).Select(g =>
        {
            var v = g.Select(p => p.Metric).ToArray();
            double mean = v.Average();
            double sd = v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1)) : 0;
            return new CurvePoint(g.Key, mean, sd, v.Min(), v.Max(), v.Length);
        }).ToList();
    }

    /// <summary>The smallest swept d whose mean reaches <paramref name="target"/>, and the log-interpolated crossing.</summary>
    public static (long? Dimension, double? Interpolated) Crossing(IReadOnlyList<CurvePoint> curve, double target)
    {
        ArgumentNullException.ThrowIfNull(curve);
        for (int i = 0; i < curve.Count; i++)
        {
            if (!(curve[i].Mean >= target)) continue;
            if (i == 0) return (curve[0].Dimension, curve[0].Dimension);
            var (a, b) = (curve[i - 1], curve[i]);
            double t = (target - a.Mean) / (b.Mean - a.Mean);
            double log = Math.Log10(a.Dimension) + t * (Math.Log10(b.Dimension) - Math.Log10(a.Dimension));
            return (b.Dimension, Math.Pow(10, log));
        }
        return (null, null);
    }

    /// <summary>
    /// d at each fraction of the baseline with a bootstrap over seeds: each resample draws the seeds with replacement
    /// (the same draw for every d, since one seed's runs share theta0 and P) and the baseline runs with replacement.
    /// </summary>
    /// <param name="points">Subspace runs.</param>
    /// <param name="baseline">Metric of each full-parameter baseline run (one per seed).</param>
    /// <param name="fractions">Fractions of the baseline mean, each in (0, 1.5].</param>
    /// <param name="resamples">Bootstrap resamples (0: no interval).</param>
    /// <param name="seed">Seed of the bootstrap.</param>
    public static IReadOnlyList<DimensionThreshold> Thresholds(IReadOnlyList<MetricPoint> points, IReadOnlyList<double> baseline,
        IReadOnlyList<double> fractions, int resamples = 1000, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentNullException.ThrowIfNull(fractions);
        if (points.Count == 0) throw new ArgumentException("No subspace runs to analyse: points is empty.", nameof(points));
        if (baseline.Count == 0 || baseline.Any(b => !double.IsFinite(b)))
            throw new ArgumentException("The baseline needs at least one finite metric value (the full-parameter runs).", nameof(baseline));
        foreach (double f in fractions)
            if (!(f > 0 && f <= 1.5)) throw new ArgumentException($"Fraction {f} is not accepted; fractions must be in (0, 1.5], e.g. 0.9 for d90.", nameof(fractions));
        if (resamples < 0) throw new ArgumentException($"resamples must be >= 0 (got {resamples}).", nameof(resamples));

        var curve = Curve(points);
        double baseMean = baseline.Average();
        var seeds = points.Select(p => p.Seed).Distinct().Order().ToArray();
        var bySeed = points.GroupBy(p => p.Seed).ToDictionary(g => g.Key, g => g.ToList());
        var random = new Random(seed);
        // Each resample's d at each fraction (long.MaxValue: not reached within the sweep).
        var boot = new long[fractions.Count][];
        for (int f = 0; f < fractions.Count; f++) boot[f] = new long[resamples];
        for (int r = 0; r < resamples; r++)
        {
            var drawn = new List<MetricPoint>();
            for (int i = 0; i < seeds.Length; i++) drawn.AddRange(bySeed[seeds[random.Next(seeds.Length)]]);
            double b = 0;
            for (int i = 0; i < baseline.Count; i++) b += baseline[random.Next(baseline.Count)];
            b /= baseline.Count;
            var c = Curve(drawn);
            for (int f = 0; f < fractions.Count; f++) boot[f][r] = Crossing(c, fractions[f] * b).Dimension ?? long.MaxValue;
        }
        var result = new List<DimensionThreshold>();
        for (int f = 0; f < fractions.Count; f++)
        {
            double target = fractions[f] * baseMean;
            var (d, interpolated) = Crossing(curve, target);
            long? lower = null, upper = null;
            double reached = double.NaN;
            if (resamples > 0)
            {
                var sorted = boot[f].Order().ToArray();
                reached = sorted.Count(x => x != long.MaxValue) / (double)resamples;
                long lo = sorted[(int)Math.Floor(0.025 * (resamples - 1))], hi = sorted[(int)Math.Ceiling(0.975 * (resamples - 1))];
                lower = lo == long.MaxValue ? null : lo;
                upper = hi == long.MaxValue ? null : hi;
            }
            result.Add(new DimensionThreshold(fractions[f], target, d, interpolated, lower, upper, reached));
        }
        return result;
    }
}
