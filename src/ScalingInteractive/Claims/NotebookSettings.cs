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
