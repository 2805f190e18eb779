using System.Globalization;
using System.Text;
using System.Text.Json;
using ScalingInteractive.Display;

namespace ScalingInteractive.LoraSpectra;

/// <summary>Results of <see cref="LoraExperiment.Run(LoraExperimentOptions, LoraExperimentCorpora, TorchSharp.torch.Device, string?, IProgressSink?, CancellationToken)"/>: every run, the learning rate selected per method, and the task sequences.</summary>
/// <param name="Options">Settings.</param>
/// <param name="PretrainCorpus">Name of corpus A.</param>
/// <param name="Tasks">Names of the fine-tuning tasks (B first).</param>
/// <param name="PretrainLoss">Validation loss on A of the pre-trained model.</param>
/// <param name="Runs">Every fine-tuning run on B (all learning rates).</param>
/// <param name="Sequences">Task-sequence runs.</param>
public sealed record LoraExperimentResult(LoraExperimentOptions Options, string PretrainCorpus, string[] Tasks, double PretrainLoss,
    IReadOnlyList<LoraRunRecord> Runs, IReadOnlyList<LoraSequenceRecord> Sequences) : IRichResult
{
    /// <summary>Full fine-tuning at its best learning rate (lowest target loss); null when every run diverged.</summary>
    public LoraRunRecord? Full => Runs.Where(r => r.Rank == 0 && !r.Diverged).OrderBy(r => r.TargetLoss).FirstOrDefault();

    /// <summary>
    /// One run per method: full fine-tuning at its best rate; each LoRA configuration at the rate whose target loss is
    /// closest to full fine-tuning's (so methods are compared at matched target performance), ordered full, then by rank.
    /// </summary>
    public IReadOnlyList<LoraRunRecord> Selected
    {
        get
        {
            var full = Full;
            var list = new List<LoraRunRecord>();
            if (full is not null) list.Add(full);
            foreach (var group in Runs.Where(r => r.Rank > 0 && !r.Diverged).GroupBy(r => (r.Rank, r.RsLora)).OrderBy(g => g.Key.Rank).ThenBy(g => g.Key.RsLora))
                list.Add(full is null ? group.OrderBy(r => r.TargetLoss).First() : group.OrderBy(r => Math.Abs(r.TargetLoss - full.TargetLoss)).First());
            return list;
        }
    }

    /// <summary>Total intruders at the headline epsilon of the selected run of a method (null when absent).</summary>
    public int? IntrudersOf(int rank, bool rsLora = false) => Selected.FirstOrDefault(r => r.Rank == rank && r.RsLora == rsLora)?.Spectrum?.TotalIntruders;

    /// <inheritdoc />
    public string ToText()
    {
        var sb = new StringBuilder($"Full vs LoRA on {string.Join(" -> ", Tasks)} after pre-training on {PretrainCorpus} (A loss {PretrainLoss:F3})\n");
        sb.Append(HtmlText.TextTable(RunHeader, Selected.Select(RunRow).ToList()));
        if (Sequences.Count > 0) sb.Append("\n\n").Append(HtmlText.TextTable(SequenceHeader, SequenceRows().ToList()));
        return sb.ToString();
    }

    private string[] RunHeader =>
    [
        "method", "lr", "trainable", "target loss", "A loss after", "forgetting", $"intruders@{Options.Intruders.Epsilon.ToString(CultureInfo.InvariantCulture)}",
        "erank(ΔW)", $"mitigated (λ={Options.MitigationLambda.ToString(CultureInfo.InvariantCulture)}): target", "mitigated: A",
    ];

    private static IReadOnlyList<string> RunRow(LoraRunRecord r) =>
    [
        r.Method, HtmlText.Number(r.LearningRate, 3), r.TrainableParameters.ToString("N0", CultureInfo.InvariantCulture), HtmlText.Number(r.TargetLoss),
        HtmlText.Number(r.PretrainLossAfter), HtmlText.Number(r.Forgetting, 3), r.Spectrum?.TotalIntruders.ToString(CultureInfo.InvariantCulture) ?? "-",
        r.Spectrum is null ? "-" : HtmlText.Number(r.Spectrum.MeanUpdateEffectiveRank, 3), HtmlText.Number(r.MitigatedTargetLoss), HtmlText.Number(r.MitigatedPretrainLoss),
    ];

    private string[] SequenceHeader =>
        new[] { "method", "after" }.Concat(Sequences.Count > 0 ? Sequences[0].Tasks.Select(t => "loss on " + t) : []).Append("intruders").ToArray();

    private IEnumerable<IReadOnlyList<string>> SequenceRows()
    {
        foreach (var s in Sequences)
            for (int stage = 0; stage < s.Losses.Length; stage++)
                yield return new[] { s.Method, stage == 0 ? "pre-training" : s.Tasks[stage] }
                    .Concat(s.Losses[stage].Select(x => HtmlText.Number(x))).Append(s.Intruders.Length > stage ? s.Intruders[stage].ToString(CultureInfo.InvariantCulture) : "-").ToList();
    }

    /// <inheritdoc />
    public string ToHtml()
    {
        var sb = new StringBuilder(HtmlText.Style).Append("<div class=\"si-lora-experiment\">");
        sb.Append("<p>").Append(HtmlText.Encode($"Pre-trained on {PretrainCorpus} (validation loss {PretrainLoss:F3}), fine-tuned on {Tasks[0]} for {Options.FineTuneSteps} steps; " +
            $"LoRA learning rates chosen so target losses match full fine-tuning. Intruders: top-{Options.Intruders.TopK} singular vectors with max |cos| < {Options.Intruders.Epsilon}.")).Append("</p>");
        sb.Append(HtmlText.Table(RunHeader, Selected.Select(RunRow), "Target loss, forgetting and intruder dimensions per method"));
        var spectra = Selected.Where(r => r.Spectrum is not null).Select(r => r.Spectrum!).ToList();
        if (spectra.Count > 0)
        {
            sb.Append(SpectrumCharts.CountsVsEpsilon(spectra).ToHtml(380));
            var lora = Selected.Where(r => r.Rank > 0 && r.Spectrum is not null).ToList();
            if (lora.Count > 0)
            {
                var series = new List<Series>();
                foreach (bool rs in new[] { false, true })
                {
                    var points = lora.Where(r => r.RsLora == rs).OrderBy(r => r.Rank).ToList();
                    if (points.Count > 0)
                        series.Add(new Series(rs ? "rsLoRA" : "LoRA", points.Select(p => (double)p.Rank).ToArray(), points.Select(p => (double)p.Spectrum!.TotalIntruders).ToArray()));
                }
                if (Full?.Spectrum is { } fs)
                    series.Add(new Series("full fine-tuning", [lora.Min(r => r.Rank), lora.Max(r => r.Rank)], [fs.TotalIntruders, fs.TotalIntruders]));
                sb.Append(Charts.Lines(new ChartOptions($"Intruder dimensions vs LoRA rank (ε = {Options.Intruders.Epsilon})", "rank r", "intruder dimensions (sum over matrices)", LogX: true), series).ToHtml(360));
                sb.Append(Charts.Lines(new ChartOptions("Forgetting vs LoRA rank", "rank r", "loss on A after - before", LogX: true),
                    new[] { false, true }.Select(rs => lora.Where(r => r.RsLora == rs).OrderBy(r => r.Rank).ToList()).Where(p => p.Count > 0)
                        .Select(p => new Series(p[0].RsLora ? "rsLoRA" : "LoRA", p.Select(x => (double)x.Rank).ToArray(), p.Select(x => x.Forgetting).ToArray()))
                        .Concat(Full is { } f ? [new Series("full fine-tuning", [lora.Min(r => r.Rank), lora.Max(r => r.Rank)], [f.Forgetting, f.Forgetting])] : [])).ToHtml(360));
            }
            // Heat maps: the layer with the most intruders, for full fine-tuning and the lowest-rank LoRA.
            var showcase = lora.OrderBy(r => r.Rank).ThenBy(r => r.RsLora).FirstOrDefault();
            if (showcase?.Spectrum is { } ls && ls.Layers.Count > 0)
            {
                var layer = ls.Layers.OrderByDescending(l => l.Intruders.Length).First();
                sb.Append(SpectrumCharts.Heatmap(layer, showcase.Method).ToHtml());
                if (Full?.Spectrum?.Layers.FirstOrDefault(l => l.Name == layer.Name) is { } fl) sb.Append(SpectrumCharts.Heatmap(fl, "full").ToHtml());
                sb.Append(SpectrumCharts.Spectra(layer).ToHtml(340));
            }
        }
        if (Sequences.Count > 0)
        {
            sb.Append(HtmlText.Table(SequenceHeader, SequenceRows(), "Task sequence: loss on every task after each stage"));
            sb.Append(Charts.Lines(new ChartOptions($"Loss on {Tasks[0]} (the first task) during the sequence", "stage (0 = pre-trained)", "loss"),
                Sequences.Select(s => new Series(s.Method, Enumerable.Range(0, s.Losses.Length).Select(i => (double)i).ToArray(), s.Losses.Select(l => l[1]).ToArray()))).ToHtml(340));
        }
        int diverged = Runs.Count(r => r.Diverged);
        sb.Append("<p>").Append(HtmlText.Encode($"{Runs.Count} fine-tuning runs ({diverged} diverged), {Sequences.Count} task sequences.")).Append("</p>");
        return sb.Append("</div>").ToString();
    }

    /// <inheritdoc />
    public string ToJson() => JsonSerializer.Serialize(this, LoraJson.Default.LoraExperimentResult);
}
