using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ScalingInteractive.Runs;

/// <summary>Stable keys for runs: the same configuration always gives the same key, so a restarted sweep skips it.</summary>
public static class RunKeys
{
    /// <summary>A short hex key from the JSON of a configuration (camelCase, property order as declared).</summary>
    public static string Of(object configuration)
    {
        string json = JsonSerializer.Serialize(configuration, configuration.GetType(), RunStore.JsonOptions);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(json)))[..16];
    }
}
