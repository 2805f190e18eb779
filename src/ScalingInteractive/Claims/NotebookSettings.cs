namespace ScalingInteractive.Claims;

/// <summary>
/// Notebook 03's sizes, full run and quick mode (CI) in one place. The magic commands name these values through
/// variables of the same name (a bare variable name stands for its value).
/// </summary>
/// <param name="Steps">Training steps per MNIST run.</param>
/// <param name="LmSteps">Fine-tuning steps per language-model run.</param>
/// <param name="Seeds">MNIST seeds.</param>
/// <param name="MlpDims">d swept for the MLP (Fastfood).</param>
/// <param name="DenseDims">d swept for the MLP with the dense projection (d x D memory).</param>
/// <param name="CnnDims">d swept for the CNN.</param>
/// <param name="LmSeeds">Language-model seeds (one: the full run is budgeted at 10 minutes on 2 cores).</param>
/// <param name="LmDims">d swept for the regime S arms.</param>
/// <param name="TransferDims">d swept for the regime T arms.</param>
/// <param name="TransferPretrain">Pre-training steps of the regime T arms.</param>
/// <param name="PretrainSteps">Pre-training steps of the regime S arms.</param>
/// <param name="Bootstrap">Bootstrap resamples of each d90 interval.</param>
/// <param name="SaidControlSeeds">Extra seeds of claim 5's seed control.</param>
public sealed record IntrinsicDimensionNotebookSettings(int Steps, int LmSteps, int[] Seeds, int[] MlpDims, int[] DenseDims, int[] CnnDims, int[] LmSeeds,
    long[] LmDims, long[] TransferDims, int TransferPretrain, int PretrainSteps, int Bootstrap, int[] SaidControlSeeds)
{
    /// <summary>The full run, or quick mode (CI: every experiment shrunk to seconds, verdicts indicative only).</summary>
    public static IntrinsicDimensionNotebookSettings For(bool quick) => quick
        ? new(150, 60, [0], [30, 300, 3000], [30, 300], [30, 300, 3000], [0], [30, 300, 3000], [3, 30, 300], 100, 150, 100, [1])
        : new(1000, 300, [0, 1], [30, 100, 300, 1000, 3000, 10000], [30, 100, 300], [30, 100, 300, 1000, 3000], [0], [30, 300, 3000],
            [3, 10, 30, 100, 300, 1000, 3000], 500, 1000, 1000, [1, 2]);
}

/// <summary>
/// Notebook 04's sizes, full run and quick mode (CI) in one place. The <c>#!lora-experiment</c> cell names these
/// values through variables of the same name.
/// </summary>
/// <param name="Width">Model width d of the main experiment.</param>
/// <param name="PretrainSteps">Pre-training steps on corpus A.</param>
/// <param name="Steps">Fine-tuning steps on B.</param>
/// <param name="SequentialSteps">Steps per task of the task sequence.</param>
/// <param name="Ranks">LoRA ranks (r/d at most 1/12 in the full run).</param>
/// <param name="SequentialRanks">LoRA ranks of the task sequence.</param>
/// <param name="FullLrs">Full fine-tuning's learning-rate grid.</param>
/// <param name="LoraLrs">LoRA's learning-rate grid (an earlier 3e-4 ... 1e-2 grid chose its top rate for every method, still short of full fine-tuning's target loss, control L).</param>
/// <param name="FullEvery">Control M: steps between evaluations of full fine-tuning's target loss (it crosses the levels early, where its loss falls fastest).</param>
/// <param name="LoraEvery">Control M: steps between evaluations of a LoRA run's target loss.</param>
/// <param name="EarlierRegime">Control R: a reduced re-run of the earlier full mode (width 64, ranks up to full rank, two-point grids).</param>
public sealed record LoraNotebookSettings(int Width, int PretrainSteps, int Steps, int SequentialSteps, int[] Ranks, int[] SequentialRanks, double[] FullLrs,
    double[] LoraLrs, int FullEvery, int LoraEvery, LoraSpectra.LoraExperimentOptions EarlierRegime)
{
    /// <summary>The full run, or quick mode (CI: a narrower model, fewer steps, ranks and rates; a smoke test).</summary>
    public static LoraNotebookSettings For(bool quick)
    {
        int steps = quick ? 40 : 200;
        var earlier = new LoraSpectra.LoraExperimentOptions
        {
            Model = new Proxies.ProxyModelConfig { Width = quick ? 32 : 64, Depth = 2, Heads = quick ? 2 : 4, ContextLength = 64 },
            PretrainSteps = quick ? 100 : 1500, FineTuneSteps = steps, SequentialSteps = 0,
            Ranks = quick ? new[] { 4, 32 } : new[] { 8, 64 },
            FullLearningRates = quick ? new[] { 3e-4 } : new[] { 1e-4, 3e-4 }, LoraLearningRates = quick ? new[] { 1e-3 } : new[] { 1e-3, 3e-3 },
        };
        return quick
            ? new(64, 200, steps, 20, [1, 4], [1], [1e-3], [3e-3, 1e-2], 2, 10, earlier)
            : new(128, 1500, steps, 150, [1, 4, 8], [1], [3e-4, 1e-3, 3e-3], [3e-3, 1e-2, 3e-2, 1e-1], 1, 5, earlier);
    }
}

