using System.Globalization;
using System.Text;
using System.Text.Json;
using ScalingInteractive.Display;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>The curve and thresholds of one series (a projection, optionally per-tensor or SAID).</summary>
/// <param name="Name">Series name, e.g. <c>fastfood</c>.</param>
/// <param name="Curve">Mean metric vs d.</param>
/// <param name="Thresholds">d at each fraction of the baseline (d90 first by default).</param>
public sealed record IntrinsicDimensionSeries(string Name, IReadOnlyList<CurvePoint> Curve, IReadOnlyList<DimensionThreshold> Thresholds)
{
    /// <summary>The threshold at 90% of the baseline, or null when 0.9 was not among the fractions.</summary>
    public DimensionThreshold? D90 => Thresholds.FirstOrDefault(t => Math.Abs(t.Fraction - 0.9) < 1e-9);
}

/// <summary>
/// Result of an intrinsic-dimension sweep: metric vs d per projection with the full-parameter baseline, d90 (and other
/// fractions) with bootstrap intervals over seeds, and the parameter count.
/// </summary>
public sealed class IntrinsicDimensionReport : IRichResult
{
    /// <summary>Builds the report from finished runs (baseline runs have projection <c>full</c>).</summary>
    public IntrinsicDimensionReport(string task, string metricName, IReadOnlyList<SubspaceRun> runs, IReadOnlyList<double>? fractions = null, int resamples = 1000)
    {
        ArgumentNullException.ThrowIfNull(runs);
        Task = task;
        MetricName = metricName;
        Runs = runs;
        Fractions = fractions ?? IntrinsicDimensionAnalysis.DefaultFractions;
        var baseline = runs.Where(r => r.Projection == "full").ToList();
        if (baseline.Count == 0) throw new ArgumentException("The runs hold no full-parameter baseline (projection 'full'); d90 is relative to it.", nameof(runs));
        BaselineMetrics = baseline.Select(r => r.Metric).ToList();
        ParameterCount = baseline[0].ParameterCount;
        Series = runs.Where(r => r.Projection != "full").GroupBy(r => r.SeriesName).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g =>
            {
                var points = g.Select(r => new MetricPoint(r.Dimension, r.Seed, r.Metric)).ToList();
                return new IntrinsicDimensionSeries(g.Key, IntrinsicDimensionAnalysis.Curve(points),
                    IntrinsicDimensionAnalysis.Thresholds(points, BaselineMetrics, Fractions, resamples));
            }).ToList();
    }

    /// <summary>Task name.</summary>
    public string Task { get; }

    /// <summary>What the metric measures.</summary>
    public string MetricName { get; }

    /// <summary>Every run (baseline included).</summary>
    public IReadOnlyList<SubspaceRun> Runs { get; }

    /// <summary>Fractions of the baseline at which d is reported.</summary>
    public IReadOnlyList<double> Fractions { get; }

    /// <summary>The baseline's metric, one per seed.</summary>
    public IReadOnlyList<double> BaselineMetrics { get; }

    /// <summary>Mean baseline metric.</summary>
    public double Baseline => BaselineMetrics.Average();

    /// <summary>D: the model's trainable parameters.</summary>
    public long ParameterCount { get; }

    /// <summary>One entry per projection series.</summary>
    public IReadOnlyList<IntrinsicDimensionSeries> Series { get; }

    /// <summary>The d90 of a series (null: not reached, or no such series).</summary>
    public long? D90(string series = "fastfood") => Series.FirstOrDefault(s => s.Name == series)?.D90?.Dimension;

    private static string Dim(long? d) => d is long v ? v.ToString("N0", CultureInfo.InvariantCulture) : "not reached";

    private static string Interval(DimensionThreshold t) =>
        double.IsNaN(t.ReachedShare) ? "-" : $"[{(t.Lower is long lo ? lo.ToString("N0", CultureInfo.InvariantCulture) : "> swept")}, {(t.Upper is long hi ? hi.ToString("N0", CultureInfo.InvariantCulture) : "> swept")}]";

    private IEnumerable<IReadOnlyList<string>> ThresholdRows() =>
        Series.SelectMany(s => s.Thresholds.Select(t => (IReadOnlyList<string>)
        [
            s.Name, "d" + (t.Fraction * 100).ToString("0.#", CultureInfo.InvariantCulture), HtmlText.Number(t.Target), Dim(t.Dimension),
            t.Interpolated is double x ? (x >= 100 ? x.ToString("N0", CultureInfo.InvariantCulture) : HtmlText.Number(x, 3)) : "-", Interval(t),
            double.IsNaN(t.ReachedShare) ? "-" : (t.ReachedShare * 100).ToString("0", CultureInfo.InvariantCulture) + "%",
        ]));

    private static readonly string[] ThresholdHeader = ["series", "threshold", "target metric", "d (swept)", "d (log-interpolated)", "95% bootstrap interval", "resamples reaching"];

    private IEnumerable<IReadOnlyList<string>> CurveRows() =>
        Series.SelectMany(s => s.Curve.Select(p => (IReadOnlyList<string>)
        [
            s.Name, p.Dimension.ToString(CultureInfo.InvariantCulture), HtmlText.Number(p.Mean), HtmlText.Number(p.StdDev, 2),
            HtmlText.Number(p.Mean / Baseline, 3), p.Seeds.ToString(CultureInfo.InvariantCulture),
        ]));

    private static readonly string[] CurveHeader = ["series", "d", "mean metric", "sd over seeds", "fraction of baseline", "seeds"];

    /// <summary>The metric-vs-d chart on a log axis, with the baseline and 90% lines.</summary>
    public Display.Chart Chart()
    {
        var all = Series.SelectMany(s => s.Curve).Select(p => (double)p.Dimension).ToList();
        double lo = all.Count > 0 ? all.Min() : 1, hi = all.Count > 0 ? all.Max() : ParameterCount;
        var series = new List<Display.Series>();
        foreach (var s in Series)
        {
            var x = s.Curve.Select(p => (double)p.Dimension).ToArray();
            bool band = s.Curve.Any(p => p.Seeds > 1);
            series.Add(new Display.Series(s.Name, x, s.Curve.Select(p => p.Mean).ToArray(),
                Lower: band ? s.Curve.Select(p => p.Min).ToArray() : null, Upper: band ? s.Curve.Select(p => p.Max).ToArray() : null));
        }
        series.Add(new Display.Series("full-parameter baseline", [lo, hi], [Baseline, Baseline]));
        series.Add(new Display.Series("90% of baseline", [lo, hi], [0.9 * Baseline, 0.9 * Baseline]));
        return Charts.Lines(new ChartOptions($"{Task}: {MetricName} vs subspace dimension d (D = {ParameterCount:N0})", "subspace dimension d", MetricName, LogX: true), series);
    }

    /// <inheritdoc />
    /// <remarks>Rendered once and kept: the report is immutable, and its chart keeps one element id however often it is shown.</remarks>
    public string ToHtml() => _html ??= RenderHtml();

    private string? _html;

    private string RenderHtml()
    {
        var sb = new StringBuilder(HtmlText.Style);
        sb.Append("<div class=\"si-intrinsic\"><h4>Intrinsic dimension: ").Append(HtmlText.Encode(Task)).Append("</h4>");
        sb.Append(HtmlText.Table(["model parameters D", "baseline " + MetricName + " (mean)", "baseline seeds", "runs"],
            [[ParameterCount.ToString("N0", CultureInfo.InvariantCulture), HtmlText.Number(Baseline), BaselineMetrics.Count.ToString(CultureInfo.InvariantCulture),
              Runs.Count.ToString(CultureInfo.InvariantCulture)]], "Parameter counts and baseline"));
        sb.Append(Chart().ToHtml());
        sb.Append(HtmlText.Table(ThresholdHeader, ThresholdRows(), "Intrinsic dimension at fractions of the baseline (bootstrap over seeds)"));
        sb.Append("<details><summary>Curve values</summary>").Append(HtmlText.Table(CurveHeader, CurveRows())).Append("</details>");
        if (Runs.Any(r => r.Diverged))
            sb.Append("<p class=\"si-error\">").Append(Runs.Count(r => r.Diverged)).Append(" run(s) diverged (loss not finite); their metric is kept as measured.</p>");
        return sb.Append("</div>").ToString();
    }

    /// <inheritdoc />
    public string ToText()
    {
        var sb = new StringBuilder();
        sb.Append($"Intrinsic dimension: {Task}, D = {ParameterCount:N0}, baseline {MetricName} {HtmlText.Number(Baseline)} ({BaselineMetrics.Count} seed(s))\n");
        sb.Append(HtmlText.TextTable(ThresholdHeader, ThresholdRows())).Append("\n\n");
        sb.Append(HtmlText.TextTable(CurveHeader, CurveRows()));
        return sb.ToString();
    }

    /// <inheritdoc />
    public string ToJson() => JsonSerializer.Serialize(new IntrinsicDimensionReportJson(Task, MetricName, ParameterCount, BaselineMetrics, Series, Runs),
        IntrinsicJson.Indented.IntrinsicDimensionReportJson);
}
