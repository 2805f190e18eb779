using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ScalingInteractive.Display;

namespace ScalingInteractive.Claims;

/// <summary>What a measurement says about a paper's claim.</summary>
public enum ClaimOutcome
{
    /// <summary>The claim shows at this scale, by its rule.</summary>
    Holds,
    /// <summary>It does not show, and the control that decided it rules out the setting (a genuine non-replication here).</summary>
    Fails,
    /// <summary>The measurement cannot decide: a tie, a difference within the noise, seeds that disagree, a missing control.</summary>
    Inconclusive,
}

/// <summary>One number behind a verdict.</summary>
/// <param name="Name">What it is, e.g. <c>d90 SAID (seed 0)</c>.</param>
/// <param name="Value">The measured value (NaN when not measured; infinity for "not reached").</param>
/// <param name="Note">Units or context, e.g. <c>nats</c>, <c>of 199,210</c>.</param>
public sealed record Evidence(string Name, double Value, string? Note = null)
{
    /// <summary>The value as text (G4; "not reached" for infinity, "-" for NaN).</summary>
    public string Shown => double.IsPositiveInfinity(Value) ? "not reached" : double.IsNaN(Value) ? "-" : Value.ToString("G4", CultureInfo.InvariantCulture);
}

/// <summary>
/// A judged claim: which claim, the outcome, the finding in words (e.g. <c>holds</c>, <c>regime mismatch</c>,
/// <c>genuine non-replication at this scale</c>, <c>within seed noise</c>), the rule that decided it (documented once,
/// on the judge), the control that decided it, and the numbers. Judges are library code with unit tests for every
/// branch (Claims folder); notebooks call them once per claim.
/// </summary>
/// <param name="Paper">Short citation, e.g. <c>Wortsman et al. 2023</c>.</param>
/// <param name="Id">Claim number in the notebook, e.g. <c>1</c>, <c>2b</c>.</param>
/// <param name="Claim">The claim, one sentence.</param>
/// <param name="Outcome">Holds, fails or inconclusive.</param>
/// <param name="Finding">The verdict in words.</param>
/// <param name="Rule">The decision rule applied.</param>
/// <param name="DecidedBy">The measurement or control that decided it.</param>
/// <param name="Evidence">The numbers.</param>
public sealed record ClaimVerdict(string Paper, string Id, string Claim, ClaimOutcome Outcome, string Finding, string Rule, string DecidedBy,
    IReadOnlyList<Evidence> Evidence) : IRichResult
{
    /// <summary>One evidence value by name (NaN when absent).</summary>
    public double this[string name] => Evidence.FirstOrDefault(e => e.Name == name)?.Value ?? double.NaN;

    /// <inheritdoc />
    public string ToText()
    {
        var sb = new StringBuilder($"Claim {Id} ({Paper}): {Claim}\n  {Outcome.ToString().ToUpperInvariant()}: {Finding}\n  decided by: {DecidedBy}\n  rule: {Rule}\n");
        foreach (var e in Evidence) sb.Append("  ").Append(e.Name).Append(": ").Append(e.Shown).Append(e.Note is null ? "" : " " + e.Note).Append('\n');
        return sb.ToString().TrimEnd();
    }

    /// <inheritdoc />
    public string ToHtml()
    {
        var sb = new StringBuilder(HtmlText.Style).Append("<div class=\"si-claim\" data-claim=\"").Append(HtmlText.Encode(Id)).Append("\" data-outcome=\"")
            .Append(Outcome).Append("\"><p><b>Claim ").Append(HtmlText.Encode(Id)).Append(":</b> ").Append(HtmlText.Encode(Claim)).Append("<br/><b>")
            .Append(Outcome.ToString().ToUpperInvariant()).Append("</b>: ").Append(HtmlText.Encode(Finding)).Append("<br/><small>decided by: ")
            .Append(HtmlText.Encode(DecidedBy)).Append("; rule: ").Append(HtmlText.Encode(Rule)).Append("</small></p>");
        sb.Append(HtmlText.Table(["evidence", "value", "note"], Evidence.Select(e => (IReadOnlyList<string>)[e.Name, e.Shown, e.Note ?? ""])));
        return sb.Append("</div>").ToString();
    }

    /// <inheritdoc />
    public string ToJson() => ToNode().ToJsonString();

    internal JsonObject ToNode() => new()
    {
        ["paper"] = Paper, ["id"] = Id, ["claim"] = Claim, ["outcome"] = Outcome.ToString(), ["finding"] = Finding, ["rule"] = Rule, ["decidedBy"] = DecidedBy,
        ["evidence"] = new JsonArray(Evidence.Select(e => (JsonNode?)new JsonObject
        {
            ["name"] = e.Name, ["value"] = double.IsFinite(e.Value) ? e.Value : null, ["shown"] = e.Shown, ["note"] = e.Note,
        }).ToArray()),
    };
}

/// <summary>
/// A notebook's verdicts, one row per claim of the paper in order. Complete when every claim has a verdict; the notebook
/// test checks the rendered table says so (<c>data-complete="true"</c>).
/// </summary>
/// <param name="Paper">Short citation.</param>
/// <param name="ClaimIds">Every claim the notebook judges, in order.</param>
/// <param name="Verdicts">The verdicts given.</param>
public sealed record VerdictTable(string Paper, IReadOnlyList<string> ClaimIds, IReadOnlyList<ClaimVerdict> Verdicts) : IRichResult
{
    /// <summary>Claims without a verdict.</summary>
    public IReadOnlyList<string> Missing => ClaimIds.Where(id => Verdicts.All(v => v.Id != id)).ToList();

    /// <summary>True when every claim has a verdict.</summary>
    public bool Complete => Missing.Count == 0;

    private IEnumerable<IReadOnlyList<string>> Rows() => ClaimIds.Select(id => Verdicts.FirstOrDefault(v => v.Id == id) is { } v
        ? (IReadOnlyList<string>)[id, v.Claim, v.Outcome.ToString().ToLowerInvariant(), v.Finding, v.DecidedBy]
        : [id, "", "not judged", "", ""]);

    private static readonly string[] Header = ["claim", "statement", "outcome", "finding", "decided by"];

    /// <inheritdoc />
    public string ToText() =>
        $"Verdicts ({Paper}): {Verdicts.Count(v => v.Outcome == ClaimOutcome.Holds)} hold, {Verdicts.Count(v => v.Outcome == ClaimOutcome.Fails)} fail, " +
        $"{Verdicts.Count(v => v.Outcome == ClaimOutcome.Inconclusive)} inconclusive{(Complete ? "" : $"; not judged: {string.Join(", ", Missing)}")}\n" +
        HtmlText.TextTable(Header, Rows().ToList());

    /// <inheritdoc />
    public string ToHtml() =>
        HtmlText.Style + $"<div class=\"si-verdicts\" data-paper=\"{HtmlText.Encode(Paper)}\" data-claims=\"{ClaimIds.Count}\" data-judged=\"{ClaimIds.Count - Missing.Count}\" " +
        $"data-complete=\"{(Complete ? "true" : "false")}\">" + HtmlText.Table(Header, Rows(), $"Verdicts: {Paper}") + "</div>";

    /// <inheritdoc />
    public string ToJson() => new JsonObject
    {
        ["paper"] = Paper, ["complete"] = Complete,
        ["verdicts"] = new JsonArray(Verdicts.Select(v => (JsonNode?)v.ToNode()).ToArray()),
        ["missing"] = new JsonArray(Missing.Select(m => (JsonNode?)m).ToArray()),
    }.ToJsonString();
}
