using System.Text.Json.Serialization;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Proxies;

/// <summary>
/// Source-generated JSON metadata for the proxy types that records, keys and specs hold. Reflection-based serialisation
/// is off in C# file-based apps and native AOT; these work everywhere and write exactly what reflection wrote (camelCase,
/// properties in declaration order, non-finite numbers as strings), so keys and records of earlier runs still match.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals | JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(ProxyRunIdentity))]
[JsonSerializable(typeof(ProxyRunSpec))]
[JsonSerializable(typeof(EnsembleShape))]
[JsonSerializable(typeof(ProxySweepResultJson))]
[JsonSerializable(typeof(CorpusSource))]
public sealed partial class ProxiesJson : JsonSerializerContext;

/// <summary>The JSON form of a <see cref="ProxySweepResult"/>.</summary>
/// <param name="Rows">One row per run.</param>
/// <param name="Sensitivities">LR sensitivity per setting and size.</param>
/// <param name="BadLines">Unreadable store lines.</param>
/// <param name="StorePath">The store read.</param>
public sealed record ProxySweepResultJson(IReadOnlyList<ProxySweepRow> Rows, IReadOnlyList<LrSensitivityRow> Sensitivities, IReadOnlyList<BadRunLine> BadLines, string? StorePath);
