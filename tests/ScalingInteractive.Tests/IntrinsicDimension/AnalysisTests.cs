using ScalingInteractive.IntrinsicDimension;

namespace ScalingInteractive.Tests.IntrinsicDimension;

public class AnalysisTests
{
    private static List<MetricPoint> Curve(int seed, params (long D, double M)[] points) => points.Select(p => new MetricPoint(p.D, seed, p.M)).ToList();

    [Fact]
    public void D90_is_the_first_swept_d_reaching_90_percent_with_log_interpolation()
    {
        var points = Curve(0, (10, 0.2), (100, 0.6), (1000, 0.95), (10000, 0.97));
        var t = IntrinsicDimensionAnalysis.Thresholds(points, [1.0], [0.9, 0.5, 0.99], resamples: 200);
        Assert.Equal(1000, t[0].Dimension);
        // Hand computed: 10^(2 + (0.9 - 0.6) / (0.95 - 0.6)) = 10^2.857142...
        Assert.Equal(Math.Pow(10, 2 + 0.3 / 0.35), t[0].Interpolated!.Value, 6);
        Assert.Equal(100, t[1].Dimension);
        Assert.Equal(Math.Pow(10, 1.75), t[1].Interpolated!.Value, 6);
        Assert.Null(t[2].Dimension); // 0.99 never reached
        Assert.Null(t[2].Interpolated);
        Assert.Equal(0, t[2].ReachedShare);
        // One seed: every resample is the same curve, so the interval collapses on d.
        Assert.Equal(1000, t[0].Lower);
        Assert.Equal(1000, t[0].Upper);
        Assert.Equal(1, t[0].ReachedShare);
    }

    [Fact]
    public void Mean_over_seeds_decides_and_the_bootstrap_spans_the_seeds()
    {
        // Seed 0 reaches 0.9 at d=100, seed 1 only at d=1000; the mean (0.875 at 100) reaches at 1000.
        var points = Curve(0, (10, 0.5), (100, 0.92), (1000, 0.95)).Concat(Curve(1, (10, 0.4), (100, 0.83), (1000, 0.93))).ToList();
        var t = IntrinsicDimensionAnalysis.Thresholds(points, [1.0, 1.0], [0.9], resamples: 2000, seed: 1)[0];
        Assert.Equal(1000, t.Dimension);
        // Resamples {0,0} give d=100 (prob 1/4), others 1000: the 95% interval covers both.
        Assert.Equal(100, t.Lower);
        Assert.Equal(1000, t.Upper);
        var curve = IntrinsicDimensionAnalysis.Curve(points);
        Assert.Equal(0.875, curve[1].Mean, 10);
        Assert.Equal(Math.Sqrt(2 * 0.045 * 0.045), curve[1].StdDev, 10);
    }

    [Fact]
    public void A_non_monotone_curve_takes_the_first_crossing_and_the_first_point_is_not_interpolated()
    {
        var points = Curve(0, (10, 0.95), (100, 0.5), (1000, 0.97));
        var t = IntrinsicDimensionAnalysis.Thresholds(points, [1.0], [0.9], resamples: 0)[0];
        Assert.Equal(10, t.Dimension);
        Assert.Equal(10, t.Interpolated);
        Assert.True(double.IsNaN(t.ReachedShare));
        Assert.Null(t.Lower);
    }

    [Fact]
    public void Targets_are_fractions_of_the_mean_baseline()
    {
        var points = Curve(0, (10, 0.40), (100, 0.45));
        var t = IntrinsicDimensionAnalysis.Thresholds(points, [0.4, 0.6], [0.9], resamples: 0)[0];
        Assert.Equal(0.45, t.Target, 12);
        Assert.Equal(100, t.Dimension);
    }

    [Fact]
    public void Log_range_is_log_spaced_and_distinct()
    {
        Assert.Equal([10L, 100, 1000], IntrinsicDimensionSweep.LogRange(10, 1000, 3));
        Assert.Equal([1L, 2, 3], IntrinsicDimensionSweep.LogRange(1, 3, 5)); // rounding duplicates removed
        Assert.Throws<ArgumentException>(() => IntrinsicDimensionSweep.LogRange(0, 10, 3));
        Assert.Throws<ArgumentException>(() => IntrinsicDimensionSweep.LogRange(100, 10, 3));
    }

    [Fact]
    public void Bad_analysis_inputs_are_refused()
    {
        var points = Curve(0, (10, 0.5));
        Assert.Throws<ArgumentException>(() => IntrinsicDimensionAnalysis.Thresholds([], [1.0], [0.9]));
        Assert.Contains("baseline", Assert.Throws<ArgumentException>(() => IntrinsicDimensionAnalysis.Thresholds(points, [], [0.9])).Message);
        Assert.Contains("Fraction", Assert.Throws<ArgumentException>(() => IntrinsicDimensionAnalysis.Thresholds(points, [1.0], [0])).Message);
    }
}
