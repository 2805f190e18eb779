using ScalingInteractive.Fitting;

namespace ScalingInteractive.Tests.Fitting;

public class EngineTests
{
    private static readonly FitOptions Small = new() { MaxDegreeOfParallelism = 2 };

    /// <summary>Noise-free data from known parameters for each law, on inputs that identify every parameter.</summary>
    public static TheoryData<string> IdentifiableLaws() =>
        ["chinchilla", "saturating-power", "power", "bleu-log", "kaplan", "overtraining", "downstream-error", "lr-annealing", "step-lr", "step-batch", "custom"];

    [Theory]
    [MemberData(nameof(IdentifiableLaws))]
    public void Noise_free_data_recovers_the_parameters_to_1e_6(string name)
    {
        var (law, truth, data, starts) = NoiseFree(name);
        var fit = ScalingFit.Fit(law, data, Small with { Starts = starts });
        var values = fit.Values;
        for (int j = 0; j < truth.Length; j++)
            Assert.True(Math.Abs(values[j] - truth[j]) <= 1e-6 * Math.Abs(truth[j]),
                $"{name} {law.Parameters[j].Name}: {values[j]:R} vs {truth[j]:R} (objective {fit.Objective:E3})");
        Assert.True(fit.RSquaredLog > 1 - 1e-12);
    }

    internal static (ScalingLaw Law, double[] Truth, FitData Data, double[][]? Starts) NoiseFree(string name)
    {
        double[] grid1 = ComputeOptimal.LogSpaced(1e3, 1e7, 12);
        switch (name)
        {
            case "chinchilla":
            {
                var truth = new[] { 1.69, 406.4, 410.7, 0.34, 0.28 };
                var data = LawTests.Law1Data(0, 1);
                // A slice of the paper's grid keeps the test fast; the full grid is exercised by the bench.
                return (ScalingLaws.Chinchilla, truth, data, ScalingLaws.Chinchilla.StartGrid().Where((_, i) => i % 150 == 0).ToArray());
            }
            case "kaplan":
            {
                var truth = new[] { 8.8e13, 5.4e13, 0.076, 0.095 };
                return (ScalingLaws.Kaplan, truth, Grid2(ScalingLaws.Kaplan, truth, ComputeOptimal.LogSpaced(1e6, 1e10, 6), ComputeOptimal.LogSpaced(1e7, 1e11, 6)), null);
            }
            case "overtraining":
            {
                var truth = new[] { 1.8, 40, 30, 0.2, 0.05 };
                return (ScalingLaws.OverTraining, truth, Grid2(ScalingLaws.OverTraining, truth, ComputeOptimal.LogSpaced(1e17, 1e21, 6), ComputeOptimal.LogSpaced(5, 640, 6)), null);
            }
            case "step-lr":
            {
                var truth = new[] { 1.79, -0.713, 0.307 };
                return (ScalingLaws.StepLearningRate, truth, Grid2(ScalingLaws.StepLearningRate, truth, ComputeOptimal.LogSpaced(1e7, 1e9, 4), ComputeOptimal.LogSpaced(1e9, 1e11, 4)), null);
            }
            case "lr-annealing":
            {
                var truth = new[] { 2.0, 1.5, 0.5, 0.4 };
                var s1 = new List<double>();
                var s2 = new List<double>();
                foreach (var schedule in new[] { LearningRateSchedule.Constant(1e-3, 2000, 100), LearningRateSchedule.Cosine(1e-3, 2000, 100) })
                {
                    var areas = schedule.Areas();
                    for (int s = 99; s < 2000; s += 50)
                    {
                        s1.Add(areas.S1[s]);
                        s2.Add(areas.S2[s]);
                    }
                }
                var y = s1.Select((v, i) => ScalingLaws.LrAnnealing.Evaluate(truth, v, s2[i])).ToArray();
                return (ScalingLaws.LrAnnealing, truth, new FitData(["S1", "S2"], [s1.ToArray(), s2.ToArray()], "loss", y), null);
            }
            case "downstream-error":
            {
                var truth = new[] { 0.9, 3, 0.8 };
                var losses = Enumerable.Range(0, 12).Select(i => 2.0 + 0.25 * i).ToArray();
                return (ScalingLaws.DownstreamError, truth, FitData.FromArrays(losses, losses.Select(l => ScalingLaws.DownstreamError.Evaluate(truth, l)).ToArray(), "L", "err"), null);
            }
            case "bleu-log":
            {
                var truth = new[] { 0.01, 0.3, 1.2 };
                var tokens = ComputeOptimal.LogSpaced(1e8, 1e11, 12);
                return (ScalingLaws.BleuLog, truth, FitData.FromArrays(tokens, tokens.Select(d => ScalingLaws.BleuLog.Evaluate(truth, d)).ToArray(), "D", "bleu"), null);
            }
            case "custom":
            {
                var law = LawTests.Custom(withGradient: false);
                var truth = new[] { 2.0, 5.0, 0.7 };
                var x = Enumerable.Range(0, 12).Select(i => 0.5 * i).ToArray();
                return (law, truth, FitData.FromArrays(x, x.Select(v => law.Evaluate(truth, v)).ToArray()), null);
            }
            default:
            {
                var law = ScalingLaws.Get(name);
                double[] truth = name switch { "saturating-power" => [1.5, 30, 0.3], "power" => [2e3, -0.25], _ => [0.58, 0.571] };
                var x = name == "step-batch" ? ComputeOptimal.LogSpaced(1e9, 1e12, 12) : grid1;
                return (law, truth, FitData.FromArrays(x, x.Select(v => law.Evaluate(truth, v)).ToArray()), null);
            }
        }
    }

