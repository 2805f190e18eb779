using Plotly.NET;
using Plotly.NET.CSharp;
using PlotlyChart = Plotly.NET.CSharp.Chart;

namespace ScalingInteractive.Plotting;

/// <summary>
/// Builds Plotly.NET figures from <see cref="ChartSpec"/> JSON. Loaded by ScalingInteractive into a private
/// AssemblyLoadContext and called through <c>Func&lt;string, string&gt;</c> delegates, so only strings cross over.
/// </summary>
public static class PlotlyBridge
{
    private const string PlotlyJsResource = "Plotly.NET.plotly-2.28.0.min.js";

    /// <summary>The Plotly figure JSON (<c>{"data":[...],"layout":{...}}</c>) of a chart spec in JSON.</summary>
    public static string FigureJson(string chartSpecJson) => GenericChart.toJson(Build(ChartSpecJson.Deserialize(chartSpecJson)));

    /// <summary>plotly.js as embedded in Plotly.NET.dll (never fetched from a CDN).</summary>
    public static string PlotlyJs()
    {
        using var stream = typeof(GenericChart).Assembly.GetManifestResourceStream(PlotlyJsResource)
            ?? throw new InvalidOperationException($"plotly.js ({PlotlyJsResource}) is not embedded in this Plotly.NET build; expected Plotly.NET 6.0.0.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    internal static GenericChart Build(ChartSpec spec)
    {
        var traces = spec.Traces.Select(Trace).ToList();
        // A lone heat map is drawn as is; line charts are always combined (as they were before the bridge).
        var chart = traces.Count == 1 && spec.Traces[0].Type == TraceSpec.Heatmap ? traces[0] : PlotlyChart.Combine(traces);
        chart = Plotly.NET.CSharp.GenericChartExtensions.WithXAxisStyle<double, double, string>(chart, TitleText: spec.XAxis.Title, AxisType: AxisType(spec.XAxis));
        chart = Plotly.NET.CSharp.GenericChartExtensions.WithYAxisStyle<double, double, string>(chart, TitleText: spec.YAxis.Title, AxisType: AxisType(spec.YAxis));
        var layout = GenericChart.getLayout(chart);
        var title = new Title();
        title.SetProperty("text", spec.Title);
        layout.SetProperty("title", title);
        return GenericChart.setLayout(layout, chart);
    }

    // default(Optional<T>) leaves the property unset, exactly as omitting the argument would.
    private static Optional<StyleParam.AxisType> AxisType(AxisSpec axis) =>
        axis.Log switch { true => Some(StyleParam.AxisType.Log), false => Some(StyleParam.AxisType.Linear), null => default };

    private static Optional<T> Some<T>(T value) => value;

    private static GenericChart Trace(TraceSpec t) => t.Type switch
    {
        TraceSpec.Scatter => PlotlyChart.Scatter<double, double, string>(x: t.X, y: t.Y,
            mode: t.Markers ? StyleParam.Mode.Markers : StyleParam.Mode.Lines,
            Name: t.Name is { } name ? Some(name) : default(Optional<string>),
            // Typed defaults matter: a bare `default` here would be false / 0.0, hiding every series.
            ShowLegend: t.ShowLegend ? default(Optional<bool>) : Some(false),
            Opacity: t.Opacity is { } opacity ? Some(opacity) : default(Optional<double>),
            Fill: t.FillToNextY ? Some(StyleParam.Fill.ToNext_y) : default(Optional<StyleParam.Fill>)),
        TraceSpec.Heatmap => PlotlyChart.Heatmap<double, int, int, string>(
            zData: (t.Z ?? []).Select(r => (IEnumerable<double>)r).ToArray(),
            X: t.X.Select(v => (int)v).ToArray(),
            Y: t.Y.Select(v => (int)v).ToArray(),
            ReverseYAxis: t.ReverseYAxis),
        _ => throw new ArgumentException($"Unknown trace type '{t.Type}'; expected '{TraceSpec.Scatter}' or '{TraceSpec.Heatmap}'."),
    };
}
