using ScalingInteractive.Runner;

namespace ScalingInteractive.Tests.Kernel;

/// <summary>
/// CI's proof that every bundled notebook works where users run it: each one, in quick mode, through the real
/// .NET Interactive kernel with the package built here, with zero failed cells, zero CommandFailed/ErrorProduced
/// events and zero error diagnostics, and every ScalingInteractive command display carrying text/html and text/plain.
/// </summary>
public class BundledNotebookTests
{
    public static TheoryData<string> BundledNotebooks()
    {
        var data = new TheoryData<string>();
        foreach (string path in NotebookRunner.NotebooksIn(RepoPaths.Notebooks).Where(p => p.EndsWith(".dib"))) data.Add(Path.GetFileName(path));
        return data;
    }

    /// <summary>Notebooks that judge a paper's claims, with the number of claims their verdict table must hold.</summary>
    private static readonly Dictionary<string, int> ClaimsJudged = new()
    {
        ["01-fitting-scaling-laws.dib"] = 7,
        ["02-small-scale-proxies.dib"] = 8,
        ["03-intrinsic-dimension.dib"] = 7,
        ["04-lora-vs-full-spectra.dib"] = 6,
    };

    [SharedDataTheory]
    [MemberData(nameof(BundledNotebooks))]
    public async Task Bundled_notebook_runs_in_the_real_kernel_in_quick_mode(string notebook)
    {
        var log = new RealKernel.TestLog();
        var run = await RealKernel.RunNotebookAsync(Path.Combine(RepoPaths.Notebooks, notebook), log);
        Assert.True(run.Succeeded, RealKernel.Describe(run) + "\n" + log);
        var code = run.Cells.Where(c => c.Status != CellStatus.Text).ToList();
        Assert.All(code, c => Assert.Empty(c.Errors));
        Assert.Contains(code, c => !c.Injected);
        // Displays of our magic commands (progress and results) carry both mime types: VS Code shows the HTML,
        // Jupyter front ends, logs and the executed .ipynb keep the text.
        var commandCells = code.Where(c => c.Source.Split('\n').Any(l => l.TrimStart().StartsWith("#!") && !l.Contains("#!whos") && !l.Contains("#!who "))).ToList();
        foreach (var cell in commandCells)
            foreach (var output in cell.Outputs.Where(o => o.Kind == "display"))
            {
                Assert.True(output.Html is not null, $"a display of '{cell.Source.Split('\n')[0]}' has no text/html");
                Assert.True(output.PlainText is not null, $"a display of '{cell.Source.Split('\n')[0]}' has no text/plain");
            }
        // A notebook that judges a paper's claims ends with its verdict table: present once, every claim judged.
        if (ClaimsJudged.TryGetValue(notebook, out int claims))
        {
            var tables = code.SelectMany(c => c.Outputs).Select(o => o.Html).Where(h => h is not null && h.Contains("class=\"si-verdicts\"")).ToList();
            var table = Assert.Single(tables);
            Assert.Contains("data-complete=\"true\"", table);
            Assert.Contains($"data-claims=\"{claims}\" data-judged=\"{claims}\"", table);
        }
        // The executed notebook and the report are written.
        string dir = Directory.CreateTempSubdirectory("si-nb-").FullName;
        try
        {
            string ipynb = ReportWriter.WriteIpynb(run, dir);
            var executed = NotebookRunner.Load(ipynb);
            Assert.Equal(run.Cells.Count, executed.Elements.Count);
            Assert.Contains(executed.Elements, e => e.Outputs.Count > 0);
            Assert.True(new FileInfo(ReportWriter.WriteHtml(run, dir)).Length > 0);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
