using System.Diagnostics;
using System.Reflection;
using System.Runtime.Loader;
using System.Text.Json;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.DotNet.Interactive.Formatting;
using ScalingInteractive.Display;

namespace ScalingInteractive.Tests.Display;

/// <summary>
/// Charts are drawn by Plotly.NET in a private load context (PlotlyHost), because Plotly.NET 6 needs FSharp.Core 10.1
/// and the .NET Interactive kernel has FSharp.Core 10.0.0.0 in its default context.
/// </summary>
[Collection("Formatter state")]
public class PlotlyBridgeTests
{
    private const string KernelToolVersion = "1.0.712001";

    public PlotlyBridgeTests() => Formatters.Register();

    private static readonly double[] Xs = [1, 10, 100, 1000];

    private static double Law(double x) => 2 + 3 / Math.Sqrt(x);

    private static Chart Sample() => Charts.Lines(new ChartOptions("Loss law", "parameters", "loss", LogX: true, LogY: true),
    [
        new Series("fit", Xs, Xs.Select(Law).ToArray(), Lower: Xs.Select(x => Law(x) - 0.1).ToArray(), Upper: Xs.Select(x => Law(x) + 0.1).ToArray()),
        new Series("data", Xs, [5.1, 2.9, 2.3, 2.1], Markers: true),
    ]);

    [Fact]
    public void Figure_json_has_the_traces_axes_and_bands_of_the_spec()
    {
        using var figure = JsonDocument.Parse(Sample().FigureJson());
        var data = figure.RootElement.GetProperty("data").EnumerateArray().ToArray();
        Assert.Equal(["fit band", "fit band", "fit", "data"], data.Select(t => t.GetProperty("name").GetString()));
        Assert.All(data, t => Assert.Equal("scatter", t.GetProperty("type").GetString()));
        Assert.All(data, t => Assert.Equal(Xs, Doubles(t.GetProperty("x"))));
        Assert.Equal(Xs.Select(x => Law(x) + 0.1), Doubles(data[0].GetProperty("y")));
        Assert.Equal(Xs.Select(x => Law(x) - 0.1), Doubles(data[1].GetProperty("y")));
        Assert.Equal(Xs.Select(Law), Doubles(data[2].GetProperty("y")));
        Assert.Equal([5.1, 2.9, 2.3, 2.1], Doubles(data[3].GetProperty("y")));
        // The band: upper edge, then the lower edge filled up to it, both hidden from the legend.
        Assert.False(data[0].TryGetProperty("fill", out _));
        Assert.Equal("tonexty", data[1].GetProperty("fill").GetString());
        Assert.All(data[..2], t => Assert.False(t.GetProperty("showlegend").GetBoolean()));
        Assert.All(data[..2], t => Assert.Equal(0.25, t.GetProperty("opacity").GetDouble()));
        Assert.Equal(["lines", "lines", "lines", "markers"], data.Select(t => t.GetProperty("mode").GetString()));
        // The series themselves keep Plotly's defaults: shown in the legend, opaque, unfilled.
        Assert.All(data[2..], t => Assert.False(t.TryGetProperty("showlegend", out _) || t.TryGetProperty("opacity", out _) || t.TryGetProperty("fill", out _)));

        var layout = figure.RootElement.GetProperty("layout");
        Assert.Equal("Loss law", layout.GetProperty("title").GetProperty("text").GetString());
        Assert.Equal("log", layout.GetProperty("xaxis").GetProperty("type").GetString());
        Assert.Equal("log", layout.GetProperty("yaxis").GetProperty("type").GetString());
        Assert.Equal("parameters", layout.GetProperty("xaxis").GetProperty("title").GetProperty("text").GetString());
        Assert.Equal("loss", layout.GetProperty("yaxis").GetProperty("title").GetProperty("text").GetString());

        using var linear = JsonDocument.Parse(Charts.Lines(new ChartOptions("t", "x", "y"), [new Series("a", [1, 2], [3, 4])]).FigureJson());
        Assert.Equal("linear", linear.RootElement.GetProperty("layout").GetProperty("xaxis").GetProperty("type").GetString());
    }

