using System.Text.Json;
using System.Text.Json.Serialization;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>
/// Source-generated JSON metadata for intrinsic-dimension records, keys and reports (reflection-based serialisation is
/// off in C# file-based apps and native AOT). Same settings as the run store, so keys of earlier stores still match.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals | JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(SubspaceKeyFields))]
[JsonSerializable(typeof(SubspaceRun))]
[JsonSerializable(typeof(IntrinsicDimensionReportJson))]
[JsonSerializable(typeof(IntrinsicTaskSpec))]
[JsonSerializable(typeof(IntrinsicSweepSettings))]
[JsonSerializable(typeof(IntrinsicPretrainKey))]
[JsonSerializable(typeof(IntrinsicPretrainRecord))]
public sealed partial class IntrinsicJson : JsonSerializerContext
{
    /// <summary>The same metadata, written indented.</summary>
    public static IntrinsicJson Indented => s_indented ??= new(new JsonSerializerOptions(Runs.RunStore.JsonOptions) { WriteIndented = true });

    private static IntrinsicJson? s_indented;
}

/// <summary>What a subspace run's key hashes (the fields of the key's earlier anonymous type, in order).</summary>
/// <param name="Task">Task name.</param>
/// <param name="Projection">Projection kind, or <c>full</c>.</param>
/// <param name="D">Subspace dimension d (0 for the full baseline).</param>
/// <param name="Said">SAID scales on.</param>
/// <param name="PerTensor">One projection per tensor.</param>
/// <param name="Seed">Run seed.</param>
public sealed record SubspaceKeyFields(string Task, string Projection, long D, bool Said, bool PerTensor, int Seed);

/// <summary>The JSON form of an <see cref="IntrinsicDimensionReport"/>.</summary>
/// <param name="Task">Task name.</param>
/// <param name="Metric">Metric name.</param>
/// <param name="ParameterCount">Model parameters D.</param>
/// <param name="Baseline">Baseline metric per seed.</param>
/// <param name="Series">Curves and thresholds per series.</param>
/// <param name="Runs">Every run.</param>
public sealed record IntrinsicDimensionReportJson(string Task, string Metric, long ParameterCount, IReadOnlyList<double> Baseline,
    IReadOnlyList<IntrinsicDimensionSeries> Series, IReadOnlyList<SubspaceRun> Runs);
