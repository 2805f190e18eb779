using System.Collections.Immutable;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.DotNet.Interactive.Formatting;
using ScalingInteractive.Commands;
using ScalingInteractive.Display;
using ScalingInteractive.Tests.Commands;

namespace ScalingInteractive.Tests.Display;

[Collection("Formatter state")]
public class DisplayTests
{
    public DisplayTests() => Formatters.Register();

    [Fact]
    public void Every_public_result_type_has_html_and_text_formatters()
    {
        Assert.NotEmpty(Formatters.ResultTypes);
        Assert.Contains(typeof(CommandHelp), Formatters.ResultTypes);
        Assert.Contains(typeof(ProgressDisplay), Formatters.ResultTypes);
        // Each result type found by reflection over the library is registered (the probe values build one of each).
        foreach (var value in SampleResults())
        {
            Assert.Contains(value.GetType(), Formatters.ResultTypes);
            var rich = (IRichResult)value;
            Assert.Equal(rich.ToText(), Formatter.ToDisplayString(value, PlainTextFormatter.MimeType));
            // Chart containers get a fresh id per rendering: compare with the ids blanked.
            static string StableIds(string html) => Regex.Replace(html, "si-chart-[0-9a-f]{32}", "si-chart-ID");
            Assert.Contains(StableIds(rich.ToHtml()), StableIds(Formatter.ToDisplayString(value, HtmlFormatter.MimeType)));
            using var _ = JsonDocument.Parse(rich.ToJson());
            // The kernel lists variables through application/json (#!whos, VS Code's Variables view).
            static string StableTime(string json) => Regex.Replace(json, "\"ElapsedSeconds\":[^,}]+", "");
            Assert.Equal(StableTime(rich.ToJson()), StableTime(Formatter.ToDisplayString(value, Formatters.JsonMimeType)));
        }
        // Every result type has a sample here (a new type without one is named in the failure).
        Assert.Empty(Formatters.ResultTypes.Except(SampleResults().Select(r => r.GetType())).Select(t => t.FullName));
    }

    private static IEnumerable<object> SampleResults()
    {
        yield return new CommandHelp(CommandCatalog.All);
        yield return Charts.Lines(new ChartOptions("t", "x", "y", LogY: true), [new Series("a", [1, 2], [1, 2], Lower: [0.9, 1.9], Upper: [1.1, 2.1])]);
        yield return new ProgressDisplay("work", 10, null);
        yield return new ScalingInteractive.IntrinsicDimension.IntrinsicDimensionReport("mnist-mlp", "validation accuracy",
        [
            new("b", "mnist-mlp", "full", 199210, false, false, 0, 0.95, 0.2, 1, false, 199210),
            new("a", "mnist-mlp", "fastfood", 100, false, false, 0, 0.6, 1.2, 1, false, 199210),
            new("c", "mnist-mlp", "fastfood", 1000, false, false, 0, 0.9, 0.4, 1, false, 199210),
        ], resamples: 10);
        foreach (var lora in LoraSpectra.LoraSamples.Results()) yield return lora;
        yield return ScalingInteractive.Tests.Proxies.ProxyDisplaySamples.Run();
        yield return ScalingInteractive.Tests.Proxies.ProxyDisplaySamples.Sweep();
        foreach (var result in Fitting.FittingSamples.All()) yield return result;
        yield return ScalingInteractive.Tests.Sweeps.SweepFixtures.StatusSample();
        var verdict = new ScalingInteractive.Claims.ClaimVerdict("Paper <2024>", "1", "x < y", ScalingInteractive.Claims.ClaimOutcome.Holds, "holds", "x < y - SE",
            "seed control", [new("x", 1), new("y", double.PositiveInfinity, "not reached")]);
        yield return verdict;
        yield return new ScalingInteractive.Claims.VerdictTable("Paper <2024>", ["1", "2"], [verdict]);
    }

    [Fact]
    public void User_text_is_escaped_in_html()
    {
        var help = new CommandHelp([new HostileCommand()]);
        string html = help.ToHtml();
        Assert.DoesNotContain("<script>alert", html);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", html);
        Assert.Contains("&lt;b&gt;", HtmlText.Table(["<b>"], [["x"]]));
    }

