using System.Text;
using Markdig;
using Microsoft.DotNet.Interactive.Formatting;
using ScalingInteractive.Display;

namespace ScalingInteractive.Runner;

/// <summary>Writes one self-contained static HTML report per notebook (plotly.js inlined once, no network needed).</summary>
public static class ReportWriter
{
    private static readonly MarkdownPipeline Markdown = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    /// <summary>Writes the report for <paramref name="result"/> into <paramref name="outputDirectory"/> and returns its path.</summary>
    public static string Write(NotebookResult result, string outputDirectory)
    {
        Directory.CreateDirectory(outputDirectory);
        string title = Path.GetFileNameWithoutExtension(result.Path);
        var body = new StringBuilder();
        body.Append("<h1>").Append(HtmlText.Encode(title)).Append("</h1>");
        body.Append("<p class=\"meta\">").Append(HtmlText.Encode(result.Path)).Append(" &middot; ")
            .Append(result.Succeeded ? "<span class=\"ok\">all cells ran</span>" : "<span class=\"si-error\">failed</span>")
            .Append(" &middot; ").Append(HtmlText.Encode(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'"))).Append("</p>");
        if (result.LoadError is not null) body.Append("<pre class=\"si-error\">").Append(HtmlText.Encode(result.LoadError)).Append("</pre>");
        int index = 0;
        foreach (var cell in result.Cells)
        {
            index++;
            switch (cell.Status)
            {
                case CellStatus.Text when cell.Cell.Kernel == "markdown":
                    body.Append("<div class=\"md\">").Append(Markdig.Markdown.ToHtml(cell.Cell.Source, Markdown)).Append("</div>");
                    break;
                case CellStatus.Text:
                    body.Append("<div class=\"raw\">").Append(cell.Cell.Source).Append("</div>");
                    break;
                default:
                    body.Append("<div class=\"cell cell-").Append(cell.Status.ToString().ToLowerInvariant()).Append("\">")
                        .Append("<div class=\"cellhead\">[").Append(index).Append("] ").Append(cell.Status)
                        .Append(cell.Status == CellStatus.Skipped ? "" : $" &middot; {cell.Elapsed.TotalSeconds:F2} s").Append("</div>")
                        .Append("<pre class=\"code\"><code>").Append(HtmlText.Encode(cell.Cell.Source)).Append("</code></pre>");
                    foreach (var output in cell.Outputs) body.Append("<div class=\"output\">").Append(RenderOutput(output)).Append("</div>");
                    if (cell.Error is not null) body.Append("<pre class=\"si-error\">").Append(HtmlText.Encode(cell.Error)).Append("</pre>");
                    body.Append("</div>");
                    break;
            }
        }
        string content = body.ToString();
        bool hasCharts = content.Contains(PlotlyAssets.ChartMarker, StringComparison.Ordinal);
        var page = new StringBuilder("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/>")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/><title>").Append(HtmlText.Encode(title)).Append("</title>")
            .Append(PageStyle).Append(HtmlText.Style)
            .Append(hasCharts ? PlotlyAssets.ScriptTag() : "")
            .Append("</head><body>").Append(content).Append("</body></html>");
        string path = Path.Combine(outputDirectory, title + ".html");
        File.WriteAllText(path, page.ToString());
        return path;
    }

    /// <summary>Writes an index page linking every report.</summary>
    public static string WriteIndex(IReadOnlyList<(NotebookResult Result, string? Report)> reports, string outputDirectory)
    {
        var rows = reports.Select(r => new[]
        {
            Path.GetFileName(r.Result.Path),
            r.Result.Succeeded ? "ok" : "failed",
            r.Result.Cells.Count(c => c.Status == CellStatus.Ok).ToString(),
            r.Result.Cells.Count(c => c.Status == CellStatus.Failed).ToString(),
            r.Result.Cells.Sum(c => c.Elapsed.TotalSeconds).ToString("F1") + " s",
        });
        var sb = new StringBuilder("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/><title>ScalingInteractive notebooks</title>")
            .Append(PageStyle).Append(HtmlText.Style).Append("</head><body><h1>Notebook reports</h1>")
            .Append(HtmlText.Table(["notebook", "status", "cells ok", "cells failed", "time"], rows)).Append("<ul>");
        foreach (var (result, report) in reports)
            if (report is not null)
                sb.Append("<li><a href=\"").Append(HtmlText.Encode(Path.GetFileName(report))).Append("\">").Append(HtmlText.Encode(Path.GetFileName(result.Path))).Append("</a></li>");
        string path = Path.Combine(outputDirectory, "index.html");
        File.WriteAllText(path, sb.Append("</ul></body></html>").ToString());
        return path;
    }

    private static string RenderOutput(DisplayedOutput output)
    {
        try
        {
            return RenderOutputUnchecked(output);
        }
        catch (Exception e)
        {
            // A formatter that throws must not lose the rest of the report.
            return "<pre class=\"si-error\">" + HtmlText.Encode($"Could not format a {output.Value?.GetType().Name ?? "value"}: {e.GetType().Name}: {e.Message}") + "</pre>";
        }
    }

    private static string RenderOutputUnchecked(DisplayedOutput output) => output.Value switch
    {
        null => "<pre>null</pre>",
        string s when output.MimeType == "text/html" => s,
        string s => "<pre>" + HtmlText.Encode(s) + "</pre>",
        var value when output.MimeType == "text/plain" => "<pre>" + HtmlText.Encode(Formatter.ToDisplayString(value, PlainTextFormatter.MimeType)) + "</pre>",
        var value => Formatter.ToDisplayString(value, HtmlFormatter.MimeType),
    };

    private const string PageStyle =
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#1d2330}" +
        "pre.code{background:#f5f6f8;border:1px solid #e1e4ea;padding:8px;overflow-x:auto;font-size:13px}" +
        ".cell{margin:14px 0}.cellhead{font:12px monospace;color:#667}.cell-failed .cellhead{color:#b00020}.cell-skipped{opacity:.5}" +
        ".output{margin:6px 0 6px 12px}.meta{color:#667}.ok{color:#137333}.md table{border-collapse:collapse}.md td,.md th{border:1px solid #ccd;padding:2px 6px}</style>";
}
