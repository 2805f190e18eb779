using System.Text.Json.Serialization;
using ScalingInteractive.Proxies;

namespace ScalingInteractive.LoraSpectra;

/// <summary>
/// Source-generated JSON metadata for the LoRA experiment's records, keys and store identity and for spectra
/// (reflection-based serialisation is off in C# file-based apps and native AOT). Same settings as the run store, and
/// the keys and identity hash the fields of their earlier anonymous types in the same order, so earlier stores match.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals | JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(LoraRunRecord))]
[JsonSerializable(typeof(LoraSequenceRecord))]
[JsonSerializable(typeof(LoraTrajectoryRecord))]
[JsonSerializable(typeof(LoraExperimentResult))]
[JsonSerializable(typeof(ModelSpectrum))]
[JsonSerializable(typeof(LoraStoreIdentity))]
[JsonSerializable(typeof(LoraTargetKey))]
[JsonSerializable(typeof(LoraSequenceKey))]
[JsonSerializable(typeof(LoraTrajectoryKey))]
[JsonSerializable(typeof(LoraSequenceToLossesKey))]
[JsonSerializable(typeof(LoraPretrainKey))]
[JsonSerializable(typeof(LoraSelectedSequenceKey))]
[JsonSerializable(typeof(LoraPretrainRecord))]
[JsonSerializable(typeof(LoraExperimentOptions))]
[JsonSerializable(typeof(LoraExperimentSources))]
public sealed partial class LoraJson : JsonSerializerContext;

/// <summary>What a LoRA experiment's store must agree on: every setting that changes a run's numbers but not its key.</summary>
/// <param name="Model">Base model.</param>
/// <param name="PretrainSteps">Pre-training steps.</param>
/// <param name="PretrainLearningRate">Pre-training peak rate.</param>
/// <param name="FineTuneSteps">Fine-tuning steps.</param>
/// <param name="SequentialSteps">Steps per task of the sequence.</param>
/// <param name="BatchSize">Sequences per batch.</param>
/// <param name="SequenceLength">Tokens per sequence.</param>
/// <param name="Alpha">LoRA alpha (null: 2r).</param>
/// <param name="TargetPatterns">Adapted layers.</param>
/// <param name="MitigationLambda">Intruder scaling of the mitigation.</param>
/// <param name="EvaluationBatches">Fixed evaluation batches.</param>
/// <param name="Seed">Seed.</param>
/// <param name="Intruders">Intruder settings.</param>
/// <param name="Corpora">Corpus names: pre-training, then the tasks.</param>
public sealed record LoraStoreIdentity(ProxyModelConfig Model, int PretrainSteps, double PretrainLearningRate, int FineTuneSteps, int SequentialSteps,
    int BatchSize, int SequenceLength, double? Alpha, IReadOnlyList<string> TargetPatterns, double MitigationLambda, int EvaluationBatches, long Seed,
    LoraIntruderIdentity Intruders, string[] Corpora);

/// <summary>The intruder settings of <see cref="LoraStoreIdentity"/>.</summary>
/// <param name="TopK">Top singular vectors checked.</param>
/// <param name="Epsilon">Cosine threshold.</param>
/// <param name="EpsilonSweep">Thresholds of the sweep.</param>
/// <param name="Side">Singular vectors compared.</param>
public sealed record LoraIntruderIdentity(int TopK, double Epsilon, IReadOnlyList<double> EpsilonSweep, SingularSide Side);

/// <summary>Key of a target-task fine-tuning run.</summary>
/// <param name="Kind"><c>target</c>.</param>
/// <param name="Rank">LoRA rank (0: full).</param>
/// <param name="Rs">rsLoRA scaling.</param>
/// <param name="Lr">Peak learning rate.</param>
public sealed record LoraTargetKey(string Kind, int Rank, bool Rs, double Lr);

/// <summary>Key of a task-sequence run.</summary>
/// <param name="Kind"><c>sequence</c>.</param>
/// <param name="Rank">LoRA rank (0: full).</param>
/// <param name="Lr">Peak learning rate.</param>
public sealed record LoraSequenceKey(string Kind, int Rank, double Lr);

/// <summary>Key of a matched-loss trajectory.</summary>
/// <param name="Kind"><c>trajectory</c>.</param>
/// <param name="Rank">LoRA rank (0: full).</param>
/// <param name="Rs">rsLoRA scaling.</param>
/// <param name="Lr">Peak learning rate.</param>
/// <param name="Levels">Target-loss levels.</param>
/// <param name="EvaluateEvery">Steps between evaluations.</param>
public sealed record LoraTrajectoryKey(string Kind, int Rank, bool Rs, double Lr, double[] Levels, int EvaluateEvery);

/// <summary>Key of a matched-loss task sequence.</summary>
/// <param name="Kind"><c>sequence-to-losses</c>.</param>
/// <param name="Rank">LoRA rank (0: full).</param>
/// <param name="Lr">Peak learning rate.</param>
/// <param name="Levels">One loss level per task.</param>
/// <param name="EvaluateEvery">Steps between evaluations.</param>
public sealed record LoraSequenceToLossesKey(string Kind, int Rank, double Lr, double[] Levels, int EvaluateEvery);

/// <summary>Key of the pre-training run (stage 0 of <see cref="LoraExperimentSpec"/>; the store's identity holds its settings).</summary>
/// <param name="Kind"><c>pretrain</c>.</param>
public sealed record LoraPretrainKey(string Kind);

/// <summary>
/// Key of a task-sequence run of <see cref="LoraExperimentSpec"/> (stage 2): its learning rate is selected from stage 1's
/// records when it runs, so the key says <c>"selected"</c> and the record holds the rate.
/// </summary>
/// <param name="Kind"><c>sequence</c>.</param>
/// <param name="Rank">LoRA rank (0: full).</param>
/// <param name="Lr"><c>selected</c>.</param>
public sealed record LoraSelectedSequenceKey(string Kind, int Rank, string Lr);
