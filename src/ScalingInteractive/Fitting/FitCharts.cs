using ScalingInteractive.Display;

namespace ScalingInteractive.Fitting;

/// <summary>Plotly charts of fits: data with fitted curves and bootstrap bands on log axes, residuals, held-out predictions.</summary>
internal static class FitCharts
{
    private const int CurvePoints = 40;

    public static IEnumerable<string> For(ScalingLawFit fit)
    {
        yield return DataAndCurves(fit);
        yield return Residuals(fit);
        if (fit.Law is ChinchillaLaw)
        {
            var budgets = ComputeOptimal.LogSpaced(6 * fit.Data.X[0].Min() * fit.Data.X[1].Min(), 6 * fit.Data.X[0].Max() * fit.Data.X[1].Max() * 100, 25);
            yield return ComputeOptimal.Allocate(fit, budgets).FrontierChart();
        }
    }

    private static string DataAndCurves(ScalingLawFit fit)
    {
        var data = fit.Data;
        var series = new List<Series>();
        string yTitle = data.YName;
        if (data.XNames.Length == 1)
        {
            var xs = ComputeOptimal.LogSpaced(data.X[0].Min(), data.X[0].Max(), CurvePoints);
            series.Add(new Series("data", data.X[0], data.Y, Markers: true));
            series.Add(Curve(fit, "fit", xs, x => [x]));
            return Charts.Lines(new ChartOptions($"{fit.Law.Name}: data and fit", data.XNames[0], yTitle, LogX: true, LogY: true), series).ToHtml();
        }
        // Two inputs: one curve per value of the first input (grouped into at most 8 bins), against the second input.
        int xAxis = fit.Law is LrAnnealingLaw ? 0 : 1, group = 1 - xAxis;
        if (data.XNames.Length == 2)
        {
            var groups = Enumerable.Range(0, data.Count).GroupBy(i => Bin(data.X[group], data.X[group][i])).OrderBy(g => g.Key).ToList();
            foreach (var g in groups.Take(8))
            {
                var idx = g.ToArray();
                double representative = Median(idx.Select(i => data.X[group][i]));
                string label = $"{data.XNames[group]}≈{HtmlText.Number(representative, 3)}";
                series.Add(new Series(label, idx.Select(i => data.X[xAxis][i]).ToArray(), idx.Select(i => data.Y[i]).ToArray(), Markers: true));
                if (fit.Law is LrAnnealingLaw)
                {
                    var order = idx.OrderBy(i => data.X[0][i]).ToArray();
                    series.Add(new Series(label + " fit", order.Select(i => data.X[0][i]).ToArray(), order.Select(i => fit.Predictions[i]).ToArray()));
                }
                else
                {
                    var xs = ComputeOptimal.LogSpaced(idx.Min(i => data.X[xAxis][i]), idx.Max(i => data.X[xAxis][i]), CurvePoints);
                    series.Add(Curve(fit, label + " fit", xs, x => xAxis == 1 ? [representative, x] : [x, representative]));
                }
            }
            return Charts.Lines(new ChartOptions($"{fit.Law.Name}: data and fit", data.XNames[xAxis], yTitle, LogX: true, LogY: true), series).ToHtml();
        }
        series.Add(new Series("observed vs predicted", fit.Predictions, data.Y, Markers: true));
        series.Add(new Series("y = x", [data.Y.Min(), data.Y.Max()], [data.Y.Min(), data.Y.Max()]));
        return Charts.Lines(new ChartOptions($"{fit.Law.Name}: observed vs predicted", "predicted", "observed", LogX: true, LogY: true), series).ToHtml();
    }

    private static Series Curve(ScalingLawFit fit, string name, double[] xs, Func<double, double[]> point)
    {
        var points = xs.Select(point).ToList();
        if (fit.Bootstrap is null) return new Series(name, xs, points.Select(p => fit.Predict(p)).ToArray());
        var (prediction, lower, upper) = fit.PredictWithInterval(points);
        return new Series(name, xs, prediction, Lower: lower, Upper: upper);
    }

    private static string Residuals(ScalingLawFit fit) =>
        Charts.Lines(new ChartOptions($"{fit.Law.Name}: log residuals", "prediction", "log(prediction / observed)", LogX: true),
            [new Series("residual", fit.Predictions, fit.LogResiduals, Markers: true), new Series("zero", [fit.Predictions.Min(), fit.Predictions.Max()], [0, 0])]).ToHtml();

    public static string Holdout(HoldoutCheck check)
    {
        var y = check.HeldOut.Y;
        double lo = Math.Min(y.Min(), check.Predictions.Min()), hi = Math.Max(y.Max(), check.Predictions.Max());
        return Charts.Lines(new ChartOptions("Held-out points: predicted vs observed", "observed", "predicted", LogX: true, LogY: true),
            [new Series("held out", y, check.Predictions, Markers: true), new Series("y = x", [lo, hi], [lo, hi])]).ToHtml();
    }

    private static double Bin(double[] column, double value)
    {
        var distinct = column.Distinct().Order().ToArray();
        if (distinct.Length <= 8) return value;
        double lo = Math.Log(distinct[0]), hi = Math.Log(distinct[^1]);
        return Math.Floor((Math.Log(value) - lo) / (hi - lo + 1e-12) * 6);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }
}
