using System.Reflection;
using System.Runtime.Loader;

namespace ScalingInteractive.Display;

/// <summary>
/// Runs Plotly.NET in a private <see cref="AssemblyLoadContext"/>. Plotly.NET 6.0.0 needs FSharp.Core 10.1.x, while the
/// .NET Interactive kernel has already loaded its own FSharp.Core 10.0.0.0 into the default context, where a second
/// version cannot load. The bridge (ScalingInteractive.Plotting) and all its dependencies are embedded in this
/// assembly as manifest resources and loaded from them, so this works wherever ScalingInteractive.dll is: the kernel
/// (NuGet cache), file-based apps, tests, published apps. Only strings cross the boundary.
/// </summary>
internal static class PlotlyHost
{
    private const string ResourcePrefix = "ScalingInteractive.Plotting.Bundle/";
    private const string BridgeAssembly = "ScalingInteractive.Plotting";

    private static readonly Lazy<Bridge> Instance = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The Plotly figure JSON of a chart spec (JSON of <see cref="Plotting.ChartSpec"/>).</summary>
    public static string FigureJson(string chartSpecJson) => Instance.Value.FigureJson(chartSpecJson);

    /// <summary>plotly.js as embedded in Plotly.NET.</summary>
    public static string PlotlyJs() => Instance.Value.PlotlyJs();

    /// <summary>The context the bridge runs in (for tests), loading it if needed.</summary>
    internal static AssemblyLoadContext Context => Instance.Value.Context;

    private sealed record Bridge(AssemblyLoadContext Context, Func<string, string> FigureJson, Func<string> PlotlyJs);

    private static Bridge Load()
    {
        var host = typeof(PlotlyHost).Assembly;
        if (host.GetManifestResourceInfo(ResourcePrefix + BridgeAssembly + ".dll") is null)
            throw new InvalidOperationException($"{host.GetName().Name}.dll does not embed the Plotly bridge ({ResourcePrefix}{BridgeAssembly}.dll); it was built without the EmbedPlottingBundle target.");
        var context = new PlottingLoadContext(host);
        var bridge = context.LoadFromAssemblyName(new AssemblyName(BridgeAssembly));
        var type = bridge.GetType("ScalingInteractive.Plotting.PlotlyBridge", throwOnError: true)!;
        // Bound once: later calls cost a delegate invocation, not reflection.
        return new Bridge(context,
            type.GetMethod("FigureJson", [typeof(string)])!.CreateDelegate<Func<string, string>>(),
            type.GetMethod("PlotlyJs", Type.EmptyTypes)!.CreateDelegate<Func<string>>());
    }

    /// <summary>
    /// Resolves the bundled assemblies (and only those) from the embedded copies; everything else, System.* above
    /// all, falls through to the default context, so strings and delegates are the same types on both sides.
    /// </summary>
    private sealed class PlottingLoadContext(Assembly host) : AssemblyLoadContext("ScalingInteractive.Plotting", isCollectible: false)
    {
        private readonly HashSet<string> _bundled = host.GetManifestResourceNames()
            .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".dll", StringComparison.Ordinal))
            .Select(n => n[ResourcePrefix.Length..^".dll".Length])
            .ToHashSet(StringComparer.OrdinalIgnoreCase);

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            // The runtime calls Load once per name and caches the result in this context.
            if (assemblyName.Name is not { } name || !_bundled.Contains(name)) return null;
            using var stream = host.GetManifestResourceStream(ResourcePrefix + name + ".dll")!;
            return LoadFromStream(stream);
        }
    }
}