    private static FitData Grid2(ScalingLaw law, double[] truth, double[] x1, double[] x2)
    {
        var a = new List<double>();
        var b = new List<double>();
        foreach (var u in x1)
            foreach (var v in x2)
            {
                a.Add(u);
                b.Add(v);
            }
        return new FitData([law.Inputs[0].Name, law.Inputs[1].Name], [a.ToArray(), b.ToArray()], "y", a.Select((u, i) => law.Evaluate(truth, u, b[i])).ToArray());
    }

    [Fact]
    public void Fit_reports_starts_converged_and_distinct_optima()
    {
        var data = LawTests.Law1Data(0.02, 5);
        var starts = ScalingLaws.Chinchilla.StartGrid().Where((_, i) => i % 45 == 0).ToArray();
        var fit = ScalingFit.Fit(ScalingLaws.Chinchilla, data, Small with { Starts = starts });
        Assert.Equal(100, fit.StartsTried);
        Assert.InRange(fit.StartsConverged, 1, 100);
        Assert.InRange(fit.DistinctOptima, 1, fit.StartsConverged);
        // The best optimum is at least as good as a fit from the truth.
        var fromTruth = ScalingFit.Fit(ScalingLaws.Chinchilla, data, Small with { Starts = [ScalingLaws.Chinchilla.ToInternal([1.69, 406.4, 410.7, 0.34, 0.28])] });
        Assert.True(fit.Objective <= fromTruth.Objective * (1 + 1e-9));
    }

    [Fact]
    public void Seeded_bootstrap_is_deterministic_regardless_of_threads()
    {
        var data = LawTests.Law1Data(0.02, 6);
        var starts = ScalingLaws.Chinchilla.StartGrid().Where((_, i) => i % 300 == 0).ToArray();
        var fit = ScalingFit.Fit(ScalingLaws.Chinchilla, data, Small with { Starts = starts });
        var a = ScalingFit.Bootstrap(fit, new BootstrapOptions { Resamples = 60, Seed = 7 });
        var b = ScalingFit.Bootstrap(fit with { Options = fit.Options with { MaxDegreeOfParallelism = 1 } }, new BootstrapOptions { Resamples = 60, Seed = 7 });
        var c = ScalingFit.Bootstrap(fit, new BootstrapOptions { Resamples = 60, Seed = 8 });
        Assert.Equal(a.Bootstrap!.StandardErrors, b.Bootstrap!.StandardErrors);
        Assert.Equal(a.Bootstrap.Lower, b.Bootstrap.Lower);
        Assert.NotEqual(a.Bootstrap.StandardErrors, c.Bootstrap!.StandardErrors);
        Assert.Equal(5, a.Bootstrap.Covariance.Length);
        Assert.Equal(a.Bootstrap.StandardErrors[3] * a.Bootstrap.StandardErrors[3], a.Bootstrap.Covariance[3][3], 1e-12);
    }

    [Fact]
    public void Bootstrap_intervals_cover_the_truth_in_a_small_seeded_simulation()
    {
        // Saturating power law with 5 % log-normal noise; 30 data sets, 200 resamples each.
        double[] truth = [1.5, 30, 0.3];
        var x = ComputeOptimal.LogSpaced(1e3, 1e7, 25);
        int covered = 0, simulations = 30;
        for (int s = 0; s < simulations; s++)
        {
            var random = new Random(100 + s);
            var y = x.Select(v => ScalingLaws.SaturatingPower.Evaluate(truth, v) * Math.Exp(0.05 * LawTests.Gaussian(random))).ToArray();
            var fit = ScalingFit.Fit(ScalingLaws.SaturatingPower, FitData.FromArrays(x, y), Small with { Loss = LossKind.Squared });
            var boot = ScalingFit.Bootstrap(fit, new BootstrapOptions { Resamples = 200, Seed = s });
            var (lo, hi) = boot.Bootstrap!.Interval("alpha");
            if (lo <= truth[2] && truth[2] <= hi) covered++;
        }
        // Nominal 95 %: 28.5 of 30; a loose bound for percentile intervals on 25 points.
        Assert.InRange(covered, 23, 30);
    }

