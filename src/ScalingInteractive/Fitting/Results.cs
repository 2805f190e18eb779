using System.Text.Json.Nodes;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ScalingInteractive.Display;

namespace ScalingInteractive.Fitting;

/// <summary>
/// A fitted scaling law: estimates by name, the optimum's objective, how many starts converged to how many distinct
/// optima, residuals, R^2 (raw and log), AIC/BIC, and optionally bootstrap uncertainty, an extrapolation check and
/// (law 3) the log-log line. Shown as HTML with the parameter table and Plotly charts.
/// </summary>
public sealed record ScalingLawFit : IRichResult
{
    /// <summary>The law.</summary>
    public required ScalingLaw Law { get; init; }
    /// <summary>The data fitted (the training part for an extrapolation check).</summary>
    public required FitData Data { get; init; }
    /// <summary>Best estimate in internal units (law 1: e, a, b, alpha, beta).</summary>
    public required double[] Theta { get; init; }
    /// <summary>Best estimate of each parameter by reported name (law 1: E, A, B, alpha, beta).</summary>
    public required IReadOnlyDictionary<string, double> Estimates { get; init; }
    /// <summary>Objective at the optimum: summed loss of log residuals.</summary>
    public required double Objective { get; init; }
    /// <summary>Loss used.</summary>
    public required LossKind Loss { get; init; }
    /// <summary>Scale of the loss.</summary>
    public required double Delta { get; init; }
    /// <summary>Starts tried.</summary>
    public required int StartsTried { get; init; }
    /// <summary>Starts that converged.</summary>
    public required int StartsConverged { get; init; }
    /// <summary>Distinct optima among the converged starts.</summary>
    public required int DistinctOptima { get; init; }
    /// <summary>Iterations of the best start.</summary>
    public required int Iterations { get; init; }
    /// <summary>Wall time of the fit.</summary>
    public required TimeSpan Elapsed { get; init; }
    /// <summary>Predictions at the data points.</summary>
    public required double[] Predictions { get; init; }
    /// <summary>Log residuals <c>log(prediction) - log(observed)</c>.</summary>
    public required double[] LogResiduals { get; init; }
    /// <summary>R^2 of the predictions on the raw scale.</summary>
    public required double RSquared { get; init; }
    /// <summary>R^2 on the log scale.</summary>
    public required double RSquaredLog { get; init; }
    /// <summary>Akaike information criterion from the Gaussian likelihood of log residuals: <c>n ln(RSS/n) + 2k</c>.</summary>
    public required double Aic { get; init; }
    /// <summary>Bayesian information criterion: <c>n ln(RSS/n) + k ln n</c>.</summary>
    public required double Bic { get; init; }
    /// <summary>Bootstrap uncertainty, when computed (<see cref="ScalingFit.Bootstrap"/>).</summary>
    public BootstrapSummary? Bootstrap { get; init; }
    /// <summary>Error on held-out points, when fitted by <see cref="ScalingFit.Extrapolate(ScalingLaw, FitData, string, FitOptions?)"/>.</summary>
    public HoldoutCheck? Holdout { get; init; }
    /// <summary>Law 3 only: the least-squares line in log-log space.</summary>
    public LogLogLine? Line { get; init; }

    internal PreparedData Prepared { get; init; } = null!;
    /// <summary>The options the fit used (the bootstrap refits with the same loss and optimiser).</summary>
    public FitOptions Options { get; init; } = new();

