using System.Text.Json.Nodes;
using System.Text;
using System.Text.Json;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Hosting;
using ScalingInteractive.Display;
using ScalingInteractive.Core;

namespace ScalingInteractive.Commands;

/// <summary>Help for a set of magic commands: names, descriptions and every parameter with type, default and accepted values.</summary>
public sealed class CommandHelp(IReadOnlyList<MagicCommand> commands) : IRichResult
{
    /// <summary>The commands described.</summary>
    public IReadOnlyList<MagicCommand> Commands { get; } = commands;

    private static string DefaultText(CommandParameter p) =>
        p.Required ? "(required)" : p.Default is null ? (p.IsFlag ? "off" : "") : CommandBinder.FormatValue(p.Default);

    private static IReadOnlyList<string> Row(CommandParameter p) =>
        [p.Name + (p.AllowImplicitName ? " (name optional)" : ""), p.Accepts, DefaultText(p), p.Description];

    private static readonly string[] Header = ["parameter", "accepts", "default", "description"];

    /// <inheritdoc />
    public string ToHtml()
    {
        var sb = new StringBuilder(HtmlText.Style).Append("<div class=\"si-help\">");
        foreach (var c in Commands)
        {
            sb.Append("<h4><code>").Append(HtmlText.Encode(c.Name)).Append("</code></h4><p>").Append(HtmlText.Encode(c.Description)).Append("</p>");
            if (c.Parameters.Length > 0) sb.Append(HtmlText.Table(Header, c.Parameters.Select(Row)));
        }
        return sb.Append("</div>").ToString();
    }

    /// <inheritdoc />
    public string ToText()
    {
        var sb = new StringBuilder();
        foreach (var c in Commands)
        {
            sb.Append(c.Name).Append('\n').Append("  ").Append(c.Description).Append('\n');
            if (c.Parameters.Length > 0) sb.Append(HtmlText.TextTable(Header, c.Parameters.Select(Row))).Append('\n');
            sb.Append('\n');
        }
        return sb.ToString().TrimEnd();
    }

    /// <inheritdoc />
    public string ToJson() => new JsonArray(Commands.Select(c => (JsonNode?)new JsonObject
    {
        ["name"] = c.Name,
        ["description"] = c.Description,
        ["parameters"] = new JsonArray(c.Parameters.Select(p => (JsonNode?)new JsonObject
        {
            ["name"] = p.Name, ["type"] = p.Type.Name, ["description"] = p.Description, ["required"] = p.Required, ["flag"] = p.IsFlag,
            ["default"] = p.Default is null ? null : JsonNode.Parse(CommandBinder.ListJson(new[] { p.Default }))![0]!.DeepClone(),
            ["allowedValues"] = p.AllowedValues.IsEmpty ? null : new JsonArray(p.AllowedValues.Select(v => (JsonNode?)v).ToArray()),
            ["minimum"] = p.Minimum, ["maximum"] = p.Maximum,
        }).ToArray()),
    }).ToArray()).ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