    [Fact]
    public void Heatmap_figure_has_z_and_a_reversed_y_axis()
    {
        double[][] z = [[1, 0.5, 0.1], [0.2, 0.9, 0.3]];
        using var figure = JsonDocument.Parse(Charts.Heatmap(new ChartOptions("|cos|", "columns", "rows"), z).FigureJson());
        var trace = Assert.Single(figure.RootElement.GetProperty("data").EnumerateArray());
        Assert.Equal("heatmap", trace.GetProperty("type").GetString());
        var rows = trace.GetProperty("z").EnumerateArray().Select(Doubles).ToArray();
        Assert.Equal(z.Length, rows.Length);
        for (int i = 0; i < z.Length; i++) Assert.Equal(z[i], rows[i]);
        Assert.Equal([0.0, 1, 2], Doubles(trace.GetProperty("x")));
        Assert.Equal([0.0, 1], Doubles(trace.GetProperty("y")));
        var layout = figure.RootElement.GetProperty("layout");
        Assert.Equal("reversed", layout.GetProperty("yaxis").GetProperty("autorange").GetString());
        Assert.Equal("|cos|", layout.GetProperty("title").GetProperty("text").GetString());
        Assert.Equal("columns", layout.GetProperty("xaxis").GetProperty("title").GetProperty("text").GetString());
    }

    [Fact]
    public void Chart_has_html_and_plain_text_formatters()
    {
        var chart = Sample();
        Assert.Contains(typeof(Chart), Formatters.ResultTypes);
        string html = Formatter.ToDisplayString(chart, HtmlFormatter.MimeType);
        Assert.Contains(PlotlyAssets.ChartMarker, html);
        Assert.Contains("\"tonexty\"", html);
        Assert.Contains("height:420px", html);
        Assert.Contains("height:300px", chart.ToHtml(300));
        string text = Formatter.ToDisplayString(chart, PlainTextFormatter.MimeType);
        Assert.Equal(chart.ToText(), text);
        Assert.Contains("Loss law", text);
        Assert.Contains("parameters (log)", text);
        Assert.Contains("fit: 4 points", text);
        Assert.DoesNotContain("band", text);
        using var spec = JsonDocument.Parse(chart.ToJson());
        Assert.Equal(4, spec.RootElement.GetProperty("Traces").GetArrayLength());
    }

    [Fact]
    public void Plotly_runs_in_its_own_context_with_its_own_FSharp_Core()
    {
        _ = Sample().FigureJson();
        var context = PlotlyHost.Context;
        Assert.NotSame(AssemblyLoadContext.Default, context);
        var names = context.Assemblies.Select(a => a.GetName()).ToDictionary(n => n.Name!, n => n.Version!);
        Assert.Contains("Plotly.NET", names.Keys);
        Assert.Equal(new Version(10, 1, 0, 0), names["FSharp.Core"]);
        // Nothing of Plotly.NET leaks into the default context of this process.
        Assert.DoesNotContain(AssemblyLoadContext.Default.Assemblies, a => a.GetName().Name is "Plotly.NET" or "Plotly.NET.CSharp" or "ScalingInteractive.Plotting");
    }

    /// <summary>
    /// The kernel's situation, in a child process: FSharp.Core 10.0.0.0 (the kernel tool's own copy) is on the app's
    /// trusted platform list and loaded first; ScalingInteractive.dll is loaded by path, as the kernel loads packages
    /// from the NuGet cache. With Plotly.NET referenced directly (before PlotlyHost) this failed with
    /// FileNotFoundException for FSharp.Core 10.1.0.0. A child process, because the test host's default context
    /// cannot be made to look like the kernel's for one test; the app is compiled here with Roslyn, so no project.
    /// </summary>
    [Fact]
    public void Charts_render_in_a_process_whose_default_context_holds_FSharp_Core_10_0()
    {
        string kernelFSharpCore = KernelFSharpCore();
        Assert.Equal(new Version(10, 0, 0, 0), AssemblyName.GetAssemblyName(kernelFSharpCore).Version);
        string app = Directory.CreateTempSubdirectory("si-kernel-alc-").FullName;
        try
        {
            File.Copy(kernelFSharpCore, Path.Combine(app, "FSharp.Core.dll"));
            CompileApp(Path.Combine(app, "app.dll"));
            string framework = $"{Environment.Version.Major}.{Environment.Version.Minor}.0";
            File.WriteAllText(Path.Combine(app, "app.runtimeconfig.json"),
                """{"runtimeOptions":{"tfm":"net10.0","framework":{"name":"Microsoft.NETCore.App","version":"VERSION"}}}""".Replace("VERSION", framework, StringComparison.Ordinal));
            var (exit, stdout, stderr) = Run("dotnet", ["exec", Path.Combine(app, "app.dll"), AppContext.BaseDirectory]);
            Assert.True(exit == 0, $"child failed ({exit}):\n{stdout}\n{stderr}");
            var lines = stdout.Split('\n', StringSplitOptions.TrimEntries);
            Assert.Contains("default FSharp.Core 10.0.0.0 default-context=True", lines);
            using var figure = JsonDocument.Parse(lines.Single(l => l.StartsWith("FIGURE ", StringComparison.Ordinal))["FIGURE ".Length..]);
            var data = figure.RootElement.GetProperty("data").EnumerateArray().ToArray();
            Assert.Equal(["s band", "s band", "s"], data.Select(t => t.GetProperty("name").GetString()));
            Assert.Equal([3.0, 2, 1.5], Doubles(data[2].GetProperty("y")));
            Assert.Equal("tonexty", data[1].GetProperty("fill").GetString());
            Assert.False(data[2].TryGetProperty("opacity", out _));
            Assert.Equal("log", figure.RootElement.GetProperty("layout").GetProperty("xaxis").GetProperty("type").GetString());
            Assert.Contains("HTML script=True chart=True", lines);
            Assert.Contains("TEXT Chart: kernel", lines);
        }
        finally
        {
            Directory.Delete(app, recursive: true);
        }
    }