    internal static ScalingLawFit Create(ScalingLaw law, FitData data, PreparedData prepared, double[] theta, double objective, FitOptions options,
        int tried, int converged, int distinct, int iterations, TimeSpan elapsed)
    {
        int n = data.Count, k = theta.Length;
        var predictions = new double[n];
        var residuals = new double[n];
        for (int i = 0; i < n; i++)
        {
            double logPrediction = law.LogValue(theta, prepared.Rows.AsSpan(i * prepared.InputCount, prepared.InputCount),
                prepared.LogRows.AsSpan(i * prepared.InputCount, prepared.InputCount), []);
            predictions[i] = Math.Exp(logPrediction);
            residuals[i] = logPrediction - prepared.LogY[i];
        }
        double rss = residuals.Sum(r => r * r);
        double meanLog = prepared.LogY.Average(), meanY = data.Y.Average();
        double tssLog = prepared.LogY.Sum(v => (v - meanLog) * (v - meanLog));
        double tss = data.Y.Sum(v => (v - meanY) * (v - meanY));
        double rssRaw = data.Y.Zip(predictions).Sum(t => (t.First - t.Second) * (t.First - t.Second));
        double logLikelihoodTerm = n * Math.Log(Math.Max(rss, 1e-300) / n);
        var reported = law.ToReported(theta);
        return new ScalingLawFit
        {
            Law = law, Data = data, Theta = theta, Objective = objective, Loss = options.Loss, Delta = options.Delta,
            Estimates = law.Parameters.Select((p, i) => (p.Name, reported[i])).ToDictionary(t => t.Name, t => t.Item2),
            StartsTried = tried, StartsConverged = converged, DistinctOptima = distinct, Iterations = iterations, Elapsed = elapsed,
            Predictions = predictions, LogResiduals = residuals,
            RSquared = tss > 0 ? 1 - rssRaw / tss : double.NaN, RSquaredLog = tssLog > 0 ? 1 - rss / tssLog : double.NaN,
            Aic = logLikelihoodTerm + 2 * k, Bic = logLikelihoodTerm + k * Math.Log(n),
            Prepared = prepared, Options = options,
        };
    }

    /// <summary>The estimate of a parameter by reported name.</summary>
    public double this[string parameter] => Estimates.TryGetValue(parameter, out double v) ? v
        : throw new ArgumentException($"Law '{Law.Name}' has no parameter '{parameter}'; its parameters are {string.Join(", ", Law.ParameterNames)}.", nameof(parameter));

    /// <summary>Reported estimates in parameter order.</summary>
    public double[] Values => Law.ToReported(Theta);

    /// <summary>The prediction at one point (inputs in the law's order).</summary>
    public double Predict(params double[] x)
    {
        if (x.Length != Law.Inputs.Length) throw new ArgumentException($"Law '{Law.Name}' takes {Law.Inputs.Length} inputs ({string.Join(", ", Law.Inputs.Select(i => i.Name))}); got {x.Length}.", nameof(x));
        return Law.Value(Theta, x);
    }

    /// <summary>Predictions with a bootstrap percentile band (needs <see cref="Bootstrap"/>) at each point.</summary>
    public (double[] Prediction, double[] Lower, double[] Upper) PredictWithInterval(IReadOnlyList<double[]> points)
    {
        var boot = Bootstrap ?? throw new InvalidOperationException("This fit has no bootstrap; call ScalingFit.Bootstrap(fit) first (or #!scaling-fit --bootstrap N).");
        var prediction = new double[points.Count];
        var lower = new double[points.Count];
        var upper = new double[points.Count];
        // Bootstrap samples are reported values; a log-scale parameter that underflowed to 0 in a resample maps to
        // -Infinity (its term vanishes) instead of failing the whole band.
        var thetas = boot.Samples.Take(1000)
            .Select(s => Law.Parameters.Select((p, j) => p.LogScale ? Math.Log(s[j]) : s[j]).ToArray())
            .ToArray();
        var values = new double[thetas.Length];
        for (int i = 0; i < points.Count; i++)
        {
            prediction[i] = Predict(points[i]);
            for (int b = 0; b < thetas.Length; b++) values[b] = Law.Value(thetas[b], points[i]);
            Array.Sort(values);
            lower[i] = Stats.Percentile(values, (1 - boot.Level) / 2);
            upper[i] = Stats.Percentile(values, 1 - (1 - boot.Level) / 2);
        }
        return (prediction, lower, upper);
    }

