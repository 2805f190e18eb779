using System.Net;
using System.Text;
using Markdig;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Documents.Jupyter;

namespace ScalingInteractive.Runner;

/// <summary>
/// Writes what a run produced: one self-contained static HTML report per notebook (markdown rendered, each output
/// as the kernel formatted it; plotly.js arrives inline with the first chart, so charts draw offline), an executed
/// .ipynb with every output (Jupyter, VS Code and GitHub render it), and an index page.
/// </summary>
public static class ReportWriter
{
    private static readonly MarkdownPipeline Markdown = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    /// <summary>Writes the HTML report of <paramref name="run"/> into <paramref name="outputDirectory"/>; returns its path.</summary>
    public static string WriteHtml(NotebookRun run, string outputDirectory)
    {
        Directory.CreateDirectory(outputDirectory);
        string title = Path.GetFileNameWithoutExtension(run.Path);
        var body = new StringBuilder();
        body.Append("<h1>").Append(Encode(title)).Append("</h1>");
        body.Append("<p class=\"meta\">").Append(Encode(run.Path)).Append(" &middot; ")
            .Append(run.Succeeded ? "<span class=\"ok\">all cells ran</span>" : "<span class=\"si-error\">failed</span>")
            .Append(" in the .NET Interactive kernel &middot; ").Append($"{run.Elapsed.TotalSeconds:F1} s &middot; ")
            .Append(Encode(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'"))).Append("</p>");
        if (run.LoadError is not null) body.Append("<pre class=\"si-error\">").Append(Encode(run.LoadError)).Append("</pre>");
        int index = 0;
        foreach (var cell in run.Cells)
        {
            if (cell.Status == CellStatus.Text)
            {
                body.Append("<div class=\"md\">").Append(Markdig.Markdown.ToHtml(cell.Source, Markdown)).Append("</div>");
                continue;
            }
            index++;
            body.Append("<div class=\"cell cell-").Append(cell.Status.ToString().ToLowerInvariant()).Append(cell.Injected ? " injected" : "").Append("\">")
                .Append("<div class=\"cellhead\">[").Append(index).Append("] ").Append(cell.Status)
                .Append(cell.Injected ? " &middot; injected parameters" : "")
                .Append(cell.Status == CellStatus.Skipped ? "" : $" &middot; {cell.Elapsed.TotalSeconds:F2} s").Append("</div>")
                .Append("<pre class=\"code\"><code>").Append(Encode(cell.Source)).Append("</code></pre>");
            foreach (var output in cell.Outputs)
                if (output.Kind != "error") body.Append("<div class=\"output\">").Append(RenderOutput(output)).Append("</div>");
            if (cell.Errors.Count > 0)
                body.Append("<pre class=\"si-error\">").Append(Encode(string.Join("\n", cell.Errors.Distinct()))).Append("</pre>");
            body.Append("</div>");
        }
        var page = new StringBuilder("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/>")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/><title>").Append(Encode(title)).Append("</title>")
            .Append(PageStyle).Append("</head><body>").Append(body).Append("</body></html>");
        string path = Path.Combine(outputDirectory, title + ".html");
        File.WriteAllText(path, page.ToString());
        return path;
    }

    /// <summary>Writes the executed notebook (.ipynb with outputs and execution counts); returns its path.</summary>
    public static string WriteIpynb(NotebookRun run, string outputDirectory)
    {
        Directory.CreateDirectory(outputDirectory);
        var document = new InteractiveDocument();
        int executionCount = 0;
        foreach (var cell in run.Cells)
        {
            var element = new InteractiveDocumentElement(cell.Source, cell.Kernel);
            if (cell.Injected) element.Metadata = new Dictionary<string, object> { ["tags"] = new List<object> { "injected-parameters" } };
            if (cell.Status is CellStatus.Ok or CellStatus.Failed)
            {
                element.ExecutionOrder = ++executionCount;
                foreach (var output in cell.Outputs) element.Outputs.Add(ToElement(output, executionCount));
                if (cell.Status == CellStatus.Failed && !cell.Outputs.Any(o => o.Kind == "error"))
                    element.Outputs.Add(new ErrorElement(string.Join("\n", cell.Errors.Distinct()), "Error"));
            }
            document.Add(element);
        }
        string path = Path.Combine(outputDirectory, Path.GetFileNameWithoutExtension(run.Path) + ".ipynb");
        File.WriteAllText(path, document.ToJupyterJson("C#"));
        return path;
    }

    private static InteractiveDocumentOutputElement ToElement(CellOutput output, int executionCount)
    {
        switch (output.Kind)
        {
            case "stdout":
            case "stderr":
                return new TextElement(output.PlainText ?? string.Concat(output.Values.Values), output.Kind);
            case "error":
                return new ErrorElement(output.PlainText ?? "", "Error");
            case "return":
                var returned = new ReturnValueElement { ExecutionOrder = executionCount };
                foreach (var (mime, value) in output.Values) returned.Data[mime] = value;
                return returned;
            default:
                return new DisplayElement(output.Values.ToDictionary(kv => kv.Key, kv => (object)kv.Value));
        }
    }

    /// <summary>Writes an index page linking every report and executed notebook; returns its path.</summary>
    public static string WriteIndex(IReadOnlyList<NotebookRun> runs, string outputDirectory)
    {
        Directory.CreateDirectory(outputDirectory);
        var sb = new StringBuilder("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/><title>ScalingInteractive notebooks</title>")
            .Append(PageStyle).Append("</head><body><h1>Notebook reports</h1><table><thead><tr>")
            .Append("<th>notebook</th><th>status</th><th>cells ok</th><th>cells failed</th><th>wall time</th><th>executed</th></tr></thead><tbody>");
        foreach (var run in runs)
        {
            string name = Path.GetFileNameWithoutExtension(run.Path);
            bool written = run.LoadError is null;
            sb.Append("<tr><td>").Append(written ? $"<a href=\"{Encode(name)}.html\">{Encode(Path.GetFileName(run.Path))}</a>" : Encode(Path.GetFileName(run.Path)))
                .Append("</td><td>").Append(run.Succeeded ? "ok" : "failed" + (run.LoadError is null ? "" : ": " + Encode(run.LoadError)))
                .Append("</td><td>").Append(run.Cells.Count(c => c.Status == CellStatus.Ok))
                .Append("</td><td>").Append(run.Cells.Count(c => c.Status == CellStatus.Failed))
                .Append("</td><td>").Append($"{run.Elapsed.TotalSeconds:F1} s")
                .Append("</td><td>").Append(written ? $"<a href=\"{Encode(name)}.ipynb\">{Encode(name)}.ipynb</a>" : "")
                .Append("</td></tr>");
        }
        string path = Path.Combine(outputDirectory, "index.html");
        File.WriteAllText(path, sb.Append("</tbody></table></body></html>").ToString());
        return path;
    }

    private static string RenderOutput(CellOutput output)
    {
        if (output.Html is { } html) return html;
        if (output.PlainText is { } text) return "<pre>" + Encode(text) + "</pre>";
        return "<pre>" + Encode(string.Join("\n", output.Values.Select(kv => kv.Key + ": " + kv.Value))) + "</pre>";
    }

    private static string Encode(string text) => WebUtility.HtmlEncode(text);

    private const string PageStyle =
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#1d2330}" +
        "pre.code{background:#f5f6f8;border:1px solid #e1e4ea;padding:8px;overflow-x:auto;font-size:13px}" +
        ".cell{margin:14px 0}.cellhead{font:12px monospace;color:#667}.cell-failed .cellhead{color:#b00020}.cell-skipped{opacity:.5}" +
        ".injected{opacity:.7}.si-error{color:#b00020;white-space:pre-wrap}" +
        ".output{margin:6px 0 6px 12px;overflow-x:auto}.meta{color:#667}.ok{color:#137333}table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:2px 6px}</style>";
}
