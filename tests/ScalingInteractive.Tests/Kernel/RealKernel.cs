using ScalingInteractive.Runner;

namespace ScalingInteractive.Tests.Kernel;

/// <summary>
/// Runs notebooks and cells in the REAL .NET Interactive kernel (the dotnet-interactive tool pinned in
/// .config/dotnet-tools.json, over stdio as VS Code drives it) with the package this test build packed.
/// </summary>
internal static class RealKernel
{
    private static readonly Lazy<string> PreparedFeed = new(() =>
    {
        string feed = PackageFeed.BuiltFeed
            ?? throw new InvalidOperationException("The runner's build did not pack ScalingInteractive into artifacts/feed (build the solution first).");
        using var restore = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("dotnet", "tool restore")
        {
            WorkingDirectory = RepoPaths.Root, RedirectStandardOutput = true, RedirectStandardError = true,
        })!;
        restore.WaitForExit();
        Assert.True(restore.ExitCode == 0, "dotnet tool restore failed: " + restore.StandardError.ReadToEnd());
        return feed;
    });

    /// <summary>The feed with the package built with these tests (each kernel extracts it into its own packages folder).</summary>
    public static string Feed => PreparedFeed.Value;

    public static RunnerSettings Settings(bool quick = true, IReadOnlyDictionary<string, string>? environment = null) => new()
    {
        Quick = quick,
        DataDirectory = Directory.Exists(RepoPaths.SharedData) ? RepoPaths.SharedData : null,
        PackageFeed = Feed,
        ToolManifestDirectory = RepoPaths.Root,
        CellTimeout = TimeSpan.FromMinutes(15),
        Environment = environment ?? new Dictionary<string, string>(),
    };

    public static Task<NotebookRun> RunNotebookAsync(string path, TextWriter? log = null, RunnerSettings? settings = null) =>
        new NotebookRunner(settings ?? Settings(), log ?? new TestLog()).RunAsync(path, CancellationToken.None);

    /// <summary>Writes the cells as a .dib in a temporary folder and runs it.</summary>
    public static async Task<NotebookRun> RunCellsAsync(params string[] cells)
    {
        string dir = Directory.CreateTempSubdirectory("si-kernel-").FullName;
        try
        {
            string path = Path.Combine(dir, "cells.dib");
            await File.WriteAllTextAsync(path, string.Concat(cells.Select(c => "#!csharp\n\n" + c + "\n\n")));
            return await RunNotebookAsync(path);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The package lines a notebook starts with.</summary>
    public const string LoadPackages = "#r \"nuget: ScalingInteractive, 0.1.0\"\n#r \"nuget: TorchSharp-cpu, 0.107.0\"";

    /// <summary>Every error of the run, one per line, for assertion messages.</summary>
    public static string Describe(NotebookRun run) =>
        (run.LoadError ?? "") + string.Join("\n", run.Cells.Where(c => c.Errors.Count > 0).Select(c => $"[{c.Status}] {c.Source.Split('\n')[0]}: {string.Join(" | ", c.Errors)}"));

    /// <summary>Collects the runner's log (shown in a failing test's message).</summary>
    public sealed class TestLog : StringWriter
    {
        public override string ToString() => base.ToString();
    }
}