    /// <summary>The parameter table as CSV: name, estimate, standard error, CI bounds.</summary>
    public string ToCsv()
    {
        var sb = new StringBuilder("parameter,estimate,standard_error,ci_lower,ci_upper\n");
        int j = 0;
        foreach (var p in Law.Parameters)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{p.Name},{Format(Estimates[p.Name])},{Format(Bootstrap?.StandardErrors[j])},{Format(Bootstrap?.Lower[j])},{Format(Bootstrap?.Upper[j])}\n");
            j++;
        }
        return sb.ToString();
    }

    /// <summary>The data points with predictions and log residuals as CSV.</summary>
    public string PointsToCsv()
    {
        var sb = new StringBuilder(string.Join(",", Data.XNames.Append(Data.YName).Append("prediction").Append("log_residual")) + "\n");
        for (int i = 0; i < Data.Count; i++)
            sb.AppendJoin(",", Data.X.Select(c => Format(c[i])).Append(Format(Data.Y[i])).Append(Format(Predictions[i])).Append(Format(LogResiduals[i]))).Append('\n');
        return sb.ToString();
    }

    private static string Format(double? v) => v is double d ? d.ToString("R", CultureInfo.InvariantCulture) : "";

    /// <inheritdoc />
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("law", Law.Name);
            w.WriteString("formula", Law.Formula);
            w.WriteString("reference", Law.Reference);
            w.WriteStartObject("parameters");
            int j = 0;
            foreach (var p in Law.Parameters)
            {
                w.WriteStartObject(p.Name);
                Json.Number(w, "estimate", Estimates[p.Name]);
                if (Bootstrap is { } b)
                {
                    Json.Number(w, "standardError", b.StandardErrors[j]);
                    Json.Number(w, "ciLower", b.Lower[j]);
                    Json.Number(w, "ciUpper", b.Upper[j]);
                }
                w.WriteEndObject();
                j++;
            }
            w.WriteEndObject();
            w.WriteStartArray("inputs");
            foreach (var name in Data.XNames) w.WriteStringValue(name);
            w.WriteEndArray();
            w.WriteString("output", Data.YName);
            w.WriteNumber("points", Data.Count);
            w.WriteString("loss", Loss.ToString().ToLowerInvariant());
            Json.Number(w, "delta", Delta);
            Json.Number(w, "objective", Objective);
            w.WriteNumber("startsTried", StartsTried);
            w.WriteNumber("startsConverged", StartsConverged);
            w.WriteNumber("distinctOptima", DistinctOptima);
            Json.Number(w, "rSquared", RSquared);
            Json.Number(w, "rSquaredLog", RSquaredLog);
            Json.Number(w, "aic", Aic);
            Json.Number(w, "bic", Bic);
            Json.Number(w, "seconds", Elapsed.TotalSeconds);
            if (Bootstrap is { } boot)
            {
                w.WritePropertyName("bootstrap");
                w.WriteRawValue(boot.ToJson());
            }
            if (Holdout is { } holdout)
            {
                w.WritePropertyName("holdout");
                w.WriteRawValue(holdout.ToJson());
            }
            if (Line is { } line)
            {
                w.WriteStartObject("logLogLine");
                Json.Number(w, "A", line.A);
                Json.Number(w, "alpha", line.Alpha);
                Json.Number(w, "alphaStandardError", line.AlphaStandardError);
                Json.Number(w, "rSquaredLog", line.RSquaredLog);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <inheritdoc />
    public string ToText()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{Law.Title}: {Law.Formula}   ({Law.Reference})");
        sb.AppendLine($"{Data.Count} points, {Loss} loss (delta {Delta:G3}), objective {Objective:G10}; {StartsConverged}/{StartsTried} starts converged to {DistinctOptima} distinct optima; R^2 {RSquared:F4} (log {RSquaredLog:F4}), AIC {Aic:F2}, BIC {Bic:F2}");
        sb.AppendLine(HtmlText.TextTable(TableHeader(), TableRows()));
        if (Line is { } line) sb.AppendLine($"log-log line: A = {line.A:G6}, alpha = {line.Alpha:G6} +- {line.AlphaStandardError:G3}, R^2 (log) {line.RSquaredLog:F4}");
        if (Holdout is { } h) sb.AppendLine(h.ToText());
        return sb.ToString().TrimEnd();
    }

    private string[] TableHeader() => Bootstrap is { } b
        ? ["parameter", "estimate", "std. error", $"{b.Level:P0} CI low", $"{b.Level:P0} CI high"]
        : ["parameter", "estimate"];

    private List<IReadOnlyList<string>> TableRows() => Law.Parameters.Select((p, j) => (IReadOnlyList<string>)(Bootstrap is { } b
        ? [p.Name, HtmlText.Number(Estimates[p.Name], 6), HtmlText.Number(b.StandardErrors[j], 3), HtmlText.Number(b.Lower[j], 5), HtmlText.Number(b.Upper[j], 5)]
        : [p.Name, HtmlText.Number(Estimates[p.Name], 6)])).ToList();

    /// <inheritdoc />
    public string ToHtml() => HtmlCache.Get(this, RenderHtml);

    private string RenderHtml()
    {
        var sb = new StringBuilder(HtmlText.Style);
        sb.Append("<div class=\"si-fit\"><h4>").Append(HtmlText.Encode(Law.Title)).Append(": <code>").Append(HtmlText.Encode(Law.Formula)).Append("</code></h4>");
        sb.Append("<p>").Append(HtmlText.Encode($"{Law.Reference}. {Data.Count} points; {Loss} loss on log values (delta {Delta:G3}), summed; objective {Objective:G10}. " +
            $"{StartsConverged} of {StartsTried} starts converged, to {DistinctOptima} distinct optima. R² {RSquared:F4} (log scale {RSquaredLog:F4}); AIC {Aic:F2}, BIC {Bic:F2}."));
        if (Bootstrap is { } b) sb.Append(HtmlText.Encode($" Bootstrap: {b.Converged} of {b.Resamples} resamples converged (seed {b.Seed})."));
        sb.Append("</p>");
        sb.Append(HtmlText.Table(TableHeader(), TableRows(), "Parameters"));
        if (Line is { } line)
            sb.Append("<p>").Append(HtmlText.Encode($"Log-log least-squares line: A = {line.A:G6}, alpha = {line.Alpha:G6} ± {line.AlphaStandardError:G3}, R² (log) {line.RSquaredLog:F4}.")).Append("</p>");
        foreach (var chart in FitCharts.For(this)) sb.Append(chart);
        if (Holdout is { } h) sb.Append(h.ToHtml());
        return sb.Append("</div>").ToString();
    }
}

