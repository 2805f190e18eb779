using ScalingInteractive.Fitting;

namespace ScalingInteractive.Tests.Fitting;

public class LawTests
{
    /// <summary>A point inside each law's domain and a parameter value where the prediction is positive.</summary>
    internal static IEnumerable<(ScalingLaw Law, double[] Reported, double[] X)> Cases()
    {
        yield return (ScalingLaws.Chinchilla, [1.69, 406.4, 410.7, 0.34, 0.28], [3e8, 6e9]);
        yield return (ScalingLaws.SaturatingPower, [1.5, 30, 0.3], [1e5]);
        yield return (ScalingLaws.Power, [2e3, -0.25], [1e6]);
        yield return (ScalingLaws.BleuLog, [0.01, 0.3, 1.2], [1e9]);
        yield return (ScalingLaws.Kaplan, [8.8e13, 5.4e13, 0.076, 0.095], [1e8, 1e10]);
        yield return (ScalingLaws.OverTraining, [1.8, 40, 30, 0.2, 0.05], [1e20, 40]);
        yield return (ScalingLaws.DownstreamError, [0.9, 3, 0.8], [2.7]);
        yield return (ScalingLaws.LrAnnealing, [2.0, 1.5, 0.5, 0.05], [3.0, 1.2]);
        yield return (ScalingLaws.StepLearningRate, [1.79, -0.713, 0.307], [1e9, 1e11]);
        yield return (ScalingLaws.StepBatchSize, [0.58, 0.571], [1e11]);
        yield return (Custom(withGradient: true), [2.0, 5.0, 0.7], [10]);
        yield return (Custom(withGradient: false), [2.0, 5.0, 0.7], [10]);
    }

    internal static CustomLaw Custom(bool withGradient) => ScalingLaws.Custom(withGradient ? "exp-decay" : "exp-decay-fd", "y = E + A exp(-k x)", ["x"],
        [ParameterSpec.Log("E", 0, 1), ParameterSpec.Free("A", 1, 5), ParameterSpec.Bounded("k", 0, 10, 0.3, 1)],
        (p, x) => p[0] + p[1] * Math.Exp(-p[2] * x[0]),
        withGradient ? (p, x, g) => { g[0] = 1; g[1] = Math.Exp(-p[2] * x[0]); g[2] = -p[1] * x[0] * Math.Exp(-p[2] * x[0]); } : null);

    [Fact]
    public void Every_law_evaluates_its_formula_written_out()
    {
        // Independent closed forms with the reported parameters.
        double Expected(ScalingLaw law, double[] p, double[] x) => law.Name switch
        {
            "chinchilla" => p[0] + p[1] / Math.Pow(x[0], p[3]) + p[2] / Math.Pow(x[1], p[4]),
            "saturating-power" => p[0] + p[1] * Math.Pow(x[0], -p[2]),
            "power" => p[0] * Math.Pow(x[0], p[1]),
            "bleu-log" => Math.Pow(Math.Log(p[0] * Math.Pow(x[0], p[1])), p[2]),
            "kaplan" => Math.Pow(Math.Pow(p[0] / x[0], p[2] / p[3]) + p[1] / x[1], p[3]),
            "overtraining" => p[0] + (p[1] * Math.Pow(x[1], p[3]) + p[2] * Math.Pow(x[1], -p[3])) * Math.Pow(x[0], -p[4]),
            "downstream-error" => p[0] - p[1] * Math.Exp(-p[2] * x[0]),
            "lr-annealing" => p[0] + p[1] * Math.Pow(x[0], -p[2]) - p[3] * x[1],
            "step-lr" => p[0] * Math.Pow(x[0], p[1]) * Math.Pow(x[1], p[2]),
            "step-batch" => p[0] * Math.Pow(x[0], p[1]),
            _ => p[0] + p[1] * Math.Exp(-p[2] * x[0]),
        };
        foreach (var (law, p, x) in Cases())
        {
            double expected = Expected(law, p, x);
            Assert.True(Math.Abs(law.Evaluate(p, x) - expected) <= 1e-12 * Math.Abs(expected), $"{law.Name}: {law.Evaluate(p, x)} vs {expected}");
        }
    }

