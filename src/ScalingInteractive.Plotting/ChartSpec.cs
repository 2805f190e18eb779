using System.Text.Json;
using System.Text.Json.Serialization;

// Compiled into both ScalingInteractive (Display/ChartSpec.cs, a link) and ScalingInteractive.Plotting: the JSON
// wire format between the library and the Plotly.NET bridge, which live in different AssemblyLoadContexts.
namespace ScalingInteractive.Plotting;

/// <summary>A whole chart: title, axes and traces, drawn in order.</summary>
internal sealed record ChartSpec(string Title, AxisSpec XAxis, AxisSpec YAxis, IReadOnlyList<TraceSpec> Traces);

/// <summary>An axis: its title and scale (<c>null</c>: leave Plotly's default type).</summary>
internal sealed record AxisSpec(string Title, bool? Log = null);

/// <summary>One trace. <see cref="Type"/> is <see cref="Scatter"/> (uses X, Y and the styling) or <see cref="Heatmap"/> (uses X, Y and Z).</summary>
internal sealed record TraceSpec(
    string Type,
    string? Name,
    IReadOnlyList<double> X,
    IReadOnlyList<double> Y,
    bool Markers = false,
    bool ShowLegend = true,
    double? Opacity = null,
    bool FillToNextY = false,
    IReadOnlyList<IReadOnlyList<double>>? Z = null,
    bool ReverseYAxis = false)
{
    public const string Scatter = "scatter";
    public const string Heatmap = "heatmap";
}

internal static class ChartSpecJson
{
    public static string Serialize(ChartSpec spec) => JsonSerializer.Serialize(spec, ChartSpecContext.Default.ChartSpec);

    public static ChartSpec Deserialize(string json) =>
        JsonSerializer.Deserialize(json, ChartSpecContext.Default.ChartSpec) ?? throw new ArgumentException("The chart spec is JSON null.", nameof(json));
}

/// <summary>
/// Source-generated metadata (reflection-based serialisation is off in C# file-based apps and native AOT). Diverged runs
/// produce NaN and infinities; they must survive the trip.
/// </summary>
[JsonSourceGenerationOptions(NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ChartSpec))]
internal sealed partial class ChartSpecContext : JsonSerializerContext;