    [Fact]
    public void Extrapolation_check_reports_error_on_held_out_points()
    {
        var data = LawTests.Law1Data(0, 2);
        var starts = ScalingLaws.Chinchilla.StartGrid().Where((_, i) => i % 150 == 0).ToArray();
        var fit = ScalingFit.Extrapolate(ScalingLaws.Chinchilla, data, "N<=2e9", Small with { Starts = starts });
        Assert.NotNull(fit.Holdout);
        int small = data.X[0].Count(n => n <= 2e9);
        Assert.Equal(small, fit.Data.Count);
        Assert.Equal(data.Count - small, fit.Holdout!.HeldOut.Count);
        Assert.True(fit.Holdout.MaxAbsoluteRelativeError < 1e-6, $"noise-free extrapolation error {fit.Holdout.MaxAbsoluteRelativeError}");
        // With noise and a predicate, the check still runs and reports a finite error.
        var noisy = ScalingFit.Extrapolate(ScalingLaws.Chinchilla, LawTests.Law1Data(0.03, 3), p => p["D"] < 1e11, Small with { Starts = starts });
        Assert.InRange(noisy.Holdout!.MeanAbsoluteRelativeError, 0, 0.2);
    }

    [Fact]
    public void Compute_optimal_allocation_matches_brute_force_and_inverts()
    {
        double e = 1.69, a = 406.4, b = 410.7, alpha = 0.34, beta = 0.28, c = 5.76e23;
        var (n, d) = ComputeOptimal.Allocation(a, b, alpha, beta, c);
        Assert.Equal(c, 6 * n * d, 1e-6 * c);
        // Brute force over log N at fixed C.
        double bestN = 0, bestLoss = double.MaxValue;
        for (double logN = Math.Log(1e8); logN < Math.Log(1e13); logN += 1e-4)
        {
            double nn = Math.Exp(logN), loss = e + a / Math.Pow(nn, alpha) + b / Math.Pow(c / (6 * nn), beta);
            if (loss < bestLoss) (bestLoss, bestN) = (loss, nn);
        }
        Assert.Equal(bestN, n, 2e-4 * n);
        Assert.Equal(bestLoss, ComputeOptimal.FrontierLoss(e, a, b, alpha, beta, c), 1e-9);
        double needed = ComputeOptimal.ComputeForLoss(e, a, b, alpha, beta, 2.0);
        Assert.Equal(2.0, ComputeOptimal.FrontierLoss(e, a, b, alpha, beta, needed), 1e-10);
        Assert.True(double.IsNaN(ComputeOptimal.ComputeForLoss(e, a, b, alpha, beta, 1.5)));

        var data = LawTests.Law1Data(0, 1);
        var fit = ScalingFit.Fit(ScalingLaws.Chinchilla, data, Small with { Starts = [ScalingLaws.Chinchilla.ToInternal([1.5, 300, 300, 0.3, 0.3])] });
        var allocation = ComputeOptimal.Allocate(fit, [c], [2.0]);
        Assert.Equal(beta / (alpha + beta), allocation.ExponentA.Estimate, 1e-6);
        Assert.Equal(alpha / (alpha + beta), allocation.ExponentB.Estimate, 1e-6);
        Assert.Equal(n, allocation.Rows[0].N.Estimate, 1e-4 * n);
        Assert.Equal(d / n, allocation.Rows[0].TokensPerParameter.Estimate, 1e-4 * d / n);
        Assert.Equal(needed, allocation.Targets[0].Compute.Estimate, 1e-4 * needed);
        Assert.Throws<ArgumentException>(() => ComputeOptimal.Allocate(ScalingFit.Fit(ScalingLaws.Power, FitData.FromArrays([1, 2, 3, 4.0], [1, 2, 3, 4.5])), [1e20]));
    }

    [Fact]
    public void Aic_prefers_the_generating_law_and_the_log_log_line_matches_law_3()
    {
        var x = ComputeOptimal.LogSpaced(1e3, 1e7, 30);
        var random = new Random(9);
        var y = x.Select(v => (1.5 + 30 * Math.Pow(v, -0.3)) * Math.Exp(0.01 * LawTests.Gaussian(random))).ToArray();
        var data = FitData.FromArrays(x, y);
        var saturating = ScalingFit.Fit(ScalingLaws.SaturatingPower, data, Small);
        var power = ScalingFit.Fit(ScalingLaws.Power, data, Small with { Loss = LossKind.Squared });
        var comparison = ScalingFit.Compare(saturating, power);
        Assert.Same(saturating, comparison.Best);
        Assert.True(saturating.Aic < power.Aic - 10);
        // Law 3 under squared loss is least squares in log-log space: the closed-form line.
        Assert.NotNull(power.Line);
        Assert.Equal(power.Line!.Alpha, power["alpha"], 1e-7);
        Assert.Equal(power.Line.A, power["A"], 1e-6 * power.Line.A);
    }

