using Microsoft.AspNetCore.Html;

namespace ScalingInteractive.Runner;

/// <summary>
/// Globals visible to notebook code in the runner, mirroring what the .NET Interactive C# kernel offers
/// (<c>display(...)</c> returning a value that can be updated, <c>HTML(...)</c>).
/// </summary>
public sealed class RunnerGlobals
{
    internal CellOutputs? Outputs { get; set; }

    /// <summary>Values handed from magic commands to the script (see <see cref="RunnerHost.SetVariableAsync"/>).</summary>
    public Dictionary<string, object?> __si_vars { get; } = new();

    /// <summary>Displays a value in the current cell's output; returns a handle whose Update replaces it.</summary>
    public DisplayedOutput display(object? value, params string[] mimeTypes) =>
        (Outputs ?? throw new InvalidOperationException("display() was called outside a cell.")).Add(value, mimeTypes.FirstOrDefault());

    /// <summary>Wraps a string so it is displayed as HTML.</summary>
    public IHtmlContent HTML(string content) => new HtmlString(content);
}

/// <summary>A displayed output, updatable in place like the kernel's DisplayedValue.</summary>
public sealed class DisplayedOutput : ScalingInteractive.Commands.IDisplayHandle
{
    private readonly Action<object?>? _onUpdate;

    internal DisplayedOutput(object? value, string? mimeType, Action<object?>? onUpdate)
    {
        Value = value;
        MimeType = mimeType;
        _onUpdate = onUpdate;
    }

    /// <summary>The current value.</summary>
    public object? Value { get; private set; }

    /// <summary>The requested MIME type (null: text/html).</summary>
    public string? MimeType { get; }

    /// <summary>Replaces the displayed value.</summary>
    public void Update(object value)
    {
        Value = value;
        _onUpdate?.Invoke(value);
    }
}

/// <summary>The outputs of one cell, in display order.</summary>
internal sealed class CellOutputs(Action<object?>? onUpdate)
{
    public List<DisplayedOutput> Items { get; } = new();

    public DisplayedOutput Add(object? value, string? mimeType)
    {
        var output = new DisplayedOutput(value, mimeType, onUpdate);
        Items.Add(output);
        return output;
    }
}
