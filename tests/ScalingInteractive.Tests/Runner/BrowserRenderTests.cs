using System.Diagnostics;
using ScalingInteractive.Runner;
using ScalingInteractive.Tests.Kernel;

namespace ScalingInteractive.Tests.Runner;

/// <summary>
/// Runs the getting-started notebook in the real kernel, writes its report, opens it in headless Chromium (Debian's
/// package; .ci/run installs it) with networking disabled and checks that Plotly drew its SVG. Outside CI the test
/// is reported as skipped when Chromium is absent.
/// </summary>
public class BrowserRenderTests
{
    private static string? FindChromium() =>
        new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists);

    [SkippableFact]
    public async Task Report_chart_from_the_real_kernel_draws_in_headless_chromium_without_network()
    {
        string? chromium = FindChromium();
        Needs.Tool("Chromium", chromium is null ? "no chromium, chromium-browser or google-chrome in /usr/bin" : null, "apt-get install chromium");
        string dir = Directory.CreateTempSubdirectory("si-browser-").FullName;
        try
        {
            var run = await RealKernel.RunNotebookAsync(Path.Combine(RepoPaths.Notebooks, "00-getting-started.dib"));
            Assert.True(run.Succeeded, RealKernel.Describe(run));
            string report = ReportWriter.WriteHtml(run, dir);
            string html = File.ReadAllText(report);
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(html, "plotly.js v2.28.0"));
            Assert.DoesNotMatch(new System.Text.RegularExpressions.Regex("<script[^>]+src=", System.Text.RegularExpressions.RegexOptions.IgnoreCase), html);
            var start = new ProcessStartInfo(chromium!)
            {
                ArgumentList =
                {
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--user-data-dir=" + Path.Combine(dir, "profile"),
                    "--proxy-server=127.0.0.1:9", "--virtual-time-budget=10000", "--dump-dom", "file://" + report,
                },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(120_000)) { process.Kill(true); Assert.Fail("Chromium did not finish within 120 s."); }
            string dom = await stdout;
            Assert.True(dom.Contains("class=\"main-svg\""), "Plotly drew no SVG. Chromium said: " + (await stderr)[..Math.Min(2000, (await stderr).Length)]);
            Assert.Contains("class=\"scatterlayer", dom);
            Assert.Contains("Chinchilla loss law", dom);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
