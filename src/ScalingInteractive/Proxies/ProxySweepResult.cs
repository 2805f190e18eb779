using ScalingInteractive.Core;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Display;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Proxies;

/// <summary>One finished run as read back from a run store.</summary>
/// <param name="Key">Run key.</param>
/// <param name="Experiment">Experiment label.</param>
/// <param name="Setting">Setting label.</param>
/// <param name="Width">Model width.</param>
/// <param name="Parameters">Non-embedding parameters.</param>
/// <param name="LearningRate">Peak learning rate.</param>
/// <param name="Seed">Seed.</param>
/// <param name="BatchSize">Batch size.</param>
/// <param name="Tokens">Training tokens.</param>
/// <param name="InitialLoss">Validation loss at initialisation.</param>
/// <param name="FinalLoss">Final validation loss (NaN when diverged).</param>
/// <param name="Diverged">Whether the run diverged.</param>
/// <param name="DivergenceReason">Why.</param>
/// <param name="MaxAttentionLogit">Peak max attention logit over the run.</param>
/// <param name="FinalMeanLogZ">Mean log Z at the last logged step.</param>
/// <param name="FinalMaxAbsLogit">Largest |output logit| at the last logged step.</param>
/// <param name="CurveStep">Logged steps.</param>
/// <param name="CurveLoss">Training loss at the logged steps.</param>
/// <param name="CurveMaxAttentionLogit">Max attention logit (over layers) at the logged steps.</param>
/// <param name="CurveMeanLogZ">Mean log Z at the logged steps.</param>
public sealed record ProxySweepRow(string Key, string Experiment, string Setting, int Width, long Parameters, double LearningRate, long Seed,
    int BatchSize, long Tokens, double InitialLoss, double FinalLoss, bool Diverged, string? DivergenceReason, double MaxAttentionLogit,
    double FinalMeanLogZ, double FinalMaxAbsLogit, double[] CurveStep, double[] CurveLoss, double[] CurveMaxAttentionLogit, double[] CurveMeanLogZ)
{
    /// <summary>Reads a record written by <see cref="ProxyRunResult.ToRecord"/>.</summary>
    public static ProxySweepRow FromRecord(JsonObject r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var curve = r["curve"] as JsonObject ?? new JsonObject();
        return new ProxySweepRow(Str(r, "key") ?? "", Str(r, "experiment") ?? "", Str(r, "setting") ?? "", (int)Num(r["width"]), (long)Num(r["parameters"]),
            Num(r["learningRate"]), (long)Num(r["seed"]), (int)Num(r["batchSize"]), (long)Num(r["tokens"]), Num(r["initialLoss"]), Num(r["finalLoss"]),
            r["diverged"]?.GetValue<bool>() ?? false, Str(r, "divergenceReason"), Num(r["maxAttentionLogit"]), Num(r["finalMeanLogZ"]), Num(r["finalMaxAbsLogit"]),
            Arr(curve["step"]), Arr(curve["loss"]), Arr(curve["maxAttentionLogit"]), Arr(curve["meanLogZ"]));
    }

    private static string? Str(JsonObject o, string name) => o[name] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    /// <summary>A number from a record field; non-finite values are stored as strings ("NaN"), missing ones read as NaN.</summary>
    internal static double Num(JsonNode? node) => JsonNumbers.Read(node);

    private static double[] Arr(JsonNode? node) => JsonNumbers.ReadArray(node);
}

/// <summary>LR sensitivity of one setting and model size (see <see cref="LrSensitivity"/>).</summary>
/// <param name="Setting">Setting label.</param>
/// <param name="Width">Model width.</param>
/// <param name="Parameters">Non-embedding parameters.</param>
/// <param name="InitialLoss">L0 (mean over runs).</param>
/// <param name="BestLoss">L*: best final loss in the grid.</param>
/// <param name="BestLearningRate">Learning rate of L*.</param>
/// <param name="Sensitivity">Mean over the grid of min(L, L0) - L*.</param>
/// <param name="DivergedRuns">Diverged runs in the group.</param>
/// <param name="Runs">Runs in the group.</param>
/// <param name="LearningRates">Learning rates of the grid (seed-averaged).</param>
/// <param name="Losses">min(L, L0) per learning rate (seed-averaged; diverged counts as L0).</param>
/// <param name="PeakAttentionLogits">Peak max attention logit per learning rate (max over seeds).</param>
public sealed record LrSensitivityRow(string Setting, int Width, long Parameters, double InitialLoss, double BestLoss, double BestLearningRate,
    double Sensitivity, int DivergedRuns, int Runs, double[] LearningRates, double[] Losses, double[] PeakAttentionLogits);

