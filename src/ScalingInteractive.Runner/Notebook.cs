using System.Text.Json;
using System.Text.RegularExpressions;

namespace ScalingInteractive.Runner;

/// <summary>One notebook cell: the kernel it targets (csharp, markdown, html, ...) and its source.</summary>
public sealed record NotebookCell(string Kernel, string Source);

/// <summary>A notebook read from a .dib or .ipynb file.</summary>
public sealed record Notebook(string Path, IReadOnlyList<NotebookCell> Cells)
{
    private static readonly Regex DibCellHeader = new(
        @"^#!(csharp|c#|cs|fsharp|f#|fs|markdown|md|pwsh|powershell|javascript|js|html|sql|kql|mermaid|http|value|meta|python|r)\s*$",
        RegexOptions.IgnoreCase | RegexOptions.Compiled);

    /// <summary>Reads a notebook; throws <see cref="NotebookFormatException"/> with a clear message on bad input.</summary>
    public static Notebook Load(string path)
    {
        if (Directory.Exists(path)) throw new NotebookFormatException($"'{path}' is a folder, not a notebook file.");
        if (!File.Exists(path)) throw new NotebookFormatException($"Notebook '{path}' does not exist.");
        string extension = System.IO.Path.GetExtension(path).ToLowerInvariant();
        string text = File.ReadAllText(path);
        return extension switch
        {
            ".dib" => new Notebook(path, ParseDib(text)),
            ".ipynb" => new Notebook(path, ParseIpynb(path, text)),
            _ => throw new NotebookFormatException($"'{path}' is not a notebook: expected a .dib or .ipynb file."),
        };
    }

    /// <summary>Splits .dib text into cells at lines such as <c>#!csharp</c> or <c>#!markdown</c>; <c>#!meta</c> cells are dropped.</summary>
    public static IReadOnlyList<NotebookCell> ParseDib(string text)
    {
        var cells = new List<NotebookCell>();
        string kernel = "csharp";
        var lines = new List<string>();
        void Flush()
        {
            string source = string.Join("\n", lines).Trim('\n', '\r');
            if (kernel != "meta" && source.Trim().Length > 0) cells.Add(new NotebookCell(kernel, source));
            lines.Clear();
        }
        foreach (string raw in text.Replace("\r\n", "\n").Split('\n'))
        {
            var match = DibCellHeader.Match(raw.TrimEnd());
            if (match.Success)
            {
                Flush();
                kernel = NormaliseKernel(match.Groups[1].Value);
                continue;
            }
            lines.Add(raw);
        }
        Flush();
        return cells;
    }

    private static IReadOnlyList<NotebookCell> ParseIpynb(string path, string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (!doc.RootElement.TryGetProperty("cells", out var cellsElement) || cellsElement.ValueKind != JsonValueKind.Array)
                throw new NotebookFormatException($"'{path}' is not a Jupyter notebook: it has no 'cells' array.");
            var cells = new List<NotebookCell>();
            foreach (var cell in cellsElement.EnumerateArray())
            {
                string type = cell.TryGetProperty("cell_type", out var t) ? t.GetString() ?? "code" : "code";
                string source = cell.TryGetProperty("source", out var s)
                    ? s.ValueKind == JsonValueKind.Array ? string.Concat(s.EnumerateArray().Select(x => x.GetString())) : s.GetString() ?? ""
                    : "";
                string kernel = type == "markdown" ? "markdown" : LanguageOf(cell);
                if (source.Trim().Length > 0) cells.Add(new NotebookCell(kernel, source));
            }
            return cells;
        }
        catch (JsonException e)
        {
            throw new NotebookFormatException($"'{path}' is not valid JSON ({e.Message}).");
        }
    }

    private static string LanguageOf(JsonElement cell)
    {
        if (cell.TryGetProperty("metadata", out var metadata))
        {
            if (metadata.TryGetProperty("polyglot_notebook", out var p) && p.TryGetProperty("kernelName", out var k)) return NormaliseKernel(k.GetString() ?? "csharp");
            if (metadata.TryGetProperty("dotnet_interactive", out var d) && d.TryGetProperty("language", out var l)) return NormaliseKernel(l.GetString() ?? "csharp");
        }
        return "csharp";
    }

    private static string NormaliseKernel(string name) => name.ToLowerInvariant() switch
    {
        "c#" or "cs" => "csharp",
        "f#" or "fs" => "fsharp",
        "md" => "markdown",
        "js" => "javascript",
        "powershell" => "pwsh",
        var other => other,
    };
}

/// <summary>A file that is missing or not a readable notebook.</summary>
public sealed class NotebookFormatException(string message) : Exception(message);
