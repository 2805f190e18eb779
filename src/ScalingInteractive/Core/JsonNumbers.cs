using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ScalingInteractive.Core;

/// <summary>
/// Numbers of run records and specs as they are written (JSON numbers, and "NaN" / "Infinity" / "-Infinity" strings for
/// non-finite values), read without the reflection-based serializer, which file-based apps and native AOT turn off.
/// </summary>
public static class JsonNumbers
{
    /// <summary>A number field; a missing field or JSON null reads as NaN.</summary>
    public static double Read(JsonNode? node)
    {
        if (node is not JsonValue value) return double.NaN;
        switch (value.GetValueKind())
        {
            case JsonValueKind.Number:
                // Parsed records hold JsonElements; records built in memory hold the CLR number they were made from.
                if (value.TryGetValue(out JsonElement element)) return element.GetDouble();
                if (value.TryGetValue(out double d)) return d;
                if (value.TryGetValue(out long l)) return l;
                if (value.TryGetValue(out int i)) return i;
                if (value.TryGetValue(out float f)) return f;
                if (value.TryGetValue(out decimal m)) return (double)m;
                return double.Parse(value.ToJsonString(), CultureInfo.InvariantCulture);
            case JsonValueKind.String:
                string text = value.GetValue<string>();
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed)
                    ? parsed
                    : throw new FormatException($"'{text}' is not a number (expected a JSON number, \"NaN\", \"Infinity\" or \"-Infinity\").");
            case JsonValueKind.Null:
                return double.NaN;
            default:
                throw new FormatException($"{value.ToJsonString()} is not a number.");
        }
    }

    /// <summary>A JSON array of numbers (each as <see cref="Read"/>); anything else gives an empty array.</summary>
    public static double[] ReadArray(JsonNode? node) => node is JsonArray array ? array.Select(Read).ToArray() : [];
}
