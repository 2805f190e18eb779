using System.Diagnostics;
using ScalingInteractive.Runner;

namespace ScalingInteractive.Tests.Runner;

/// <summary>The runner's own behaviour: bad input, notebook reading, the .ipynb copies of the bundled notebooks.</summary>
public class RunnerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-runner-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Missing_and_non_notebook_files_get_clear_messages()
    {
        Assert.Contains("does not exist", Assert.Throws<NotebookFormatException>(() => NotebookRunner.Load(Path.Combine(_dir, "nope.dib"))).Message);
        Assert.Contains("expected a .dib or .ipynb file", Assert.Throws<NotebookFormatException>(() => NotebookRunner.Load(Write("notes.txt", "hello"))).Message);
        Assert.Contains("could not be read as a notebook", Assert.Throws<NotebookFormatException>(() => NotebookRunner.Load(Write("broken.ipynb", "{ not json"))).Message);
        Assert.Contains("is a folder", Assert.Throws<NotebookFormatException>(() => NotebookRunner.Load(_dir)).Message);
    }

    [Fact]
    public async Task The_runner_given_only_a_missing_file_reports_it_and_writes_the_index_into_a_new_folder()
    {
        // It used to report the file, then die with DirectoryNotFoundException writing index.html (exit 134).
        string outDir = Path.Combine(_dir, "new-folder", "reports");
        var (exitCode, output) = await RunRunnerAsync("missing.dib", "--out", outDir);
        Assert.Equal(1, exitCode);
        Assert.Contains("does not exist", output);
        Assert.DoesNotContain("Unhandled exception", output);
        Assert.True(File.Exists(Path.Combine(outDir, "index.html")), output);
        Assert.Contains("missing.dib", File.ReadAllText(Path.Combine(outDir, "index.html")));
    }

    [Fact]
    public async Task Bad_command_lines_exit_with_2_and_say_why()
    {
        var (noOut, text1) = await RunRunnerAsync("x.dib");
        Assert.Equal(2, noOut);
        Assert.Contains("--out DIR is required", text1);
        var (badTimeout, text2) = await RunRunnerAsync("x.dib", "--out", _dir, "--cell-timeout", "soon");
        Assert.Equal(2, badTimeout);
        Assert.Contains("--cell-timeout 'soon'", text2);
    }

    [Fact]
    public void Dib_cells_are_read_as_the_kernel_reads_them()
    {
        var document = NotebookRunner.Load(Write("a.dib", "#!meta\n\n{\"kernelInfo\":{\"defaultKernelName\":\"csharp\",\"items\":[{\"name\":\"csharp\"},{\"name\":\"markdown\",\"languageName\":\"markdown\"}]}}\n\n#!markdown\n\n# Title\n\n#!csharp\n\nvar a = 1;\n#!scaling-help\n"));
        Assert.Equal(["markdown", "csharp"], document.Elements.Select(e => e.KernelName));
        Assert.Equal("var a = 1;\n#!scaling-help", document.Elements[1].Contents);
    }

    [Fact]
    public void A_folder_runs_each_dib_once_and_ipynb_files_without_a_dib()
    {
        Write("a.dib", "#!csharp\n1");
        Write("a.ipynb", "{}");
        Write("b.ipynb", "{}");
        Write("c.txt", "");
        Assert.Equal(["a.dib", "b.ipynb"], NotebookRunner.NotebooksIn(_dir).Select(Path.GetFileName));
    }

    public static TheoryData<string> Dibs()
    {
        var data = new TheoryData<string>();
        foreach (string dib in Directory.GetFiles(RepoPaths.Notebooks, "*.dib").Order()) data.Add(Path.GetFileName(dib));
        return data;
    }

    [Theory]
    [MemberData(nameof(Dibs))]
    public void Each_bundled_notebook_ships_as_ipynb_with_the_same_cells(string dib)
    {
        // Jupyter users open the .ipynb; regenerate with: dotnet run --project src/ScalingInteractive.Runner -- export-ipynb notebooks
        string ipynb = Path.Combine(RepoPaths.Notebooks, Path.ChangeExtension(dib, ".ipynb"));
        Assert.True(File.Exists(ipynb), $"{Path.GetFileName(ipynb)} is missing; run the runner's export-ipynb.");
        var fromDib = NotebookRunner.Load(Path.Combine(RepoPaths.Notebooks, dib)).Elements;
        var shipped = NotebookRunner.Load(ipynb).Elements;
        Assert.Equal(fromDib.Select(e => (e.KernelName, e.Contents)), shipped.Select(e => (e.KernelName, e.Contents)));
        Assert.Contains("\".net-csharp\"", File.ReadAllText(ipynb));
    }

    /// <summary>Runs the built runner as a user would (its own process), returning the exit code and all output.</summary>
    internal static async Task<(int ExitCode, string Output)> RunRunnerAsync(params string[] arguments)
    {
        string dll = typeof(NotebookRunner).Assembly.Location;
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepoPaths.Root };
        info.ArgumentList.Add(dll);
        foreach (string a in arguments) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        return (process.ExitCode, await stdout + await stderr);
    }
}
