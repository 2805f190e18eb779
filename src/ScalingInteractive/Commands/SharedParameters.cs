namespace ScalingInteractive.Commands;

/// <summary>
/// Declarations of parameters that several commands share, so each shared name has one type and one meaning
/// everywhere (a test checks the whole catalogue). Commands may change the default with <c>with { Default = ... }</c>.
/// </summary>
public static class SharedParameters
{
    /// <summary><c>--seed</c>: one integer seed.</summary>
    public static CommandParameter Seed { get; } = new("--seed", typeof(int), "Seed.") { Default = 0 };

    /// <summary><c>--seeds</c>: a JSON list of integer seeds, for commands that run several seeds.</summary>
    public static CommandParameter Seeds { get; } = new("--seeds", typeof(int[]), "Seeds to run, a JSON list, e.g. [0,1].") { Default = new[] { 0 }, Minimum = 0 };

    /// <summary><c>--batch-size</c>: examples (or sequences) per optimiser step.</summary>
    public static CommandParameter BatchSize { get; } = new("--batch-size", typeof(int), "Examples (or sequences) per optimiser step.") { Default = 32, Minimum = 1 };

    /// <summary><c>--epsilon</c>: the intruder threshold, one number (Shuttleworth et al. 2024: 0.5).</summary>
    public static CommandParameter Epsilon { get; } =
        new("--epsilon", typeof(double), "Intruder threshold: a top singular vector whose max |cos| with every base singular vector is below it is an intruder (paper: 0.5).")
        { Default = 0.5, Minimum = 1e-9, Maximum = 1 };

    /// <summary><c>--epsilon-sweep</c>: thresholds at which intruders are also counted.</summary>
    public static CommandParameter EpsilonSweep { get; } =
        new("--epsilon-sweep", typeof(double[]), "Intruder thresholds at which counts are also reported (JSON list).")
        { Default = new[] { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 }, Minimum = 1e-9, Maximum = 1 };

    /// <summary><c>--top-k</c>: top singular vectors of the fine-tuned matrix examined.</summary>
    public static CommandParameter TopK { get; } = new("--top-k", typeof(int), "Top singular vectors of the fine-tuned matrix examined (paper: 10).") { Default = 10, Minimum = 1, Maximum = 100000 };

    /// <summary><c>--device</c>: where LibTorch runs.</summary>
    public static CommandParameter Device { get; } = new("--device", typeof(string), "auto (CUDA when available), cpu, cuda or cuda:N.") { Default = "auto" };

    /// <summary><c>--store</c>: a run store (JSON Lines) that makes the command resumable.</summary>
    public static CommandParameter Store { get; } = new("--store", typeof(string), "Run-store file (JSON Lines): finished runs are appended and skipped when the command runs again.");

    /// <summary><c>--data-dir</c>: the folder that holds downloaded data sets (MNIST files, tinyshakespeare.txt).</summary>
    public static CommandParameter DataDir { get; } =
        new("--data-dir", typeof(string), "Data folder with the data set files (default: the notebook data folder, SCALING_INTERACTIVE_DATA).");

    /// <summary><c>--corpus</c>: a text corpus for proxy language models.</summary>
    public static CommandParameter Corpus { get; } =
        new("--corpus", typeof(string), "Text corpus: synthetic (built-in grammar, no download), shakespeare (tinyshakespeare.txt in the data folder) or the path of a UTF-8 text file (a bare file name is also looked up in the data folder).")
        { Default = "synthetic" };

    /// <summary><c>--threads</c>: LibTorch CPU threads for the process.</summary>
    public static CommandParameter Threads { get; } =
        new("--threads", typeof(int), "LibTorch CPU threads for the process (0 keeps LibTorch's choice; 1 is fastest for tiny models on a busy machine).") { Default = 0, Minimum = 0 };

    /// <summary><c>--steps</c>: optimiser steps per run.</summary>
    public static CommandParameter Steps { get; } = new("--steps", typeof(int), "Optimiser steps per run.") { Default = 200, Minimum = 1 };

    /// <summary><c>--width</c>: model width d_model.</summary>
    public static CommandParameter Width { get; } = new("--width", typeof(int), "Model width d_model.") { Default = 64, Minimum = 8, Maximum = 4096 };

    /// <summary><c>--depth</c>: transformer blocks.</summary>
    public static CommandParameter Depth { get; } = new("--depth", typeof(int), "Transformer blocks.") { Default = 2, Minimum = 1, Maximum = 64 };

    /// <summary><c>--seq-len</c>: tokens per training sequence.</summary>
    public static CommandParameter SequenceLength { get; } = new("--seq-len", typeof(int), "Tokens per training sequence.") { Default = 64, Minimum = 2 };

    /// <summary><c>--pretrain-steps</c>: pre-training steps on the synthetic grammar before fine-tuning.</summary>
    public static CommandParameter PretrainSteps { get; } = new("--pretrain-steps", typeof(int), "Pre-training steps on the synthetic grammar before fine-tuning.") { Default = 400, Minimum = 0 };

    /// <summary><c>--bootstrap</c>: bootstrap resamples (0: none).</summary>
    public static CommandParameter Bootstrap { get; } = new("--bootstrap", typeof(int), "Bootstrap resamples (0: none).") { Default = 1000, Minimum = 0, Maximum = 1_000_000 };

    /// <summary><c>--name</c>: the C# variable that receives the command's result.</summary>
    public static CommandParameter Name(string resultType, object? defaultName = null) =>
        new("--name", typeof(string), $"C# variable that receives the {resultType}.") { Default = defaultName };
}