/// <summary>
/// A proxy sweep read from its run store: LR-vs-final-loss curves per size, the LR sensitivity table, attention-logit
/// and log Z curves, and the diverged runs.
/// </summary>
public sealed class ProxySweepResult : IRichResult
{
    /// <summary>Builds the result from run-store records (other experiments may be filtered by <paramref name="experiment"/>).</summary>
    public ProxySweepResult(IEnumerable<JsonObject> records, string? storePath = null, IReadOnlyList<BadRunLine>? badLines = null, string? experiment = null)
    {
        Rows = records.Select(ProxySweepRow.FromRecord).Where(r => experiment is null || r.Experiment == experiment).ToList();
        StorePath = storePath;
        BadLines = badLines ?? [];
        Sensitivities = Rows.GroupBy(r => (r.Setting, r.Width)).Select(g => Sensitivity(g.Key.Setting, g.Key.Width, g.ToList())).ToList();
    }

    /// <summary>Reads a store.</summary>
    public static ProxySweepResult FromStore(RunStore store, string? experiment = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        return new ProxySweepResult(store.Records, store.Path, store.BadLines, experiment);
    }

    /// <summary>The runs.</summary>
    public IReadOnlyList<ProxySweepRow> Rows { get; }

    /// <summary>LR sensitivity per setting and width.</summary>
    public IReadOnlyList<LrSensitivityRow> Sensitivities { get; }

    /// <summary>Path of the store the runs came from.</summary>
    public string? StorePath { get; }

    /// <summary>Unreadable store lines (reported, not used).</summary>
    public IReadOnlyList<BadRunLine> BadLines { get; }

    /// <summary>The diverged runs.</summary>
    public IReadOnlyList<ProxySweepRow> DivergedRuns => Rows.Where(r => r.Diverged).ToList();

    /// <summary>The sensitivity row of a setting and width, or null.</summary>
    public LrSensitivityRow? SensitivityOf(string setting, int width) => Sensitivities.FirstOrDefault(s => s.Setting == setting && s.Width == width);

    private static LrSensitivityRow Sensitivity(string setting, int width, List<ProxySweepRow> runs)
    {
        double l0 = runs.Average(r => r.InitialLoss);
        var byRate = runs.GroupBy(r => r.LearningRate).OrderBy(g => g.Key).ToList();
        var rates = byRate.Select(g => g.Key).ToArray();
        var losses = byRate.Select(g => g.Average(r => double.IsFinite(r.FinalLoss) ? Math.Min(r.FinalLoss, l0) : l0)).ToArray();
        var peaks = byRate.Select(g => g.Max(r => r.MaxAttentionLogit)).ToArray();
        int best = Array.IndexOf(losses, losses.Min());
        return new LrSensitivityRow(setting, width, runs[0].Parameters, l0, losses[best], rates[best], LrSensitivity.Compute(losses, l0),
            runs.Count(r => r.Diverged), runs.Count, rates, losses, peaks);
    }

    private string? _html;

    /// <inheritdoc />
    public string ToHtml() => _html ??= BuildHtml(); // charts carry random element ids: build once so the HTML is stable