    [Fact]
    public void Analytic_gradients_match_finite_differences_for_every_law()
    {
        foreach (var (law, p, x) in Cases())
        {
            var theta = law.ToInternal(p);
            var logX = x.Select(v => v > 0 ? Math.Log(v) : double.NaN).ToArray();
            var gradient = new double[theta.Length];
            law.LogValue(theta, x, logX, gradient);
            for (int j = 0; j < theta.Length; j++)
            {
                double h = 1e-6 * (1 + Math.Abs(theta[j]));
                var up = theta.ToArray();
                var down = theta.ToArray();
                up[j] += h;
                down[j] -= h;
                double fd = (law.LogValue(up, x, logX, []) - law.LogValue(down, x, logX, [])) / (2 * h);
                Assert.True(Math.Abs(gradient[j] - fd) <= 1e-6 * Math.Max(1, Math.Abs(fd)), $"{law.Name} d/d{law.Parameters[j].InternalName}: {gradient[j]} vs {fd}");
            }
        }
    }

    [Theory]
    [InlineData(LossKind.Huber)]
    [InlineData(LossKind.Squared)]
    [InlineData(LossKind.Cauchy)]
    public void Fused_law1_objective_matches_the_formula_and_its_gradient(LossKind kind)
    {
        var data = Law1Data(noise: 0.03, seed: 3);
        var prepared = new PreparedData(data);
        var loss = new RobustLoss(kind, 1e-2);
        var theta = new[] { 0.5, 6.0, 6.1, 0.33, 0.27 };
        var gradient = new double[5];
        double fused = ScalingLaws.Chinchilla.Objective(theta, prepared, [], loss, gradient);
        // Independent: the plain formula E + A/N^alpha + B/D^beta and the loss written out.
        double expected = 0;
        for (int i = 0; i < data.Count; i++)
        {
            double prediction = Math.Exp(theta[0]) + Math.Exp(theta[1]) / Math.Pow(data.X[0][i], theta[3]) + Math.Exp(theta[2]) / Math.Pow(data.X[1][i], theta[4]);
            double r = Math.Log(prediction) - Math.Log(data.Y[i]);
            expected += kind switch
            {
                LossKind.Squared => r * r / 2,
                LossKind.Cauchy => 1e-4 / 2 * Math.Log(1 + r * r / 1e-4),
                _ => Math.Abs(r) <= 1e-2 ? r * r / 2 : 1e-2 * (Math.Abs(r) - 5e-3),
            };
        }
        Assert.Equal(expected, fused, 1e-12 * expected);
        for (int j = 0; j < 5; j++)
        {
            double h = 1e-6;
            var up = theta.ToArray();
            var down = theta.ToArray();
            up[j] += h;
            down[j] -= h;
            double fd = (ScalingLaws.Chinchilla.Objective(up, prepared, [], loss, new double[5]) - ScalingLaws.Chinchilla.Objective(down, prepared, [], loss, new double[5])) / (2 * h);
            Assert.True(Math.Abs(gradient[j] - fd) <= 1e-5 * Math.Max(1e-3, Math.Abs(fd)), $"{kind} d{j}: {gradient[j]} vs {fd}");
        }
    }

    [Fact]
    public void Huber_objective_is_summed_over_points_not_averaged()
    {
        var data = Law1Data(noise: 0.05, seed: 4);
        var doubled = new FitData(data.XNames, data.X.Select(c => c.Concat(c).ToArray()).ToList(), data.YName, data.Y.Concat(data.Y).ToArray());
        var theta = new[] { 0.5, 6.0, 6.1, 0.33, 0.27 };
        double single = ScalingLaws.Chinchilla.Objective(theta, new PreparedData(data), [], RobustLoss.Default, new double[5]);
        double twice = ScalingLaws.Chinchilla.Objective(theta, new PreparedData(doubled), [], RobustLoss.Default, new double[5]);
        Assert.Equal(2 * single, twice, 1e-12 * twice);
        // Hand-computed: one point with residual 0.01 (> delta) costs 1e-3 * (0.01 - 5e-4) = 9.5e-6, one with 5e-4 costs 1.25e-7.
        Assert.Equal(9.5e-6, RobustLoss.Default.Value(0.01, out double d1), 1e-18);
        Assert.Equal(1e-3, d1);
        Assert.Equal(1.25e-7, RobustLoss.Default.Value(-5e-4, out double d2), 1e-20);
        Assert.Equal(-5e-4, d2);
    }

