using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ScalingInteractive.Display;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;

/// <summary>Intruder analysis of every matching matrix of a base / fine-tuned model pair.</summary>
/// <param name="Name">A label (e.g. the method: "LoRA r=8").</param>
/// <param name="TopK">k.</param>
/// <param name="Epsilon">Headline epsilon.</param>
/// <param name="Layers">Per-matrix results, in model order.</param>
public sealed record ModelSpectrum(string Name, int TopK, double Epsilon, IReadOnlyList<LayerSpectrum> Layers) : IRichResult
{
    /// <summary>Epsilons of the sweep (those of the first layer; all layers share them).</summary>
    public double[] EpsilonSweep => Layers.Count > 0 ? Layers[0].EpsilonSweep : [];

    /// <summary>Total intruder dimensions over all layers at the headline epsilon.</summary>
    public int TotalIntruders => Layers.Sum(l => l.Intruders.Length);

    /// <summary>Total intruder count over layers at each epsilon of the sweep.</summary>
    public int[] TotalBySweep => EpsilonSweep.Select((_, i) => Layers.Sum(l => l.IntruderCounts[i])).ToArray();

    /// <summary>Mean effective rank of the updates.</summary>
    public double MeanUpdateEffectiveRank => Layers.Count == 0 ? double.NaN : Layers.Average(l => l.UpdateEffectiveRank);

    /// <inheritdoc />
    public string ToText()
    {
        var header = new List<string> { "layer", "shape", "||dW||/||W0||", "erank(dW)", $"intruders@{Epsilon}" };
        header.AddRange(EpsilonSweep.Select(e => "e=" + e.ToString(CultureInfo.InvariantCulture)));
        var rows = Layers.Select(l => (IReadOnlyList<string>)new List<string>
        {
            l.Name, $"{l.Rows}x{l.Columns}", HtmlText.Number(l.RelativeUpdateNorm, 3), HtmlText.Number(l.UpdateEffectiveRank, 3), l.Intruders.Length.ToString(CultureInfo.InvariantCulture),
        }.Concat(l.IntruderCounts.Select(c => c.ToString(CultureInfo.InvariantCulture))).ToList());
        return $"{Name}: {TotalIntruders} intruder dimensions (top-{TopK}, epsilon {Epsilon}) over {Layers.Count} matrices\n" +
               HtmlText.TextTable(header, rows);
    }

    /// <inheritdoc />
    public string ToHtml()
    {
        var sb = new StringBuilder(HtmlText.Style);
        sb.Append("<div class=\"si-lora-spectrum\"><h4>").Append(HtmlText.Encode(Name)).Append("</h4><p>")
          .Append(HtmlText.Encode($"{TotalIntruders} intruder dimensions at epsilon {Epsilon.ToString(CultureInfo.InvariantCulture)} among the top {TopK} singular vectors of {Layers.Count} matrices; mean effective rank of the update {HtmlText.Number(MeanUpdateEffectiveRank, 3)}."))
          .Append("</p>");
        var header = new List<string> { "layer", "shape", "||ΔW||/||W0||", "erank(ΔW)", $"intruders (ε={Epsilon.ToString(CultureInfo.InvariantCulture)})" };
        header.AddRange(EpsilonSweep.Select(e => "ε=" + e.ToString(CultureInfo.InvariantCulture)));
        sb.Append(HtmlText.Table(header, Layers.Select(l => new List<string>
        {
            l.Name, $"{l.Rows}×{l.Columns}", HtmlText.Number(l.RelativeUpdateNorm, 3), HtmlText.Number(l.UpdateEffectiveRank, 3), l.Intruders.Length.ToString(CultureInfo.InvariantCulture),
        }.Concat(l.IntruderCounts.Select(c => c.ToString(CultureInfo.InvariantCulture)))), "Intruder dimensions per matrix"));
        if (Layers.Count > 0)
        {
            sb.Append(SpectrumCharts.CountsVsEpsilon([this]).ToHtml(360));
            foreach (var layer in Layers.OrderByDescending(l => l.Intruders.Length).ThenBy(l => l.Name, StringComparer.Ordinal).Take(2))
            {
                sb.Append(SpectrumCharts.Heatmap(layer, Name).ToHtml());
                sb.Append(SpectrumCharts.Spectra(layer).ToHtml(360));
            }
        }
        return sb.Append("</div>").ToString();
    }

    /// <inheritdoc />
    public string ToJson() => JsonSerializer.Serialize(this, LoraJson.Default.ModelSpectrum);
}

/// <summary>Charts of the spectral comparison (Plotly, rendered offline).</summary>
public static class SpectrumCharts
{
    /// <summary>Total intruder count over layers vs epsilon, one line per analysis (method).</summary>
    public static Chart CountsVsEpsilon(IEnumerable<ModelSpectrum> spectra) =>
        Charts.Lines(new ChartOptions("Intruder dimensions vs epsilon (sum over matrices)", "epsilon", "intruder dimensions"),
            spectra.Select(s => new Series(s.Name, s.EpsilonSweep, s.TotalBySweep.Select(c => (double)c).ToArray())));

