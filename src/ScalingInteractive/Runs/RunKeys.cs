using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace ScalingInteractive.Runs;

/// <summary>Stable keys for runs: the same configuration always gives the same key, so a restarted sweep skips it.</summary>
public static class RunKeys
{
    /// <summary>A short hex key from the JSON of a configuration (camelCase, property order as declared).</summary>
    public static string Of<T>(T configuration, JsonTypeInfo<T> typeInfo) => Hash(JsonSerializer.Serialize(configuration, typeInfo));

    /// <summary>A short hex key from a JSON configuration, written compactly.</summary>
    public static string Of(JsonNode configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return Hash(configuration.ToJsonString(RunStore.JsonOptions));
    }

    /// <summary>
    /// A key from any object, serialised by reflection (notebooks and scripts). Apps that turn reflection off (C#
    /// file-based apps, native AOT) use the <see cref="JsonTypeInfo{T}"/> or <see cref="JsonNode"/> overload.
    /// </summary>
    public static string Of(object configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (configuration is JsonNode node) return Of(node);
        RunStore.EnsureReflection("RunKeys.Of(object)");
        return Hash(JsonSerializer.Serialize(configuration, configuration.GetType(), RunStore.JsonOptions));
    }

    private static string Hash(string json) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(json)))[..16];
}
