using System.Text.Json;
using System.Text.Json.Serialization;

namespace ScalingInteractive.Sweeps;

/// <summary>
/// Source-generated JSON metadata for specs, handles and status (reflection-based serialisation is off in C# file-based
/// apps and native AOT). Same settings as the run store: camelCase, non-finite numbers as strings.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals | JsonNumberHandling.AllowReadingFromString)]
[JsonSerializable(typeof(SweepHandle))]
[JsonSerializable(typeof(SweepStatus))]
public sealed partial class SweepsJson : JsonSerializerContext
{
    /// <summary>The same metadata, written indented (files people read: specs, handles).</summary>
    public static SweepsJson Indented => s_indented ??= new(new JsonSerializerOptions(Runs.RunStore.JsonOptions) { WriteIndented = true });

    private static SweepsJson? s_indented;
}
