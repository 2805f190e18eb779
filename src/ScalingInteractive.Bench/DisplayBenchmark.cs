using System.Diagnostics;
using ScalingInteractive.Display;

namespace ScalingInteractive.Bench;

/// <summary>Rendering cost of the display layer: a chart fragment and the inlined plotly.js.</summary>
public sealed class DisplayBenchmark : IBenchmark
{
    public string Name => "display";
    public string Description => "time to render a 1,000-point chart fragment and the inlined plotly.js script";

    public Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        var x = Enumerable.Range(1, 1000).Select(i => (double)i).ToArray();
        var chart = Charts.Lines(new ChartOptions("bench", "x", "y", LogX: true), [new Series("s", x, x.Select(v => 1 / v).ToArray())]);
        chart.ToHtml(); // warm-up
        var clock = Stopwatch.StartNew();
        const int repeats = 50;
        int bytes = 0;
        for (int i = 0; i < repeats; i++) bytes = chart.ToHtml().Length;
        output.WriteLine($"chart fragment: {clock.Elapsed.TotalMilliseconds / repeats:F2} ms, {bytes / 1024.0:F1} KiB");
        clock.Restart();
        int scriptBytes = PlotlyAssets.ScriptTag().Length;
        output.WriteLine($"plotly.js script tag: {clock.Elapsed.TotalMilliseconds:F1} ms (first use, cached after), {scriptBytes / 1048576.0:F2} MiB, once per document");
        return Task.FromResult(0);
    }
}
