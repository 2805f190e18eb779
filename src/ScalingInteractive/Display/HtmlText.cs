using System.Globalization;
using System.Net;
using System.Text;

namespace ScalingInteractive.Display;

/// <summary>Small HTML building helpers. Everything that carries user text goes through <see cref="Encode"/>.</summary>
public static class HtmlText
{
    /// <summary>HTML-encodes text (also quotes, so it is safe inside attributes).</summary>
    public static string Encode(string? text) => WebUtility.HtmlEncode(text ?? "");

    /// <summary>Formats a number for tables: general format with <paramref name="digits"/> significant digits.</summary>
    public static string Number(double value, int digits = 4) =>
        double.IsNaN(value) ? "NaN" : value.ToString("G" + digits, CultureInfo.InvariantCulture);

    /// <summary>An HTML table from a header row and rows of cell texts (all encoded).</summary>
    public static string Table(IEnumerable<string> header, IEnumerable<IEnumerable<string>> rows, string? caption = null)
    {
        var sb = new StringBuilder("<table class=\"si-table\">");
        if (caption is not null) sb.Append("<caption>").Append(Encode(caption)).Append("</caption>");
        sb.Append("<thead><tr>");
        foreach (var h in header) sb.Append("<th>").Append(Encode(h)).Append("</th>");
        sb.Append("</tr></thead><tbody>");
        foreach (var row in rows)
        {
            sb.Append("<tr>");
            foreach (var cell in row) sb.Append("<td>").Append(Encode(cell)).Append("</td>");
            sb.Append("</tr>");
        }
        return sb.Append("</tbody></table>").ToString();
    }

    /// <summary>A plain-text table with aligned columns (for text/plain output).</summary>
    public static string TextTable(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = new List<IReadOnlyList<string>> { header };
        all.AddRange(rows);
        int columns = header.Count;
        var widths = Enumerable.Range(0, columns).Select(c => all.Max(r => c < r.Count ? r[c].Length : 0)).ToArray();
        var sb = new StringBuilder();
        for (int r = 0; r < all.Count; r++)
        {
            sb.AppendJoin("  ", Enumerable.Range(0, columns).Select(c => (c < all[r].Count ? all[r][c] : "").PadRight(widths[c])).ToArray()).Append('\n');
            if (r == 0) sb.AppendJoin("  ", widths.Select(w => new string('-', w))).Append('\n');
        }
        return sb.ToString().TrimEnd('\n');
    }

    /// <summary>Styles shared by all ScalingInteractive HTML (scoped by class names, safe to repeat).</summary>
    public const string Style =
        "<style>.si-table{border-collapse:collapse;font:13px system-ui,sans-serif;margin:6px 0}" +
        ".si-table th,.si-table td{border:1px solid #ccd;padding:3px 8px;text-align:right}" +
        ".si-table th{background:#eef1f7}.si-table td:first-child,.si-table th:first-child{text-align:left}" +
        ".si-table caption{font-weight:600;text-align:left;padding:2px 0}" +
        ".si-progress{font:13px system-ui,sans-serif}.si-bar{background:#e4e7ee;width:320px;height:10px;border-radius:5px;overflow:hidden;display:inline-block;vertical-align:middle}" +
        ".si-bar>div{background:#4c78a8;height:100%}.si-error{color:#b00020}</style>";
}