    private string BuildHtml()
    {
        var sb = new StringBuilder("<div class=\"si-result\">").Append(HtmlText.Style);
        sb.Append("<h3>Proxy sweep</h3><p>").Append(HtmlText.Encode($"{Rows.Count} runs, {DivergedRuns.Count} diverged" + (StorePath is null ? "" : $"; store {StorePath}"))).Append("</p>");
        foreach (var setting in Sensitivities.Select(s => s.Setting).Distinct())
        {
            var series = Sensitivities.Where(s => s.Setting == setting).OrderBy(s => s.Width)
                .Select(s => new Series($"width {s.Width} ({s.Parameters:N0} params)", s.LearningRates, s.Losses)).ToList();
            sb.Append(Charts.Lines(new ChartOptions($"Final loss vs learning rate: {setting} (diverged runs at L0)", "learning rate", "final validation loss", LogX: true), series).ToHtml(340));
        }
        sb.Append(HtmlText.Table(["setting", "width", "non-emb. params", "L0", "L*", "best LR", "LR sensitivity", "diverged/runs"],
            Sensitivities.OrderBy(s => s.Setting, StringComparer.Ordinal).ThenBy(s => s.Width).Select(s => new[]
            {
                s.Setting, s.Width.ToString(), s.Parameters.ToString("N0"), HtmlText.Number(s.InitialLoss), HtmlText.Number(s.BestLoss),
                HtmlText.Number(s.BestLearningRate, 3), HtmlText.Number(s.Sensitivity), $"{s.DivergedRuns}/{s.Runs}",
            }), "LR sensitivity: mean over the LR grid of min(L, L0) - L*"));
        var attention = Sensitivities.OrderBy(s => s.Setting, StringComparer.Ordinal).ThenBy(s => s.Width)
            .Select(s => new Series($"{s.Setting}, width {s.Width}", s.LearningRates, s.PeakAttentionLogits.Select(v => Math.Max(v, 1e-3)).ToList())).ToList();
        if (attention.Count > 0)
            sb.Append(Charts.Lines(new ChartOptions("Peak max attention logit vs learning rate", "learning rate", "max attention logit", LogX: true, LogY: true), attention).ToHtml(340));
        var chosen = ChosenRuns();
        if (chosen.Count > 0)
        {
            sb.Append(Charts.Lines(new ChartOptions("Max attention logit over training (largest width, lowest and highest LR)", "step", "max attention logit", LogY: true),
                chosen.Select(r => new Series(Label(r), r.CurveStep, r.CurveMaxAttentionLogit.Select(v => double.IsNaN(v) ? v : Math.Max(v, 1e-3)).ToList()))).ToHtml(340));
            sb.Append(Charts.Lines(new ChartOptions("Mean log Z over training", "step", "mean log Z"),
                chosen.Select(r => new Series(Label(r), r.CurveStep, r.CurveMeanLogZ))).ToHtml(340));
        }
        if (DivergedRuns.Count > 0)
            sb.Append(HtmlText.Table(["setting", "width", "learning rate", "seed", "reason"],
                DivergedRuns.Select(r => new[] { r.Setting, r.Width.ToString(), HtmlText.Number(r.LearningRate, 3), r.Seed.ToString(), r.DivergenceReason ?? "" }), "Diverged runs"));
        if (BadLines.Count > 0)
            sb.Append(HtmlText.Table(["line", "reason"], BadLines.Select(b => new[] { b.LineNumber.ToString(), b.Reason }), "Unreadable store lines (kept out)"));
        return sb.Append("</div>").ToString();
    }

    private static string Label(ProxySweepRow r) => $"{r.Setting} w{r.Width} lr {r.LearningRate:G3}";

    /// <summary>For each setting, the runs of the largest width at its lowest and highest learning rate (first seed).</summary>
    public IReadOnlyList<ProxySweepRow> ChosenRuns()
    {
        var chosen = new List<ProxySweepRow>();
        foreach (var group in Rows.GroupBy(r => r.Setting))
        {
            int width = group.Max(r => r.Width);
            var runs = group.Where(r => r.Width == width).OrderBy(r => r.LearningRate).ThenBy(r => r.Seed).ToList();
            chosen.Add(runs[0]);
            var highest = runs.First(r => r.LearningRate == runs[^1].LearningRate);
            if (!ReferenceEquals(highest, runs[0])) chosen.Add(highest);
        }
        return chosen;
    }

    /// <inheritdoc />
    public string ToText()
    {
        var sb = new StringBuilder($"Proxy sweep: {Rows.Count} runs, {DivergedRuns.Count} diverged\n");
        sb.Append(HtmlText.TextTable(["setting", "width", "L0", "L*", "best LR", "LR sensitivity", "diverged/runs"],
            Sensitivities.Select(s => (IReadOnlyList<string>)[s.Setting, s.Width.ToString(), HtmlText.Number(s.InitialLoss), HtmlText.Number(s.BestLoss),
                HtmlText.Number(s.BestLearningRate, 3), HtmlText.Number(s.Sensitivity), $"{s.DivergedRuns}/{s.Runs}"])));
        foreach (var r in DivergedRuns) sb.Append($"\ndiverged: {Label(r)} seed {r.Seed}: {r.DivergenceReason}");
        foreach (var b in BadLines) sb.Append($"\nunreadable store line {b.LineNumber}: {b.Reason}");
        return sb.ToString();
    }

    /// <inheritdoc />
    public string ToJson() => JsonSerializer.Serialize(new ProxySweepResultJson(Rows, Sensitivities, BadLines, StorePath), ProxiesJson.Default.ProxySweepResultJson);
}