/// <summary>Bootstrap uncertainty of a fit: standard errors, percentile intervals and covariance of the reported parameters.</summary>
public sealed record BootstrapSummary : IRichResult
{
    /// <summary>Parameter names.</summary>
    public required IReadOnlyList<string> Names { get; init; }
    /// <summary>Resamples drawn.</summary>
    public required int Resamples { get; init; }
    /// <summary>Resamples whose refit converged (the ones used).</summary>
    public required int Converged { get; init; }
    /// <summary>Seed.</summary>
    public required int Seed { get; init; }
    /// <summary>Confidence level of the intervals.</summary>
    public required double Level { get; init; }
    /// <summary>Reported parameter values of each converged resample.</summary>
    public required double[][] Samples { get; init; }
    /// <summary>Standard deviation of each parameter over the resamples.</summary>
    public required double[] StandardErrors { get; init; }
    /// <summary>Lower percentile bound of each parameter.</summary>
    public required double[] Lower { get; init; }
    /// <summary>Upper percentile bound of each parameter.</summary>
    public required double[] Upper { get; init; }
    /// <summary>Covariance matrix of the reported parameters.</summary>
    public required double[][] Covariance { get; init; }
    /// <summary>Wall time.</summary>
    public required TimeSpan Elapsed { get; init; }

    internal static BootstrapSummary Create(ScalingLaw law, double[][] samples, int resamples, int seed, double level, TimeSpan elapsed)
    {
        int p = law.Parameters.Length;
        var mean = Enumerable.Range(0, p).Select(j => samples.Average(s => s[j])).ToArray();
        var covariance = new double[p][];
        for (int a = 0; a < p; a++)
        {
            covariance[a] = new double[p];
            for (int b = 0; b < p; b++) covariance[a][b] = samples.Sum(s => (s[a] - mean[a]) * (s[b] - mean[b])) / (samples.Length - 1);
        }
        var lower = new double[p];
        var upper = new double[p];
        for (int j = 0; j < p; j++)
        {
            var column = samples.Select(s => s[j]).Order().ToArray();
            lower[j] = Stats.Percentile(column, (1 - level) / 2);
            upper[j] = Stats.Percentile(column, 1 - (1 - level) / 2);
        }
        return new BootstrapSummary
        {
            Names = [.. law.ParameterNames], Resamples = resamples, Converged = samples.Length, Seed = seed, Level = level, Samples = samples,
            StandardErrors = Enumerable.Range(0, p).Select(j => Math.Sqrt(covariance[j][j])).ToArray(), Lower = lower, Upper = upper,
            Covariance = covariance, Elapsed = elapsed,
        };
    }

    /// <summary>The interval of a parameter by name.</summary>
    public (double Lower, double Upper) Interval(string name)
    {
        int j = IndexOf(name);
        return (Lower[j], Upper[j]);
    }

