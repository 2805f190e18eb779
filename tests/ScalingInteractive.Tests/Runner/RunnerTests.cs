using System.Text.RegularExpressions;
using ScalingInteractive.Display;
using ScalingInteractive.Hosting;
using ScalingInteractive.Runner;

namespace ScalingInteractive.Tests.Runner;

[Collection("Formatter state")]
public class RunnerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-runner-").FullName;

    public RunnerTests()
    {
        Formatters.Register();
        PlotlyAssets.DocumentProvidesScript = true;
    }

    public void Dispose()
    {
        PlotlyAssets.DocumentProvidesScript = false;
        Directory.Delete(_dir, recursive: true);
    }

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static Task<NotebookResult> Run(string path) => new NotebookRunner(TextWriter.Null).RunAsync(path, CancellationToken.None);

    [Fact]
    public void Dib_cells_split_at_kernel_lines_and_meta_is_dropped()
    {
        var cells = Notebook.ParseDib("#!meta\n{\"x\":1}\n\n#!markdown\n# Title\n\n#!csharp\nvar a = 1;\n#!scaling-help\n\n#!html\n<b>x</b>\n");
        Assert.Equal(["markdown", "csharp", "html"], cells.Select(c => c.Kernel));
        Assert.Equal("var a = 1;\n#!scaling-help", cells[1].Source);
    }

    [Fact]
    public async Task Cells_share_one_script_state_and_magic_lines_go_to_the_command_layer()
    {
        string path = Write("ok.dib", "#!csharp\n#r \"nuget: ScalingInteractive, 0.1.0\"\nvar x = 20;\n\n#!csharp\nx + 22\n\n#!csharp\n#!scaling-help --command scaling-help\nConsole.WriteLine(\"printed\");\ndisplay(\"shown\");\n");
        var result = await Run(path);
        Assert.True(result.Succeeded, string.Join("\n", result.Cells.Select(c => c.Error)));
        Assert.Equal(42, Assert.Single(result.Cells[1].Outputs).Value);
        var third = result.Cells[2].Outputs.Select(o => o.Value).ToList();
        Assert.Contains(third, v => v is CommandHelp);
        Assert.Contains("printed\n", third);
        Assert.Contains("shown", third);
    }

    [Fact]
    public async Task A_failing_cell_is_reported_and_later_cells_are_skipped()
    {
        string path = Write("bad.dib", "#!csharp\nvar a = 1;\n\n#!csharp\nthrow new InvalidOperationException(\"boom\");\n\n#!csharp\na\n");
        var result = await Run(path);
        Assert.False(result.Succeeded);
        Assert.Equal([CellStatus.Ok, CellStatus.Failed, CellStatus.Skipped], result.Cells.Select(c => c.Status));
        Assert.Contains("InvalidOperationException: boom", result.Cells[1].Error);
    }

    [Theory]
    [InlineData("#!csharp\nint x = \"text\";\n", "Compilation failed")]
    [InlineData("#!csharp\n#!scaling-help --bogus 1\n", "unknown parameter '--bogus'")]
    [InlineData("#!csharp\n#!scaling-nothing\n", "Unknown magic command '#!scaling-nothing'. Valid commands: #!scaling-help")]
    [InlineData("#!csharp\n#r \"nuget: Newtonsoft.Json, 13.0.1\"\n", "resolves only ScalingInteractive, TorchSharp-cpu")]
    [InlineData("#!fsharp\nlet x = 1\n", "Cells in 'fsharp' are not supported")]
    public async Task Errors_are_clear_messages(string notebook, string expected)
    {
        var result = await Run(Write("e.dib", notebook));
        var failed = Assert.Single(result.Cells, c => c.Status == CellStatus.Failed);
        Assert.Contains(expected, failed.Error);
        Assert.DoesNotContain("   at ", failed.Error!.Contains("Compilation") ? "" : failed.Error);
    }

    [Fact]
    public async Task Missing_and_non_notebook_files_are_reported_without_crashing()
    {
        var missing = await Run(Path.Combine(_dir, "nope.dib"));
        Assert.Contains("does not exist", missing.LoadError);
        var text = await Run(Write("notes.txt", "hello"));
        Assert.Contains("expected a .dib or .ipynb file", text.LoadError);
        var badJson = await Run(Write("broken.ipynb", "{ not json"));
        Assert.Contains("not valid JSON", badJson.LoadError);
    }

    [Fact]
    public async Task Ipynb_notebooks_run_too()
    {
        string ipynb = """
        {"cells":[
          {"cell_type":"markdown","metadata":{},"source":["# Hi"]},
          {"cell_type":"code","metadata":{"dotnet_interactive":{"language":"csharp"}},"source":["var y = 2;\n","y * 21"],"outputs":[]}
        ],"metadata":{},"nbformat":4,"nbformat_minor":5}
        """;
        var result = await Run(Write("n.ipynb", ipynb));
        Assert.True(result.Succeeded);
        Assert.Equal(42, Assert.Single(result.Cells[1].Outputs).Value);
    }

    [Fact]
    public async Task Getting_started_notebook_renders_a_self_contained_report_with_one_plotly_script()
    {
        NotebookSession.Quick = true;
        var result = await Run(Path.Combine(RepoPaths.Notebooks, "00-getting-started.dib"));
        Assert.True(result.Succeeded, string.Join("\n", result.Cells.Select(c => c.Error)));
        string report = ReportWriter.Write(result, _dir);
        string html = File.ReadAllText(report);
        Assert.Single(Regex.Matches(html, "plotly.js v2.28.0"));
        Assert.Contains(PlotlyAssets.ChartMarker, html);
        Assert.DoesNotMatch(new Regex("<script[^>]+src=", RegexOptions.IgnoreCase), html);
        Assert.Contains("<h1 id=\"getting-started-with-scalinginteractive\">", html);
        Assert.Contains("#!scaling-help", html);
    }
}

/// <summary>CI's proof that every bundled notebook runs: each notebook in notebooks/ runs in quick mode with ../shared/data.</summary>
[Collection("Formatter state")]
public class BundledNotebookTests
{
    public static TheoryData<string> BundledNotebooks()
    {
        var data = new TheoryData<string>();
        foreach (string path in Directory.GetFiles(RepoPaths.Notebooks).Where(p => p.EndsWith(".dib") || p.EndsWith(".ipynb")).Order())
            data.Add(Path.GetFileName(path));
        return data;
    }

    [Theory]
    [MemberData(nameof(BundledNotebooks))]
    public async Task Bundled_notebook_runs_in_quick_mode(string notebook)
    {
        Formatters.Register();
        NotebookSession.Quick = true;
        NotebookSession.DataDirectory = RepoPaths.SharedData;
        var result = await new NotebookRunner(TextWriter.Null).RunAsync(Path.Combine(RepoPaths.Notebooks, notebook), CancellationToken.None);
        Assert.True(result.Succeeded, string.Join("\n", result.Cells.Where(c => c.Error is not null).Select(c => c.Error)));
        Assert.Contains(result.Cells, c => c.Status == CellStatus.Ok);
    }
}