    private const string AppSource = """
        using System;
        using System.IO;
        using System.Reflection;
        using System.Runtime.CompilerServices;
        using System.Runtime.Loader;
        using Microsoft.DotNet.Interactive.Formatting;
        using ScalingInteractive.Display;

        public static class Program
        {
            public static int Main(string[] args)
            {
                string libraryDir = args[0];
                AssemblyLoadContext.Default.Resolving += (context, name) =>
                {
                    string path = Path.Combine(libraryDir, name.Name + ".dll");
                    return File.Exists(path) ? context.LoadFromAssemblyPath(path) : null;
                };
                var fsharp = Assembly.Load(new AssemblyName("FSharp.Core"));
                Console.WriteLine($"default FSharp.Core {fsharp.GetName().Version} default-context={AssemblyLoadContext.GetLoadContext(fsharp) == AssemblyLoadContext.Default}");
                Render();
                return 0;
            }

            [MethodImpl(MethodImplOptions.NoInlining)]
            private static void Render()
            {
                Formatters.Register();
                var chart = Charts.Lines(new ChartOptions("kernel", "x", "y", LogX: true),
                    new[] { new Series("s", new double[] { 1, 10, 100 }, new double[] { 3, 2, 1.5 }, Lower: new double[] { 2.9, 1.9, 1.4 }, Upper: new double[] { 3.1, 2.1, 1.6 }) });
                Console.WriteLine("FIGURE " + chart.FigureJson());
                string html = Formatter.ToDisplayString(chart, "text/html");
                Console.WriteLine($"HTML script={html.Contains("plotly.js v2.28.0")} chart={html.Contains(PlotlyAssets.ChartMarker)}");
                Console.WriteLine("TEXT " + Formatter.ToDisplayString(chart, "text/plain").Split('\n')[0]);
            }
        }
        """;

    private static void CompileApp(string path)
    {
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "netstandard.dll" or "mscorlib.dll")
            .Append(typeof(Chart).Assembly.Location)
            .Append(typeof(Formatter).Assembly.Location)
            .Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create("app",
            [CSharpSyntaxTree.ParseText(AppSource, new CSharpParseOptions(LanguageVersion.Latest))],
            references,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Disable));
        var result = compilation.Emit(path);
        Assert.True(result.Success, "app does not compile:\n" + string.Join("\n", result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
    }

    /// <summary>The kernel tool's FSharp.Core (restored by <c>dotnet tool restore</c> from .config/dotnet-tools.json).</summary>
    private static string KernelFSharpCore()
    {
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string path = Path.Combine(packages, "microsoft.dotnet-interactive", KernelToolVersion, "tools", "net10.0", "any", "FSharp.Core.dll");
        if (!File.Exists(path))
        {
            var (exit, stdout, stderr) = Run("dotnet", ["tool", "restore"], RepoPaths.Root);
            Assert.True(exit == 0 && File.Exists(path), $"dotnet tool restore did not provide {path}:\n{stdout}\n{stderr}");
        }
        return path;
    }

    private static (int Exit, string Stdout, string Stderr) Run(string file, string[] args, string? directory = null)
    {
        var start = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = directory ?? "" };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(300_000), $"{file} timed out");
        return (process.ExitCode, stdout, stderr.Result);
    }

    private static double[] Doubles(JsonElement array) => array.EnumerateArray().Select(e => e.GetDouble()).ToArray();
}
