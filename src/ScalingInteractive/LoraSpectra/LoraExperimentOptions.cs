using ScalingInteractive.Checkpoints;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;


/// <summary>Settings of the full-vs-LoRA experiment at proxy scale (Shuttleworth et al. 2024, sections 4-6).</summary>
public sealed record LoraExperimentOptions
{
    /// <summary>The proxy transformer (default: width 64, 2 blocks, 4 heads, context 64).</summary>
    public ProxyModelConfig Model { get; init; } = new() { Width = 64, Depth = 2, Heads = 4, ContextLength = 64 };

    /// <summary>
    /// Target-task runs trained at once, each on its own thread (null: on a CPU, cores / LibTorch threads, so that one
    /// LibTorch thread per worker fills the cores; 1 on a GPU). A run's record does not depend on it (timings aside). A
    /// runtime setting of <see cref="LoraExperiment.Run(LoraExperimentOptions, LoraExperimentCorpora, Device, string?, IProgressSink?, CancellationToken)"/>:
    /// not part of a <see cref="LoraExperimentSpec"/>'s JSON or its store's identity (a worker uses <see cref="ExperimentContext.Workers"/>).
    /// </summary>
    public int? Workers { get; init; }

    /// <summary>Pre-training steps on corpus A.</summary>
    public int PretrainSteps { get; init; } = 1500;

    /// <summary>Peak learning rate of pre-training.</summary>
    public double PretrainLearningRate { get; init; } = 3e-3;

    /// <summary>Fine-tuning steps on the target corpus B (the same for every method).</summary>
    public int FineTuneSteps { get; init; } = 400;

    /// <summary>Sequences per batch.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Tokens per sequence.</summary>
    public int SequenceLength { get; init; } = 64;

    /// <summary>
    /// Learning rates tried for full fine-tuning (the one with the lowest target loss is the reference). Fine-tuning rates
    /// sit well below the pre-training rate: with Adam the update per step is about the rate, and a rate near the
    /// pre-training one rewrites the small pre-trained matrices wholesale (measured: every method then shows "intruders").
    /// </summary>
    public IReadOnlyList<double> FullLearningRates { get; init; } = [1e-4, 3e-4];

    /// <summary>Learning rates tried for each LoRA configuration (the one whose target loss is closest to full fine-tuning's is reported).</summary>
    public IReadOnlyList<double> LoraLearningRates { get; init; } = [3e-4, 1e-3, 3e-3];

    /// <summary>LoRA ranks (paper: 1, 4, 8, 16, 64).</summary>
    public IReadOnlyList<int> Ranks { get; init; } = [1, 4, 8, 16, 64];

    /// <summary>Also run every rank with rank-stabilised scaling.</summary>
    public bool IncludeRsLora { get; init; } = true;

    /// <summary>LoRA alpha; null means 2 r.</summary>
    public double? Alpha { get; init; }

    /// <summary>Linear layers adapted by LoRA (and compared for all methods): attention and MLP matrices of every block.</summary>
    public IReadOnlyList<string> TargetPatterns { get; init; } = [@"^blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc|proj))$"];

    /// <summary>Steps per task of the sequence B -> C -> D.</summary>
    public int SequentialSteps { get; init; } = 300;

    /// <summary>LoRA ranks run on the task sequence (full fine-tuning always is); empty skips LoRA sequences.</summary>
    public IReadOnlyList<int> SequentialRanks { get; init; } = [1, 8, 64];

    /// <summary>Fraction of its singular value each intruder direction keeps in the mitigation (paper example 0.75).</summary>
    public double MitigationLambda { get; init; } = 0.75;

    /// <summary>Intruder analysis settings (k = 10, epsilon = 0.5 by default).</summary>
    public IntruderOptions Intruders { get; init; } = new();

    /// <summary>Fixed validation batches per corpus for every loss reported.</summary>
    public int EvaluationBatches { get; init; } = 8;

    /// <summary>Seed of initialisation, LoRA A matrices and batch order.</summary>
    public long Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (Workers is < 1) throw new ArgumentException($"Workers must be at least 1; got {Workers}.", nameof(Workers));
        Model.Validate();
        Intruders.Validate();
        if (PretrainSteps < 1 || FineTuneSteps < 1 || SequentialSteps < 0)
            throw new ArgumentException($"Steps must be positive (pretrain {PretrainSteps}, fine-tune {FineTuneSteps}) and sequential steps non-negative ({SequentialSteps}).", nameof(FineTuneSteps));
        if (BatchSize < 1 || SequenceLength < 2 || SequenceLength > Model.ContextLength)
            throw new ArgumentException($"Batch size {BatchSize} must be positive and sequence length {SequenceLength} in [2, {Model.ContextLength}] (the model's context).", nameof(SequenceLength));
        if (FullLearningRates.Count == 0 || LoraLearningRates.Count == 0 || FullLearningRates.Concat(LoraLearningRates).Any(lr => !(lr > 0)))
            throw new ArgumentException("Learning-rate lists must be non-empty and positive.", nameof(LoraLearningRates));
        if (Ranks.Any(r => r < 1) || SequentialRanks.Any(r => r < 1))
            throw new ArgumentException($"LoRA ranks must be at least 1; got [{string.Join(", ", Ranks.Concat(SequentialRanks))}].", nameof(Ranks));
        if (!(MitigationLambda is >= 0 and <= 1)) throw new ArgumentException($"MitigationLambda {MitigationLambda} must lie in [0, 1].", nameof(MitigationLambda));
        if (EvaluationBatches < 1) throw new ArgumentException("EvaluationBatches must be at least 1.", nameof(EvaluationBatches));
    }
}

/// <summary>The corpora: A (pre-training), B (the fine-tuning target) and the task sequence B -> C -> D.</summary>
/// <param name="Pretrain">Corpus A.</param>
/// <param name="Tasks">Fine-tuning tasks in order; the first is the target B of the main comparison.</param>
public sealed record LoraExperimentCorpora(TextCorpus Pretrain, IReadOnlyList<TextCorpus> Tasks)
{
    /// <summary>
    /// The default corpora: A = the built-in synthetic grammar; B = tiny Shakespeare; C = the same text with every line
    /// reversed character by character (same characters, different sequential structure); D = the text upper-cased
    /// (a different token distribution). All are byte-level, so one proxy model reads them all.
    /// </summary>
    public static LoraExperimentCorpora Default(string shakespearePath, int syntheticBytes = 1_000_000) =>
        LoraExperimentSources.Default(shakespearePath, syntheticBytes).Load();
}