    /// <summary>Singular values of W0, W and ΔW of one layer (log y).</summary>
    public static Chart Spectra(LayerSpectrum layer)
    {
        static double[] Index(int n) => Enumerable.Range(1, n).Select(i => (double)i).ToArray();
        static double[] Positive(double[] s) => s.Select(v => Math.Max(v, 1e-12)).ToArray();
        return Charts.Lines(new ChartOptions($"Singular values: {layer.Name}", "index", "singular value", LogY: true),
        [
            new Series("W0 (pre-trained)", Index(layer.BaseSingularValues.Length), Positive(layer.BaseSingularValues)),
            new Series("W (fine-tuned)", Index(layer.TunedSingularValues.Length), Positive(layer.TunedSingularValues)),
            new Series("ΔW = W - W0", Index(layer.UpdateSingularValues.Length), Positive(layer.UpdateSingularValues)),
        ]);
    }

    /// <summary>
    /// Heat map of |cosine| between the top-k singular vectors of W (rows) and the leading singular vectors of W0
    /// (columns); an intruder is a row with no bright cell.
    /// </summary>
    public static Chart Heatmap(LayerSpectrum layer, string label) =>
        Charts.Heatmap(new ChartOptions($"|cos| {label}: {layer.Name} (intruders: {(layer.Intruders.Length == 0 ? "none" : string.Join(", ", layer.Intruders))})",
            "singular vector of W0 (index)", "top singular vector of W"), layer.Similarity, reverseYAxis: true);
}

/// <summary>Compares whole models: every 2-D weight present in both, optionally filtered by name.</summary>
public static class SpectrumAnalysis
{
    /// <summary>
    /// Runs <see cref="Spectra.CompareLayer"/> on every 2-D tensor of <paramref name="tuned"/> whose name matches
    /// <paramref name="layerFilter"/> (a regular expression; null = all) and that differs from nothing but shape checks.
    /// Throws <see cref="ArgumentException"/> for a tensor missing from the base, a shape mismatch, or no match at all.
    /// </summary>
    public static ModelSpectrum Compare(string name, IReadOnlyDictionary<string, Tensor> baseWeights, IReadOnlyDictionary<string, Tensor> tuned,
        IntruderOptions? options = null, string? layerFilter = null, Device? device = null,
        Action<int, int, string>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new IntruderOptions();
        options.Validate();
        Regex? filter;
        try { filter = string.IsNullOrWhiteSpace(layerFilter) ? null : new Regex(layerFilter); }
        catch (ArgumentException e) { throw new ArgumentException($"Layer filter '{layerFilter}' is not a valid regular expression: {e.Message}", nameof(layerFilter)); }
        var names = tuned.Where(kv => kv.Value.dim() == 2 && Math.Min(kv.Value.shape[0], kv.Value.shape[1]) >= 2 && (filter?.IsMatch(kv.Key) ?? true))
            .Select(kv => kv.Key).ToList();
        if (names.Count == 0)
            throw new ArgumentException($"No 2-D weight matches the layer filter '{layerFilter}'. Tensors: {string.Join(", ", tuned.Keys.Take(12))}{(tuned.Count > 12 ? ", ..." : "")}.", nameof(layerFilter));
        var missing = names.Where(n => !baseWeights.ContainsKey(n)).ToList();
        if (missing.Count > 0)
            throw new ArgumentException($"The base model has no tensor named {string.Join(", ", missing.Take(5).Select(m => "'" + m + "'"))}{(missing.Count > 5 ? $" (and {missing.Count - 5} more)" : "")}; both models must have the same tensor names.", nameof(baseWeights));
        foreach (var n in names)
            if (!baseWeights[n].shape.SequenceEqual(tuned[n].shape))
                throw new ArgumentException($"Tensor '{n}' is [{string.Join(", ", baseWeights[n].shape)}] in the base model but [{string.Join(", ", tuned[n].shape)}] in the tuned one; they must match.", nameof(tuned));
        var layers = new List<LayerSpectrum>();
        for (int i = 0; i < names.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Invoke(i, names.Count, names[i]);
            using var scope = NewDisposeScope();
            var w0 = device is null ? baseWeights[names[i]] : baseWeights[names[i]].to(device);
            var w = device is null ? tuned[names[i]] : tuned[names[i]].to(device);
            layers.Add(Spectra.CompareLayer(names[i], w0, w, options));
        }
        progress?.Invoke(names.Count, names.Count, "done");
        return new ModelSpectrum(name, options.TopK, options.Epsilon, layers);
    }

    /// <summary>The weights of a TorchSharp module by parameter name (detached views; the module keeps ownership).</summary>
    public static Dictionary<string, Tensor> Weights(nn.Module module) =>
        module.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach(), StringComparer.Ordinal);

    /// <summary>Deep copies of a module's weights (a snapshot, e.g. W0 before fine-tuning).</summary>
    public static Dictionary<string, Tensor> Snapshot(nn.Module module) =>
        module.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone(), StringComparer.Ordinal);
}
