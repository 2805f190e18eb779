using System.Reflection;
using Microsoft.DotNet.Interactive.Formatting;

namespace ScalingInteractive.Display;

/// <summary>
/// Registers HTML and plain-text formatters for every public result type of this library with
/// Microsoft.DotNet.Interactive.Formatting. Works inside the kernel (where the kernel's copy of that assembly is
/// the one loaded) and outside it (runner, tests).
/// </summary>
public static class Formatters
{
    private static readonly object Gate = new();
    private static bool _registered;

    /// <summary>Every public concrete type of this library that implements <see cref="IRichResult"/>.</summary>
    public static IReadOnlyList<Type> ResultTypes { get; } = typeof(Formatters).Assembly.GetExportedTypes()
        .Where(t => typeof(IRichResult).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
        .OrderBy(t => t.FullName, StringComparer.Ordinal)
        .ToArray();

    /// <summary>Registers the formatters once per process; later calls do nothing.</summary>
    public static void Register()
    {
        lock (Gate)
        {
            if (_registered) return;
            var generic = typeof(Formatters).GetMethod(nameof(RegisterFor), BindingFlags.NonPublic | BindingFlags.Static)!;
            foreach (var type in ResultTypes) generic.MakeGenericMethod(type).Invoke(null, null);
            _registered = true;
        }
    }

    private static void RegisterFor<T>() where T : IRichResult
    {
        Formatter.Register<T>((value, writer) => writer.Write(PlotlyAssets.WithScriptIfNeeded(value.ToHtml())), HtmlFormatter.MimeType);
        Formatter.Register<T>((value, writer) => writer.Write(value.ToText()), PlainTextFormatter.MimeType);
        // The kernel asks for application/json when it lists variables (#!whos, VS Code's Variables view) or shares a
        // value: the default serializer fails on these types (tensors, delegates, cycles) and the variable then vanished
        // from the list. Each result has its own JSON.
        Formatter.Register<T>((value, writer) => writer.Write(value.ToJson()), JsonMimeType);
    }

    /// <summary>The mime type the kernel uses for variable values.</summary>
    public const string JsonMimeType = "application/json";
}