/// <summary>Notebook 01's sizes, full run and quick mode (CI) in one place.</summary>
/// <param name="Resamples">Bootstrap resamples of the law-1 fit (the magic command names <c>resamples</c>).</param>
/// <param name="Simulations">Noisy data sets of the coverage simulation.</param>
/// <param name="SimulationResamples">Bootstrap resamples per simulated data set.</param>
public sealed record FittingNotebookSettings(int Resamples, int Simulations, int SimulationResamples)
{
    /// <summary>The full run, or quick mode (CI: a smaller bootstrap and fewer simulations).</summary>
    public static FittingNotebookSettings For(bool quick) => quick ? new(200, 20, 150) : new(1000, 100, 500);
}

/// <summary>Notebook 02's sizes, full run (about 20 minutes on 2 cores) and quick mode (CI: tiny widths, a few dozen steps) in one place.</summary>
/// <param name="Widths">Model widths of the main sweeps.</param>
/// <param name="HeadDim">Attention head size.</param>
/// <param name="Rates">Learning-rate grid.</param>
/// <param name="Training">Training options (cosine schedule) before the paper's ratio-matched z-loss and warm-up are applied.</param>
/// <param name="ExtraSeeds">Seeds of claim 1's and claim 5's seed control.</param>
/// <param name="ZLossSteps">Steps of claim 3's long runs.</param>
/// <param name="FitLearningRate">Learning rate of the fitting-data runs.</param>
/// <param name="FitLogEvery">Logging interval of the fitting-data runs.</param>
/// <param name="NdGridSteps">Step counts of the (N, D) grid.</param>
/// <param name="ScheduleSteps">Steps of the schedule curves.</param>
/// <param name="ScheduleWarmup">Warm-up steps of the schedule curves.</param>
/// <param name="LrBatchBudgets">Token budgets of the learning-rate x batch grids.</param>
/// <param name="LrBatchRates">Learning rates of those grids.</param>
/// <param name="LrBatchSizes">Batch sizes of those grids.</param>
/// <param name="Law1Resamples">Bootstrap resamples of law 1 on the proxy runs.</param>
public sealed record ProxyNotebookSettings(int[] Widths, int HeadDim, double[] Rates, Proxies.ProxyTrainingOptions Training, long[] ExtraSeeds, int ZLossSteps,
    double FitLearningRate, int FitLogEvery, int[] NdGridSteps, int ScheduleSteps, int ScheduleWarmup, long[] LrBatchBudgets, double[] LrBatchRates, int[] LrBatchSizes,
    int Law1Resamples)
{
    /// <summary>The full run, or quick mode.</summary>
    public static ProxyNotebookSettings For(bool quick) => quick
        ? new([16, 24, 32], 8, [3e-3, 3e-2, 1.0], TrainingOf(25, 8, 32, 5, 2), [1], 60, 1e-2, 2, [10, 20, 40], 30, 2, [4L * 32 * 20, 4L * 32 * 40], [3e-3, 1e-2, 3e-2], [4, 8], 100)
        : new([32, 64, 96], 16, Proxies.ProxySweepSpec.LogSpaced(1e-3, 1.0, 5), TrainingOf(300, 16, 64, 20, 8), [1, 2], 1800, 3e-3, 10, [100, 200, 300], 300, 20,
            [16L * 64 * 100, 16L * 64 * 200], Proxies.ProxySweepSpec.LogSpaced(1e-3, 3e-2, 3), [8, 16, 32], 1000);

    private static Proxies.ProxyTrainingOptions TrainingOf(int steps, int batchSize, int sequenceLength, int logEvery, int validationBatches) => new()
    {
        Steps = steps, BatchSize = batchSize, SequenceLength = sequenceLength, LogEvery = logEvery, ValidationBatches = validationBatches, Schedule = Core.ScheduleShape.Cosine,
    };
}
