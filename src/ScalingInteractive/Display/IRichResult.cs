namespace ScalingInteractive.Display;

/// <summary>
/// A public result type with rich display. Every type implementing it gets an HTML and a plain-text formatter
/// registered by <see cref="Formatters.Register"/>, and can be saved as JSON.
/// </summary>
public interface IRichResult
{
    /// <summary>An HTML fragment (self-contained; charts need the Plotly script, see <see cref="PlotlyAssets"/>).</summary>
    string ToHtml();

    /// <summary>A plain-text rendering for consoles and text/plain front ends.</summary>
    string ToText();

    /// <summary>A JSON document of the result's data.</summary>
    string ToJson();
}
