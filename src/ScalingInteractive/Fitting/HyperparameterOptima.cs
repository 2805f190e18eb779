namespace ScalingInteractive.Fitting;

/// <summary>One training run of a hyperparameter grid: model size, tokens, learning rate, batch size and final loss.</summary>
/// <param name="N">Parameters.</param>
/// <param name="D">Training tokens.</param>
/// <param name="LearningRate">Peak learning rate.</param>
/// <param name="BatchSize">Batch size (sequences or tokens, consistently).</param>
/// <param name="Loss">Final loss.</param>
public sealed record HyperparameterRun(double N, double D, double LearningRate, double BatchSize, double Loss);

/// <summary>
/// Prepares law 8 (Step Law, Li et al. 2025) from a grid of runs: for each (N, D) the best learning rate and batch
/// size (lowest loss, refined between grid points by the vertex of a parabola in log space through the best run and
/// its two neighbours, so the optimum is not quantised to the grid), then <c>eta_opt = c N^a D^b</c> and <c>B_opt = d D^e</c> fitted to those optima.
/// </summary>
public static class HyperparameterOptima
{
    /// <summary>The optimum of each (N, D) cell: data for <see cref="ScalingLaws.StepLearningRate"/> (N, D to eta) and <see cref="ScalingLaws.StepBatchSize"/> (D to B).</summary>
    public static (FitData LearningRate, FitData BatchSize) Optima(IEnumerable<HyperparameterRun> runs)
    {
        var all = runs.ToList();
        if (all.Count == 0) throw new ArgumentException("No runs given; give a grid of (N, D, learning rate, batch size, loss) runs.", nameof(runs));
        var bad = all.FirstOrDefault(r => !(double.IsFinite(r.Loss) && r.N > 0 && r.D > 0 && r.LearningRate > 0 && r.BatchSize > 0));
        if (bad is not null) throw new ArgumentException($"Run {bad} has a non-positive size, learning rate or batch size, or a non-finite loss; drop diverged runs first.", nameof(runs));
        var best = all.GroupBy(r => (r.N, r.D)).Select(Refine).OrderBy(r => r.N).ThenBy(r => r.D).ToArray();
        var lr = new FitData(["N", "D"], [best.Select(r => r.N).ToArray(), best.Select(r => r.D).ToArray()], "eta_opt", best.Select(r => r.LearningRate).ToArray());
        var batch = FitData.FromArrays(best.Select(r => r.D).ToArray(), best.Select(r => r.BatchSize).ToArray(), "D", "B_opt");
        return (lr, batch);
    }

    private static HyperparameterRun Refine(IEnumerable<HyperparameterRun> cell)
    {
        var runs = cell.ToList();
        var best = runs.MinBy(r => r.Loss)!;
        double lr = Vertex(runs.Where(r => r.BatchSize == best.BatchSize).Select(r => (r.LearningRate, r.Loss)), best.LearningRate);
        double batch = Vertex(runs.Where(r => r.LearningRate == best.LearningRate).Select(r => (r.BatchSize, r.Loss)), best.BatchSize);
        return best with { LearningRate = lr, BatchSize = batch };
    }

    /// <summary>The vertex of the parabola in log x through the best point and its neighbours (the best point itself at an edge of the grid).</summary>
    private static double Vertex(IEnumerable<(double X, double Loss)> line, double bestX)
    {
        var sorted = line.OrderBy(p => p.X).ToArray();
        int i = Array.FindIndex(sorted, p => p.X == bestX);
        if (i <= 0 || i >= sorted.Length - 1) return bestX;
        double x0 = Math.Log(sorted[i - 1].X), x1 = Math.Log(sorted[i].X), x2 = Math.Log(sorted[i + 1].X);
        double f0 = sorted[i - 1].Loss, f1 = sorted[i].Loss, f2 = sorted[i + 1].Loss;
        double denominator = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0);
        if (denominator == 0) return bestX;
        double vertex = x1 - 0.5 * ((x1 - x0) * (x1 - x0) * (f1 - f2) - (x1 - x2) * (x1 - x2) * (f1 - f0)) / denominator;
        return Math.Exp(Math.Clamp(vertex, x0, x2));
    }

    /// <summary>Fits both Step Law parts to the optima of a grid of runs.</summary>
    public static (ScalingLawFit LearningRate, ScalingLawFit BatchSize) Fit(IEnumerable<HyperparameterRun> runs, FitOptions? options = null)
    {
        var (lr, batch) = Optima(runs);
        return (ScalingFit.Fit(ScalingLaws.StepLearningRate, lr, options), ScalingFit.Fit(ScalingLaws.StepBatchSize, batch, options));
    }
}