    /// <summary>The standard error of a parameter by name.</summary>
    public double StandardError(string name) => StandardErrors[IndexOf(name)];

    private int IndexOf(string name)
    {
        int j = Names.ToList().FindIndex(n => string.Equals(n, name, StringComparison.Ordinal));
        return j >= 0 ? j : throw new ArgumentException($"No parameter '{name}'; parameters are {string.Join(", ", Names)}.", nameof(name));
    }

    /// <inheritdoc />
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("resamples", Resamples);
            w.WriteNumber("converged", Converged);
            w.WriteNumber("seed", Seed);
            Json.Number(w, "level", Level);
            w.WriteStartObject("parameters");
            for (int j = 0; j < Names.Count; j++)
            {
                w.WriteStartObject(Names[j]);
                Json.Number(w, "standardError", StandardErrors[j]);
                Json.Number(w, "ciLower", Lower[j]);
                Json.Number(w, "ciUpper", Upper[j]);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteStartArray("covariance");
            foreach (var row in Covariance)
            {
                w.WriteStartArray();
                foreach (var v in row) Json.NumberValue(w, v);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            Json.Number(w, "seconds", Elapsed.TotalSeconds);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>The resampled parameter values as CSV, one row per converged resample.</summary>
    public string ToCsv()
    {
        var sb = new StringBuilder(string.Join(",", Names) + "\n");
        foreach (var sample in Samples) sb.AppendJoin(",", sample.Select(v => v.ToString("R", CultureInfo.InvariantCulture))).Append('\n');
        return sb.ToString();
    }

    private List<IReadOnlyList<string>> Rows() => Names.Select((n, j) => (IReadOnlyList<string>)
        [n, HtmlText.Number(StandardErrors[j], 3), HtmlText.Number(Lower[j], 5), HtmlText.Number(Upper[j], 5)]).ToList();

    private string[] Header => ["parameter", "std. error", $"{Level:P0} CI low", $"{Level:P0} CI high"];

    /// <inheritdoc />
    public string ToText() => $"Bootstrap: {Converged}/{Resamples} resamples converged (seed {Seed}, {Elapsed.TotalSeconds:F2} s)\n" + HtmlText.TextTable(Header, Rows());

    /// <inheritdoc />
    public string ToHtml() => HtmlText.Style + HtmlText.Table(Header, Rows(), $"Bootstrap: {Converged} of {Resamples} resamples converged (seed {Seed})");
}

/// <summary>Extrapolation check: how well a fit on some points predicts the held-out rest.</summary>
public sealed record HoldoutCheck : IRichResult
{
    /// <summary>How the training points were chosen (a filter such as <c>N&lt;=1e9</c>).</summary>
    public required string Filter { get; init; }
    /// <summary>Training points.</summary>
    public required int TrainingCount { get; init; }
    /// <summary>The held-out points.</summary>
    public required FitData HeldOut { get; init; }
    /// <summary>Predictions at the held-out points.</summary>
    public required double[] Predictions { get; init; }
    /// <summary>Relative errors <c>(prediction - observed) / observed</c>.</summary>
    public required double[] RelativeErrors { get; init; }
    /// <summary>Mean absolute relative error.</summary>
    public required double MeanAbsoluteRelativeError { get; init; }
    /// <summary>Largest absolute relative error.</summary>
    public required double MaxAbsoluteRelativeError { get; init; }
    /// <summary>Root mean square of log residuals.</summary>
    public required double RmseLog { get; init; }

    internal static HoldoutCheck Create(ScalingLawFit fit, FitData heldOut, string filter)
    {
        var predictions = Enumerable.Range(0, heldOut.Count).Select(i => fit.Predict(heldOut.X.Select(c => c[i]).ToArray())).ToArray();
        var relative = predictions.Select((p, i) => (p - heldOut.Y[i]) / heldOut.Y[i]).ToArray();
        return new HoldoutCheck
        {
            Filter = filter, TrainingCount = fit.Data.Count, HeldOut = heldOut, Predictions = predictions, RelativeErrors = relative,
            MeanAbsoluteRelativeError = relative.Average(Math.Abs), MaxAbsoluteRelativeError = relative.Max(Math.Abs),
            RmseLog = Math.Sqrt(predictions.Select((p, i) => Math.Pow(Math.Log(p / heldOut.Y[i]), 2)).Average()),
        };
    }

    private string Summary => $"Extrapolation: fitted on {TrainingCount} points ({Filter}), held out {HeldOut.Count}: mean |relative error| {MeanAbsoluteRelativeError:P2}, max {MaxAbsoluteRelativeError:P2}, RMSE(log) {RmseLog:G4}";

    /// <inheritdoc />
    public string ToText() => Summary;

    /// <inheritdoc />
    public string ToHtml() => HtmlCache.Get(this, () => HtmlText.Style + "<p>" + HtmlText.Encode(Summary) + "</p>" + FitCharts.Holdout(this));

    /// <inheritdoc />
    public string ToJson() => new JsonObject
    {
        ["filter"] = Filter, ["trainingPoints"] = TrainingCount, ["heldOutPoints"] = HeldOut.Count,
        ["meanAbsoluteRelativeError"] = MeanAbsoluteRelativeError, ["maxAbsoluteRelativeError"] = MaxAbsoluteRelativeError, ["rmseLog"] = RmseLog,
        ["observed"] = Json.Array(HeldOut.Y), ["predictions"] = Json.Array(Predictions),
    }.ToJsonString(Json.Options);
}

/// <summary>AIC/BIC comparison of several laws fitted to the same data.</summary>
/// <param name="Fits">The fits.</param>
public sealed record LawComparison(IReadOnlyList<ScalingLawFit> Fits) : IRichResult
{
    private List<IReadOnlyList<string>> Rows()
    {
        double bestAic = Fits.Min(f => f.Aic);
        return Fits.OrderBy(f => f.Aic).Select(f => (IReadOnlyList<string>)
            [f.Law.Name, f.Law.Parameters.Length.ToString(CultureInfo.InvariantCulture), HtmlText.Number(f.RSquared, 5), HtmlText.Number(f.RSquaredLog, 5),
             HtmlText.Number(f.Aic, 6), HtmlText.Number(f.Aic - bestAic, 4), HtmlText.Number(f.Bic, 6)]).ToList();
    }

    private static readonly string[] Header = ["law", "parameters", "R²", "R² (log)", "AIC", "ΔAIC", "BIC"];

    /// <summary>The law with the lowest AIC.</summary>
    public ScalingLawFit Best => Fits.MinBy(f => f.Aic)!;

    /// <inheritdoc />
    public string ToText() => HtmlText.TextTable(Header, Rows());

    /// <inheritdoc />
    public string ToHtml() => HtmlText.Style + HtmlText.Table(Header, Rows(), "Law comparison (lower AIC/BIC is better)");

    /// <inheritdoc />
    public string ToJson() => new JsonArray(Fits.Select(f => (JsonNode?)new JsonObject
    {
        ["law"] = f.Law.Name, ["parameters"] = f.Law.Parameters.Length, ["rSquared"] = Json.Finite(f.RSquared), ["rSquaredLog"] = Json.Finite(f.RSquaredLog),
        ["aic"] = f.Aic, ["bic"] = f.Bic,
    }).ToArray()).ToJsonString(Json.Options);
}

/// <summary>
/// Charts get fresh element ids on each render, so a result renders its HTML once and returns the same text after
/// (keyed by instance: a copy made with <c>with</c> renders anew).
/// </summary>
internal static class HtmlCache
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, string> Rendered = new();

    public static string Get(object owner, Func<string> render) => Rendered.GetValue(owner, _ => render());
}

internal static class Stats
{
    /// <summary>Linear-interpolated percentile of sorted values, q in [0, 1].</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double q)
    {
        if (sorted.Count == 0) return double.NaN;
        double position = q * (sorted.Count - 1);
        int low = (int)Math.Floor(position), high = Math.Min(low + 1, sorted.Count - 1);
        return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
    }
}

internal static class Json
{
    public static JsonSerializerOptions Options { get; } = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static double? Finite(double v) => double.IsFinite(v) ? v : null;

    /// <summary>Numbers as a JSON array (non-finite ones written as the options say).</summary>
    public static JsonArray Array(IEnumerable<double> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    public static void Number(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value)) w.WriteNumber(name, value);
        else w.WriteNull(name);
    }

    public static void NumberValue(Utf8JsonWriter w, double value)
    {
        if (double.IsFinite(value)) w.WriteNumberValue(value);
        else w.WriteNullValue();
    }
}
