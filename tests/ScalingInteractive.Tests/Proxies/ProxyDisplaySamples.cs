using ScalingInteractive.Proxies;

namespace ScalingInteractive.Tests.Proxies;

/// <summary>Hand-made result instances for the display tests (no training needed).</summary>
internal static class ProxyDisplaySamples
{
    public static ProxyRunResult Run(double lr = 1e-3, bool diverged = false, string setting = "<b>baseline</b>") => new()
    {
        Model = new ProxyModelConfig { Width = 32, Heads = 2 },
        Training = new ProxyTrainingOptions { LearningRate = lr, Steps = 20 },
        Corpus = "<script>alert(1)</script>",
        Parameters = 1000, ParametersWithEmbeddings = 2000, StepsCompleted = 20, Tokens = 20 * 32 * 64,
        InitialLoss = 5.55, FinalLoss = diverged ? double.NaN : 3.1, FinalTrainLoss = 3.0, Diverged = diverged,
        DivergenceReason = diverged ? "loss is NaN at step 10" : null,
        Metrics = [new ProxyMetrics(1, lr, 5.5, 1e-3, 3.1, 0.5, 1.2, 0.02, 1e-3, [0.2, 0.3], [0.1, 0.2]),
                   new ProxyMetrics(20, lr, 3.0, 1e-3, 2.1, 4.5, 0.8, 0.03, 1e-3, [2.2, 3.3], [0.5, 0.6])],
        Validation = [new ProxyValidationPoint(0, 5.55), new ProxyValidationPoint(20, 3.1)],
        Seconds = 1.5, TokensPerSecond = 27000,
    };

    public static ProxySweepResult Sweep() => new(
        [Run(1e-3).ToRecord("a", "lr-sweep", "<b>baseline</b>"), Run(1e-1, diverged: true).ToRecord("b", "lr-sweep", "<b>baseline</b>")]);
}
