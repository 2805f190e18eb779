using System.Text.Json.Nodes;
using System.Globalization;
using System.Text.Json;
using ScalingInteractive.Display;

namespace ScalingInteractive.Fitting;

/// <summary>
/// Compute-optimal allocation for law 1 with <c>C = 6 N D</c> (Hoffmann et al. 2022): minimising
/// <c>E + A/N^alpha + B/D^beta</c> at fixed C gives <c>N_opt = G (C/6)^a</c>, <c>D_opt = (C/6)^b / G</c> with
/// <c>a = beta/(alpha+beta)</c>, <c>b = alpha/(alpha+beta)</c>, <c>G = (alpha A/(beta B))^(1/(alpha+beta))</c>,
/// and the loss along the frontier <c>L*(C) = E + K (C/6)^(-gamma)</c> with <c>gamma = alpha beta/(alpha+beta)</c>.
/// </summary>
public static class ComputeOptimal
{
    /// <summary>N_opt and D_opt for compute C given law-1 parameters.</summary>
    public static (double N, double D) Allocation(double a, double b, double alpha, double beta, double compute)
    {
        double g = Math.Pow(alpha * a / (beta * b), 1 / (alpha + beta));
        double n = g * Math.Pow(compute / 6, beta / (alpha + beta));
        return (n, compute / (6 * n));
    }

    /// <summary>The lowest loss reachable with compute C (on the frontier).</summary>
    public static double FrontierLoss(double e, double a, double b, double alpha, double beta, double compute)
    {
        var (n, d) = Allocation(a, b, alpha, beta, compute);
        return e + a / Math.Pow(n, alpha) + b / Math.Pow(d, beta);
    }

    /// <summary>The compute needed to reach a target loss on the frontier (NaN when the target is at or below E).</summary>
    public static double ComputeForLoss(double e, double a, double b, double alpha, double beta, double targetLoss)
    {
        if (!(targetLoss > e)) return double.NaN;
        double gamma = alpha * beta / (alpha + beta);
        double k = FrontierLoss(0, a, b, alpha, beta, 6); // (C/6) = 1
        return 6 * Math.Pow((targetLoss - e) / k, -1 / gamma);
    }

    /// <summary>
    /// The allocation at each compute budget (and the compute for each target loss), with bootstrap percentile
    /// intervals when the fit has a bootstrap.
    /// </summary>
    public static ComputeOptimalAllocation Allocate(ScalingLawFit fit, IReadOnlyList<double> budgets, IReadOnlyList<double>? targetLosses = null)
    {
        if (fit.Law is not ChinchillaLaw) throw new ArgumentException($"Compute-optimal allocation needs a law-1 (chinchilla) fit; this fit is law '{fit.Law.Name}'.", nameof(fit));
        foreach (double c in budgets)
            if (!(c > 0 && double.IsFinite(c))) throw new ArgumentException($"Compute budget {c} is not positive and finite.", nameof(budgets));
        targetLosses ??= [];
        var samples = fit.Bootstrap?.Samples ?? [];
        double level = fit.Bootstrap?.Level ?? 0.95;
        Quantity Q(Func<double[], double> f)
        {
            double estimate = f(fit.Values);
            if (samples.Length == 0) return new Quantity(estimate, double.NaN, double.NaN);
            var values = samples.Select(f).Where(double.IsFinite).Order().ToArray();
            return new Quantity(estimate, Stats.Percentile(values, (1 - level) / 2), Stats.Percentile(values, 1 - (1 - level) / 2));
        }
        var rows = budgets.Select(c => new AllocationRow(c,
            Q(p => Allocation(p[1], p[2], p[3], p[4], c).N),
            Q(p => Allocation(p[1], p[2], p[3], p[4], c).D),
            Q(p => { var (n, d) = Allocation(p[1], p[2], p[3], p[4], c); return d / n; }),
            Q(p => FrontierLoss(p[0], p[1], p[2], p[3], p[4], c)))).ToArray();
        var targets = targetLosses.Select(l => new TargetRow(l, Q(p => ComputeForLoss(p[0], p[1], p[2], p[3], p[4], l)))).ToArray();
        return new ComputeOptimalAllocation
        {
            ExponentA = Q(p => p[4] / (p[3] + p[4])), ExponentB = Q(p => p[3] / (p[3] + p[4])), Level = level, HasIntervals = samples.Length > 0,
            Rows = rows, Targets = targets,
        };
    }

    /// <summary>Log-spaced values from <paramref name="from"/> to <paramref name="to"/>.</summary>
    public static double[] LogSpaced(double from, double to, int count)
    {
        if (count < 2) return [from];
        double lo = Math.Log(from), hi = Math.Log(to);
        return Enumerable.Range(0, count).Select(i => Math.Exp(lo + (hi - lo) * i / (count - 1))).ToArray();
    }
}

/// <summary>An estimate with its bootstrap percentile interval (NaN bounds without a bootstrap).</summary>
/// <param name="Estimate">Value at the best fit.</param>
/// <param name="Lower">Lower bound.</param>
/// <param name="Upper">Upper bound.</param>
public readonly record struct Quantity(double Estimate, double Lower, double Upper)
{
    /// <inheritdoc />
    public override string ToString() => double.IsNaN(Lower) ? HtmlText.Number(Estimate) : $"{HtmlText.Number(Estimate)} [{HtmlText.Number(Lower)}, {HtmlText.Number(Upper)}]";
}

/// <summary>The compute-optimal allocation at one budget.</summary>
/// <param name="Compute">Training compute C in FLOPs.</param>
/// <param name="N">Optimal parameters.</param>
/// <param name="D">Optimal tokens.</param>
/// <param name="TokensPerParameter">D_opt / N_opt.</param>
/// <param name="Loss">Loss on the frontier.</param>
public sealed record AllocationRow(double Compute, Quantity N, Quantity D, Quantity TokensPerParameter, Quantity Loss);