    [Fact]
    public void Charts_render_without_any_network_reference()
    {
        var chart = Charts.Lines(new ChartOptions("t</script><b>", "x", "y", LogX: true),
            [new Series("a", [1, 10, 100], [3, 2, 1.5], Lower: [2.9, 1.9, 1.4], Upper: [3.1, 2.1, 1.6])]);
        string html = chart.ToHtml();
        Assert.Contains(PlotlyAssets.ChartMarker, html);
        Assert.DoesNotMatch(new Regex("https?://", RegexOptions.IgnoreCase), html);
        Assert.DoesNotContain("require(", html);
        // The title cannot close the script element early.
        Assert.Single(Regex.Matches(html, "</script>"));
        string script = PlotlyAssets.ScriptTag();
        Assert.Contains("plotly.js v2.28.0", script);
        Assert.Single(Regex.Matches(script, "</script", RegexOptions.IgnoreCase));
        Assert.DoesNotMatch(new Regex("<script[^>]+src=", RegexOptions.IgnoreCase), script); // plotly.js mentions its topojson CDN only for geo maps, unused here
    }

    [Fact]
    public void The_plotly_script_is_included_once_per_session_unless_the_document_provides_it()
    {
        var chart = Charts.Lines(new ChartOptions("t", "x", "y"), [new Series("a", [1, 2], [1, 2])]);
        bool before = PlotlyAssets.DocumentProvidesScript;
        try
        {
            PlotlyAssets.DocumentProvidesScript = false;
            PlotlyAssets.ResetSession();
            string first = Formatter.ToDisplayString(chart, HtmlFormatter.MimeType);
            string second = Formatter.ToDisplayString(chart, HtmlFormatter.MimeType);
            Assert.Contains("plotly.js v2.28.0", first);
            Assert.DoesNotContain("plotly.js v2.28.0", second);
            Assert.Contains(PlotlyAssets.ChartMarker, second);
            PlotlyAssets.DocumentProvidesScript = true;
            PlotlyAssets.ResetSession();
            Assert.DoesNotContain("plotly.js v2.28.0", Formatter.ToDisplayString(chart, HtmlFormatter.MimeType));
        }
        finally
        {
            PlotlyAssets.DocumentProvidesScript = before;
        }
    }

    [Fact]
    public void Progress_updates_in_place_and_is_throttled()
    {
        var host = new TestHost();
        var previous = ProgressDisplay.MinimumInterval;
        ProgressDisplay.MinimumInterval = TimeSpan.FromHours(1);
        try
        {
            var progress = (ProgressDisplay)((ICommandHost)host).CreateProgress("sweep", 1000);
            for (int i = 1; i <= 1000; i++) progress.Report(i, $"run {i}", best: "loss 2.1");
            progress.Complete("finished");
            var handle = Assert.Single(host.Shown);
            Assert.Same(progress, handle.Value);
            Assert.Equal(2, handle.Updates); // the first report and the completion; the rest were throttled
            Assert.Contains("1000/1000", progress.ToText());
            Assert.Contains("done", progress.ToText());
            Assert.Contains("best: loss 2.1", progress.ToText());
            Assert.Contains("width:100.0%", progress.ToHtml());
        }
        finally
        {
            ProgressDisplay.MinimumInterval = previous;
        }
    }

    [Fact]
    public void Eta_follows_the_mean_time_per_item()
    {
        var progress = new ProgressDisplay("x", 4, null);
        Assert.Null(progress.EstimatedRemaining);
        Thread.Sleep(40);
        progress.Report(1);
        var eta = progress.EstimatedRemaining!.Value;
        Assert.InRange(eta.TotalMilliseconds, 3 * 35, 3 * 40 * 20);
    }

    private sealed class HostileCommand : MagicCommand
    {
        public override string Name => "#!x<script>alert(1)</script>";
        public override string Description => "<script>alert(1)</script>";
        public override ImmutableArray<CommandParameter> Parameters { get; } = [new("--p", typeof(string), "<b>bold</b>")];
        public override Task InvokeAsync(CommandArguments arguments, ICommandHost host) => Task.CompletedTask;
    }
}

[CollectionDefinition("Formatter state", DisableParallelization = true)]
public class FormatterStateCollection;
