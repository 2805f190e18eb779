using System.Globalization;
using System.Text;
using ScalingInteractive.Plotting;

namespace ScalingInteractive.Display;

/// <summary>One series of a line or scatter chart, with an optional shaded band (for example a confidence interval).</summary>
/// <param name="Name">Legend name.</param>
/// <param name="X">x values.</param>
/// <param name="Y">y values, same length as <paramref name="X"/>.</param>
/// <param name="Markers">Draw markers only (data points) rather than lines.</param>
/// <param name="Lower">Lower edge of the band (optional, same length).</param>
/// <param name="Upper">Upper edge of the band (optional, same length).</param>
public sealed record Series(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y, bool Markers = false,
    IReadOnlyList<double>? Lower = null, IReadOnlyList<double>? Upper = null);

/// <summary>Axis options of a chart.</summary>
/// <param name="Title">Chart title.</param>
/// <param name="XTitle">x-axis title.</param>
/// <param name="YTitle">y-axis title.</param>
/// <param name="LogX">Logarithmic x axis.</param>
/// <param name="LogY">Logarithmic y axis.</param>
public sealed record ChartOptions(string Title, string XTitle, string YTitle, bool LogX = false, bool LogY = false);

/// <summary>Charts used across the package, drawn with Plotly.NET and rendered offline by <see cref="PlotlyAssets"/>.</summary>
public static class Charts
{
    /// <summary>Lines and/or markers, each series with an optional band.</summary>
    public static Chart Lines(ChartOptions options, IEnumerable<Series> series)
    {
        var traces = new List<TraceSpec>();
        foreach (var s in series)
        {
            if (s.X.Count != s.Y.Count) throw new ArgumentException($"Series '{s.Name}': {s.X.Count} x values but {s.Y.Count} y values.", nameof(series));
            if (s.Lower is not null && s.Upper is not null)
            {
                // Band: upper edge, then lower edge filled up to it ("tonexty").
                traces.Add(new TraceSpec(TraceSpec.Scatter, s.Name + " band", s.X, s.Upper, ShowLegend: false, Opacity: 0.25));
                traces.Add(new TraceSpec(TraceSpec.Scatter, s.Name + " band", s.X, s.Lower, ShowLegend: false, Opacity: 0.25, FillToNextY: true));
            }
            traces.Add(new TraceSpec(TraceSpec.Scatter, s.Name, s.X, s.Y, Markers: s.Markers));
        }
        return new Chart(new ChartSpec(options.Title, new AxisSpec(options.XTitle, options.LogX), new AxisSpec(options.YTitle, options.LogY), traces));
    }

    /// <summary>
    /// A heat map of <paramref name="z"/> (rows top to bottom when <paramref name="reverseYAxis"/>), with column and
    /// row indices as x and y. <see cref="ChartOptions.LogX"/> and <see cref="ChartOptions.LogY"/> are ignored.
    /// </summary>
    public static Chart Heatmap(ChartOptions options, IReadOnlyList<IReadOnlyList<double>> z, bool reverseYAxis = true)
    {
        int columns = z.Count > 0 ? z[0].Count : 0;
        if (z.Any(r => r.Count != columns)) throw new ArgumentException("Every row of a heat map needs the same number of columns.", nameof(z));
        var trace = new TraceSpec(TraceSpec.Heatmap, null,
            Enumerable.Range(0, columns).Select(i => (double)i).ToArray(), Enumerable.Range(0, z.Count).Select(i => (double)i).ToArray(),
            Z: z, ReverseYAxis: reverseYAxis);
        return new Chart(new ChartSpec(options.Title, new AxisSpec(options.XTitle), new AxisSpec(options.YTitle), [trace])) { HeightPixels = 320 };
    }
}

/// <summary>
/// A chart: what to draw (series, axes, title), independent of Plotly.NET, which draws it in a private load context
/// (so it works in a .NET Interactive kernel that has loaded an older FSharp.Core). Displays as an offline Plotly
/// chart in HTML, as a summary in plain text, and saves as the JSON of its spec.
/// </summary>
public sealed record Chart : IRichResult
{
    internal Chart(ChartSpec spec) => Spec = spec;

    internal ChartSpec Spec { get; }

    /// <summary>The chart title.</summary>
    public string Title => Spec.Title;

    /// <summary>Height of the HTML rendering in pixels (the width follows the page, at most 900 px).</summary>
    public int HeightPixels { get; init; } = 420;

    /// <summary>The Plotly figure as JSON (<c>{"data":[...],"layout":{...}}</c>), built by Plotly.NET.</summary>
    public string FigureJson() => PlotlyHost.FigureJson(ToJson());

    /// <inheritdoc />
    public string ToHtml() => PlotlyAssets.ChartHtml(this, HeightPixels);

    /// <summary>The HTML fragment of the chart at the given height (see <see cref="PlotlyAssets.ChartHtml"/>).</summary>
    public string ToHtml(int heightPixels) => PlotlyAssets.ChartHtml(this, heightPixels);

    /// <inheritdoc />
    public string ToText()
    {
        static string Axis(AxisSpec a) => a.Title + (a.Log == true ? " (log)" : "");
        var sb = new StringBuilder($"Chart: {Spec.Title}\n  x: {Axis(Spec.XAxis)}; y: {Axis(Spec.YAxis)}");
        foreach (var t in Spec.Traces)
        {
            if (t.Type == TraceSpec.Heatmap) sb.Append(CultureInfo.InvariantCulture, $"\n  heat map: {t.Y.Count} x {t.X.Count}");
            else if (t.ShowLegend) sb.Append(CultureInfo.InvariantCulture, $"\n  {t.Name}: {t.X.Count} points{(t.Markers ? " (markers)" : "")}");
        }
        return sb.ToString();
    }

    /// <inheritdoc />
    /// <remarks>The chart spec (series, axes, title); <see cref="FigureJson"/> gives the Plotly figure.</remarks>
    public string ToJson() => ChartSpecJson.Serialize(Spec);

    /// <summary>The plain-text summary (so a chart appended to a string by mistake still reads sensibly).</summary>
    public override string ToString() => ToText();
}