/// <summary>The compute needed for a target loss.</summary>
/// <param name="TargetLoss">The loss to reach.</param>
/// <param name="Compute">FLOPs needed on the frontier.</param>
public sealed record TargetRow(double TargetLoss, Quantity Compute);

/// <summary>Compute-optimal allocation of a law-1 fit: exponents, N_opt, D_opt and tokens per parameter with intervals.</summary>
public sealed record ComputeOptimalAllocation : IRichResult
{
    /// <summary>Exponent a of <c>N_opt ∝ C^a</c>: <c>beta/(alpha+beta)</c>.</summary>
    public required Quantity ExponentA { get; init; }
    /// <summary>Exponent b of <c>D_opt ∝ C^b</c>: <c>alpha/(alpha+beta)</c>.</summary>
    public required Quantity ExponentB { get; init; }
    /// <summary>Confidence level of the intervals.</summary>
    public required double Level { get; init; }
    /// <summary>True when the intervals come from a bootstrap.</summary>
    public required bool HasIntervals { get; init; }
    /// <summary>One row per compute budget.</summary>
    public required IReadOnlyList<AllocationRow> Rows { get; init; }
    /// <summary>One row per target loss.</summary>
    public required IReadOnlyList<TargetRow> Targets { get; init; }

    private static string Q(Quantity q) => q.ToString();

    private string Summary => $"N_opt ∝ C^a with a = {Q(ExponentA)}; D_opt ∝ C^b with b = {Q(ExponentB)}" + (HasIntervals ? $" ({Level:P0} bootstrap intervals)" : "");

    private static readonly string[] Header = ["compute C (FLOPs)", "N_opt", "D_opt", "tokens / parameter", "loss"];

    private List<IReadOnlyList<string>> TableRows() => Rows.Select(r => (IReadOnlyList<string>)
        [HtmlText.Number(r.Compute, 3), Q(r.N), Q(r.D), Q(r.TokensPerParameter), Q(r.Loss)]).ToList();

    private List<IReadOnlyList<string>> TargetTableRows() => Targets.Select(t => (IReadOnlyList<string>)[HtmlText.Number(t.TargetLoss, 4), Q(t.Compute)]).ToList();

    /// <summary>The frontier chart: N_opt and D_opt against compute on log axes, with bands.</summary>
    public string FrontierChart()
    {
        var c = Rows.Select(r => r.Compute).ToArray();
        Series S(string name, Func<AllocationRow, Quantity> f) => HasIntervals
            ? new Series(name, c, Rows.Select(r => f(r).Estimate).ToArray(), Lower: Rows.Select(r => f(r).Lower).ToArray(), Upper: Rows.Select(r => f(r).Upper).ToArray())
            : new Series(name, c, Rows.Select(r => f(r).Estimate).ToArray());
        return Charts.Lines(new ChartOptions("Compute-optimal frontier (C = 6ND)", "compute C (FLOPs)", "N_opt, D_opt", LogX: true, LogY: true),
            [S("N_opt (parameters)", r => r.N), S("D_opt (tokens)", r => r.D)]).ToHtml();
    }

    /// <inheritdoc />
    public string ToText()
    {
        var text = Summary + "\n" + HtmlText.TextTable(Header, TableRows());
        if (Targets.Count > 0) text += "\n" + HtmlText.TextTable(["target loss", "compute needed (FLOPs)"], TargetTableRows());
        return text;
    }

    /// <inheritdoc />
    public string ToHtml() => HtmlCache.Get(this, RenderHtml);

    private string RenderHtml()
    {
        var html = HtmlText.Style + "<p>" + HtmlText.Encode(Summary) + "</p>" + HtmlText.Table(Header, TableRows(), "Compute-optimal allocation");
        if (Targets.Count > 0) html += HtmlText.Table(["target loss", "compute needed (FLOPs)"], TargetTableRows(), "Compute for a target loss");
        return html + (Rows.Count > 1 ? FrontierChart() : "");
    }

    /// <inheritdoc />
    public string ToJson()
    {
        static JsonObject J(Quantity q) => new() { ["estimate"] = Json.Finite(q.Estimate), ["lower"] = Json.Finite(q.Lower), ["upper"] = Json.Finite(q.Upper) };
        return new JsonObject
        {
            ["exponentA"] = J(ExponentA), ["exponentB"] = J(ExponentB), ["level"] = Level, ["hasIntervals"] = HasIntervals,
            ["rows"] = new JsonArray(Rows.Select(r => (JsonNode?)new JsonObject
                { ["compute"] = r.Compute, ["nOpt"] = J(r.N), ["dOpt"] = J(r.D), ["tokensPerParameter"] = J(r.TokensPerParameter), ["loss"] = J(r.Loss) }).ToArray()),
            ["targets"] = new JsonArray(Targets.Select(t => (JsonNode?)new JsonObject { ["targetLoss"] = t.TargetLoss, ["compute"] = J(t.Compute) }).ToArray()),
        }.ToJsonString(Json.Options);
    }

    /// <summary>The rows as CSV.</summary>
    public string ToCsv()
    {
        var sb = new System.Text.StringBuilder("compute,n_opt,n_lower,n_upper,d_opt,d_lower,d_upper,tokens_per_parameter,loss\n");
        foreach (var r in Rows)
            sb.AppendLine(string.Join(",", new[] { r.Compute, r.N.Estimate, r.N.Lower, r.N.Upper, r.D.Estimate, r.D.Lower, r.D.Upper, r.TokensPerParameter.Estimate, r.Loss.Estimate }
                .Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
        return sb.ToString();
    }
}
