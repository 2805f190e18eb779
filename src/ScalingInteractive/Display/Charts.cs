using Plotly.NET;
using PlotlyChart = Plotly.NET.CSharp.Chart;

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

/// <summary>Plotly.NET charts used across the package (rendered offline by <see cref="PlotlyAssets"/>).</summary>
public static class Charts
{
    /// <summary>Lines and/or markers, each series with an optional band.</summary>
    public static GenericChart Lines(ChartOptions options, IEnumerable<Series> series)
    {
        var traces = new List<GenericChart>();
        foreach (var s in series)
        {
            if (s.X.Count != s.Y.Count) throw new ArgumentException($"Series '{s.Name}': {s.X.Count} x values but {s.Y.Count} y values.", nameof(series));
            if (s.Lower is not null && s.Upper is not null)
            {
                // Band: upper edge, then lower edge filled up to it ("tonexty").
                traces.Add(PlotlyChart.Scatter<double, double, string>(x: s.X, y: s.Upper, mode: StyleParam.Mode.Lines,
                    Name: s.Name + " band", ShowLegend: false, Opacity: 0.25));
                traces.Add(PlotlyChart.Scatter<double, double, string>(x: s.X, y: s.Lower, mode: StyleParam.Mode.Lines,
                    Name: s.Name + " band", ShowLegend: false, Opacity: 0.25, Fill: StyleParam.Fill.ToNext_y));
            }
            traces.Add(PlotlyChart.Scatter<double, double, string>(x: s.X, y: s.Y,
                mode: s.Markers ? StyleParam.Mode.Markers : StyleParam.Mode.Lines, Name: s.Name));
        }
        var chart = PlotlyChart.Combine(traces);
        chart = Plotly.NET.CSharp.GenericChartExtensions.WithXAxisStyle<double, double, string>(chart, TitleText: options.XTitle,
            AxisType: options.LogX ? StyleParam.AxisType.Log : StyleParam.AxisType.Linear);
        chart = Plotly.NET.CSharp.GenericChartExtensions.WithYAxisStyle<double, double, string>(chart, TitleText: options.YTitle,
            AxisType: options.LogY ? StyleParam.AxisType.Log : StyleParam.AxisType.Linear);
        var layout = GenericChart.getLayout(chart);
        var title = new Title();
        title.SetProperty("text", options.Title);
        layout.SetProperty("title", title);
        return GenericChart.setLayout(layout, chart);
    }

    /// <summary>The HTML fragment of a chart (see <see cref="PlotlyAssets.ChartHtml"/>).</summary>
    public static string ToHtml(this GenericChart chart, int heightPixels = 420) => PlotlyAssets.ChartHtml(chart, heightPixels);
}