    [Fact]
    public void MathNet_option_reaches_the_same_optimum()
    {
        var data = LawTests.Law1Data(0.02, 5);
        var starts = new[] { ScalingLaws.Chinchilla.ToInternal([2, 500, 500, 0.4, 0.3]) };
        var own = ScalingFit.Fit(ScalingLaws.Chinchilla, data, Small with { Starts = starts });
        var mathNet = ScalingFit.Fit(ScalingLaws.Chinchilla, data, Small with { Starts = starts, Optimizer = OptimizerKind.MathNet });
        Assert.Equal(own.Objective, mathNet.Objective, 1e-6 * own.Objective);
        Assert.Equal(own["alpha"], mathNet["alpha"], 1e-3);
    }

    [Fact]
    public void MathNet_bounded_path_fits_a_bounded_law()
    {
        var (law, truth, data, _) = NoiseFree("kaplan");
        var start = new[] { law.ToInternal([1e14, 5e13, 0.08, 0.1]) };
        var fit = ScalingFit.Fit(law, data, Small with { Starts = start, Optimizer = OptimizerKind.MathNet });
        Assert.Equal(truth[2], fit["alphaN"], 1e-4);
        Assert.Equal(truth[3], fit["alphaD"], 1e-4);
    }

    [Fact]
    public void Law7_predicts_a_wsd_curve_from_constant_and_cosine_curves()
    {
        double[] truth = [2.0, 1.5, 0.5, 0.4];
        var random = new Random(11);
        var s1 = new List<double>();
        var s2 = new List<double>();
        var y = new List<double>();
        foreach (var schedule in new[] { LearningRateSchedule.Constant(1e-3, 3000, 100), LearningRateSchedule.Cosine(1e-3, 3000, 100) })
        {
            var areas = schedule.Areas();
            for (int s = 99; s < 3000; s += 20)
            {
                s1.Add(areas.S1[s]);
                s2.Add(areas.S2[s]);
                y.Add(ScalingLaws.LrAnnealing.Evaluate(truth, areas.S1[s], areas.S2[s]) * Math.Exp(0.003 * LawTests.Gaussian(random)));
            }
        }
        var fit = ScalingFit.Fit(ScalingLaws.LrAnnealing, new FitData(["S1", "S2"], [s1.ToArray(), s2.ToArray()], "loss", y.ToArray()), Small);
        var wsd = LearningRateSchedule.WarmupStableDecay(1e-3, 3000, 100, 0.2).Areas();
        double worst = 0;
        for (int s = 99; s < 3000; s++)
        {
            double actual = ScalingLaws.LrAnnealing.Evaluate(truth, wsd.S1[s], wsd.S2[s]);
            worst = Math.Max(worst, Math.Abs(fit.Predict(wsd.S1[s], wsd.S2[s]) - actual) / actual);
        }
        Assert.True(worst < 0.01, $"worst relative error on the WSD curve {worst}");
    }
}

public class HyperparameterOptimaTests
{
    [Fact]
    public void Step_law_exponents_are_recovered_from_a_noise_free_grid_of_runs()
    {
        // Loss is an exact parabola in log lr and log batch around the optimum, so the vertex refinement is exact.
        var runs = new List<HyperparameterRun>();
        foreach (double n in new[] { 1e8, 3e8, 1e9 })
            foreach (double d in new[] { 1e10, 3e10, 1e11 })
            {
                double lrOpt = 1.79 * Math.Pow(n, -0.713) * Math.Pow(d, 0.307), bOpt = 0.58 * Math.Pow(d, 0.571);
                foreach (double lr in ComputeOptimal.LogSpaced(1e-4, 3e-2, 11))
                    foreach (double b in ComputeOptimal.LogSpaced(3e4, 1e7, 7))
                        runs.Add(new HyperparameterRun(n, d, lr, b, 2 + 0.05 * Math.Pow(Math.Log(lr / lrOpt), 2) + 0.02 * Math.Pow(Math.Log(b / bOpt), 2)));
            }
        var (lrFit, batchFit) = HyperparameterOptima.Fit(runs);
        Assert.Equal(-0.713, lrFit["a"], 1e-6);
        Assert.Equal(0.307, lrFit["b"], 1e-6);
        Assert.Equal(1.79, lrFit["c"], 1e-5);
        Assert.Equal(0.571, batchFit["e"], 1e-6);
        Assert.Throws<ArgumentException>(() => HyperparameterOptima.Fit([new HyperparameterRun(1, 1, 1, 1, double.NaN)]));
    }
}
