using System.Text.Json.Nodes;
using System.Text.Json;

namespace ScalingInteractive.Display;

/// <summary>
/// Offline Plotly rendering. plotly.js comes from the copy embedded in Plotly.NET.dll (never a CDN; read through
/// <see cref="PlotlyHost"/>, which runs Plotly.NET in its own load context) and is
/// included once per document: the headless runner puts it in the report's head; in a notebook the first
/// chart of the session carries it. Chart fragments queue their drawing until the script is present, so the
/// order in which outputs arrive does not matter.
/// </summary>
public static class PlotlyAssets
{
    private static readonly Lazy<string> PlotlyJs = new(LoadPlotlyJs);
    private static int _scriptEmitted;

    /// <summary>
    /// When true, the hosting document already contains <see cref="ScriptTag"/> (the runner's reports), so fragments
    /// never carry it. When false (notebooks), the first chart of the process carries it.
    /// </summary>
    public static bool DocumentProvidesScript { get; set; }

    /// <summary>The plotly.js version embedded.</summary>
    public const string PlotlyVersion = "2.28.0";

    /// <summary>
    /// A script element that defines <c>window.Plotly</c> offline (AMD/CommonJS loaders such as Jupyter's
    /// require.js are bypassed) and draws any charts that were waiting for it.
    /// </summary>
    public static string ScriptTag() =>
        "<script type=\"text/javascript\">(function(){var define=undefined,module=undefined,exports=undefined;\n" +
        PlotlyJs.Value +
        "\n})();(function(){var q=window.__siPlotlyQueue||[];window.__siPlotlyQueue=[];for(var i=0;i<q.length;i++){q[i]();}})();</script>";

    /// <summary>Forgets that the script was emitted (call after the front end was reloaded, so the next chart carries it again).</summary>
    public static void ResetSession() => Interlocked.Exchange(ref _scriptEmitted, 0);

    /// <summary>Prepends the script to <paramref name="html"/> when it holds a chart and the script is due in this session.</summary>
    public static string WithScriptIfNeeded(string html)
    {
        if (DocumentProvidesScript || !html.Contains(ChartMarker, StringComparison.Ordinal)) return html;
        return Interlocked.Exchange(ref _scriptEmitted, 1) == 0 ? ScriptTag() + html : html;
    }

    /// <summary>An HTML fragment drawing <paramref name="chart"/> (no script include; see <see cref="WithScriptIfNeeded"/>).</summary>
    public static string ChartHtml(Chart chart, int heightPixels = 420)
    {
        ArgumentNullException.ThrowIfNull(chart);
        string id = "si-chart-" + Guid.NewGuid().ToString("N");
        string figure = chart.FigureJson().Replace("</", "<\\/", StringComparison.Ordinal);
        return $"<div class=\"si-chart\" {ChartMarker} id=\"{id}\" style=\"width:100%;max-width:900px;height:{heightPixels}px\"></div>" +
               "<script type=\"text/javascript\">(function(){var fig=" + figure + ";" +
               "fig.layout=fig.layout||{};delete fig.layout.width;delete fig.layout.height;fig.layout.autosize=true;" +
               $"function draw(){{window.Plotly.newPlot({JsonValue.Create(id).ToJsonString()},fig.data,fig.layout,{{responsive:true,displaylogo:false}});}}" +
               "if(window.Plotly){draw();}else{(window.__siPlotlyQueue=window.__siPlotlyQueue||[]).push(draw);}})();</script>";
    }

    /// <summary>The attribute that marks a chart container (used to decide whether a fragment needs the script).</summary>
    public const string ChartMarker = "data-si-plotly=\"1\"";

    private static string LoadPlotlyJs() => PlotlyHost.PlotlyJs().Replace("</script", "<\\/script", StringComparison.OrdinalIgnoreCase);
}