    [Fact]
    public void Law1_default_grid_is_the_papers_4500_starts()
    {
        var grid = ScalingLaws.Chinchilla.StartGrid();
        Assert.Equal(4500, grid.Length);
        Assert.Equal(["E", "A", "B", "alpha", "beta"], ScalingLaws.Chinchilla.ParameterNames);
        Assert.Equal([-1, -0.5, 0, 0.5, 1], grid.Select(g => g[0]).Distinct().Order());
        Assert.Equal([0, 5, 10, 15, 20, 25], grid.Select(g => g[1]).Distinct().Order());
        Assert.Equal([0, 0.5, 1, 1.5, 2], grid.Select(g => g[3]).Distinct().Order());
        Assert.Equal(4500, grid.Select(g => string.Join(",", g)).Distinct().Count());
    }

    [Fact]
    public void Schedule_areas_match_hand_computation()
    {
        // Constant 1e-3 for 5 steps: S1 = s * 1e-3, S2 = 0.
        var constant = LearningRateSchedule.Constant(1e-3, 5).Areas();
        Assert.Equal([1e-3, 2e-3, 3e-3, 4e-3, 5e-3], constant.S1.Select(v => Math.Round(v, 15)));
        Assert.All(constant.S2, v => Assert.Equal(0, v));

        // Warm-up of 2 steps at peak 1: rates 0.5, 1, 1; warm-up counted at the peak, so S1 = 1, 2, 3 and S2 = 0.
        var warm = LearningRateSchedule.Constant(1, 3, warmupSteps: 2);
        Assert.Equal([0.5, 1, 1], warm.Rates);
        Assert.Equal([1, 2, 3], warm.Areas().S1);
        Assert.All(warm.Areas().S2, v => Assert.Equal(0, v));

        // Step decay 1 -> 0.1 at step 3 with lambda 0.5: m = 0, 0, 0.9, 0.45, 0.225; S2 = 0, 0, 0.9, 1.35, 1.575.
        var step = LearningRateSchedule.StepDecay(1, 5, [3], factor: 0.1);
        Assert.Equal([1, 1, 0.1, 0.1, 0.1], step.Rates.Select(v => Math.Round(v, 12)));
        var areas = step.Areas(lambda: 0.5);
        Assert.Equal([1, 2, 2.1, 2.2, 2.3], areas.S1.Select(v => Math.Round(v, 12)));
        Assert.Equal([0, 0, 0.9, 1.35, 1.575], areas.S2.Select(v => Math.Round(v, 12)));

        // Linear 1 -> 0 over 3 steps with lambda 0: m_i = eta_(i-1) - eta_i = 0, 0.5, 0.5; S2 = 0, 0.5, 1.
        var linear = LearningRateSchedule.Linear(1, 3);
        Assert.Equal([1, 0.5, 0], linear.Rates);
        Assert.Equal([0, 0.5, 1], linear.Areas(lambda: 0).S2);

        // Cosine ends at the minimum, starts at the peak; WSD is flat at the peak then reaches the minimum.
        var cosine = LearningRateSchedule.Cosine(2, 101, minimum: 0.2);
        Assert.Equal(2, cosine.Rates[0], 12);
        Assert.Equal(1.1, cosine.Rates[50], 12);
        Assert.Equal(0.2, cosine.Rates[^1], 12);
        var wsd = LearningRateSchedule.WarmupStableDecay(1, 100, warmupSteps: 10, decayFraction: 0.2);
        Assert.Equal(1, wsd.Rates[50]);
        Assert.Equal(1, wsd.Rates[79]);
        Assert.Equal(0.95, wsd.Rates[80], 12);
        Assert.Equal(0, wsd.Rates[^1], 12);
        // With lambda 0, S2 at the end equals the total drop from the peak: 1.
        Assert.Equal(1, wsd.Areas(lambda: 0).S2[^1], 12);
    }

    internal static FitData Law1Data(double noise, int seed, double e = 1.69, double a = 406.4, double b = 410.7, double alpha = 0.34, double beta = 0.28)
    {
        var random = new Random(seed);
        var n = new List<double>();
        var d = new List<double>();
        var y = new List<double>();
        foreach (double size in ComputeOptimal.LogSpaced(7e7, 1.6e10, 8))
            foreach (double tokens in ComputeOptimal.LogSpaced(5e9, 5e11, 6))
            {
                n.Add(size);
                d.Add(tokens);
                y.Add((e + a / Math.Pow(size, alpha) + b / Math.Pow(tokens, beta)) * Math.Exp(noise * Gaussian(random)));
            }
        return FitData.FromArrays(n.ToArray(), d.ToArray(), y.ToArray());
    }

    internal static double Gaussian(Random random) => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
