using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis.Scripting;
using ScalingInteractive.Commands;

namespace ScalingInteractive.Runner;

/// <summary>Outcome of one cell.</summary>
public enum CellStatus
{
    /// <summary>Ran without error.</summary>
    Ok,
    /// <summary>Threw or failed to compile.</summary>
    Failed,
    /// <summary>Not run because an earlier cell failed (as "Run All" does in a notebook front end).</summary>
    Skipped,
    /// <summary>Markdown or raw HTML: rendered, nothing to run.</summary>
    Text,
}

/// <summary>One executed cell with its outputs.</summary>
public sealed record CellResult(NotebookCell Cell, CellStatus Status, TimeSpan Elapsed, IReadOnlyList<DisplayedOutput> Outputs, string? Error);

/// <summary>One executed notebook.</summary>
public sealed record NotebookResult(string Path, IReadOnlyList<CellResult> Cells, string? LoadError)
{
    /// <summary>True when the notebook loaded and no cell failed.</summary>
    public bool Succeeded => LoadError is null && Cells.All(c => c.Status is CellStatus.Ok or CellStatus.Text);
}

/// <summary>
/// Runs notebooks cell by cell: C# through one Roslyn script state per notebook, <c>#!</c> magic lines through the
/// library's command catalogue (the same code the kernel extension forwards to), markdown and HTML rendered.
/// </summary>
public sealed class NotebookRunner(TextWriter log)
{
    private static readonly Regex NugetReference = new(@"^\s*#r\s+""nuget:\s*([^,""\s]+)[^""]*""\s*$", RegexOptions.Compiled);
    private static readonly Regex NugetSource = new(@"^\s*#i\s+""nuget:[^""]*""\s*$", RegexOptions.Compiled);

    /// <summary>Packages that resolve to the assemblies the runner was built with.</summary>
    public static readonly IReadOnlyList<string> ResolvedPackages = ["ScalingInteractive", "TorchSharp-cpu", "TorchSharp"];

    /// <summary>Runs one notebook.</summary>
    public async Task<NotebookResult> RunAsync(string path, CancellationToken cancellationToken)
    {
        Notebook notebook;
        try
        {
            notebook = Notebook.Load(path);
        }
        catch (NotebookFormatException e)
        {
            log.WriteLine($"[failed] {path}: {e.Message}");
            return new NotebookResult(path, [], e.Message);
        }

        var session = new ScriptSession();
        var results = new List<CellResult>();
        bool failed = false;
        string name = Path.GetFileName(path);
        for (int i = 0; i < notebook.Cells.Count; i++)
        {
            var cell = notebook.Cells[i];
            if (cell.Kernel is "markdown" or "html")
            {
                results.Add(new CellResult(cell, CellStatus.Text, TimeSpan.Zero, [], null));
                continue;
            }
            if (failed || cancellationToken.IsCancellationRequested)
            {
                results.Add(new CellResult(cell, CellStatus.Skipped, TimeSpan.Zero, [], null));
                log.WriteLine($"[skipped] {name} cell {i + 1}/{notebook.Cells.Count}");
                continue;
            }
            var outputs = new CellOutputs(ConsoleProgress.OnUpdate);
            session.Globals.Outputs = outputs;
            var clock = Stopwatch.StartNew();
            string? error = null;
            // Console output of the cell becomes a text output, as in the kernel.
            var consoleText = new StringWriter();
            var originalOut = Console.Out;
            Console.SetOut(consoleText);
            try
            {
                await RunCellAsync(cell, session, outputs, cancellationToken);
            }
            catch (Exception e)
            {
                error = Describe(e);
                failed = true;
            }
            finally
            {
                Console.SetOut(originalOut);
            }
            clock.Stop();
            if (consoleText.ToString().Length > 0) outputs.Items.Insert(0, new DisplayedOutput(consoleText.ToString(), "text/plain", null));
            var status = error is null ? CellStatus.Ok : CellStatus.Failed;
            results.Add(new CellResult(cell, status, clock.Elapsed, outputs.Items, error));
            log.WriteLine($"[{(status == CellStatus.Ok ? "ok" : "failed")}] {name} cell {i + 1}/{notebook.Cells.Count} ({clock.Elapsed.TotalSeconds:F2} s)");
            if (error is not null) log.WriteLine("    " + error.Replace("\n", "\n    "));
        }
        return new NotebookResult(path, results, null);
    }

    private static async Task RunCellAsync(NotebookCell cell, ScriptSession session, CellOutputs outputs, CancellationToken cancellationToken)
    {
        if (cell.Kernel != "csharp")
            throw new NotSupportedException($"Cells in '{cell.Kernel}' are not supported by the headless runner; it runs C#, markdown and HTML cells.");

        var code = new StringBuilder();
        async Task FlushCodeAsync()
        {
            if (code.ToString().Trim().Length == 0) { code.Clear(); return; }
            object? value = await session.RunAsync(code.ToString(), cancellationToken);
            code.Clear();
            if (value is not null) outputs.Add(value, null);
        }

        foreach (string line in cell.Source.Split('\n'))
        {
            string trimmed = line.Trim();
            var nuget = NugetReference.Match(line);
            if (nuget.Success)
            {
                string package = nuget.Groups[1].Value;
                if (!ResolvedPackages.Contains(package, StringComparer.OrdinalIgnoreCase))
                    throw new CommandException($"#r \"nuget: {package}\": the headless runner resolves only {string.Join(", ", ResolvedPackages)} (to the assemblies it was built with); it cannot download other packages.");
                code.Append('\n'); // keep line numbers of later code meaningful
                continue;
            }
            if (NugetSource.IsMatch(line)) { code.Append('\n'); continue; }
            if (trimmed.StartsWith("#!", StringComparison.Ordinal))
            {
                await FlushCodeAsync();
                var host = new RunnerHost(session, outputs, cancellationToken);
                await CommandCatalog.InvokeAsync(trimmed, host);
                await session.FlushVariablesAsync(cancellationToken);
                continue;
            }
            code.Append(line).Append('\n');
        }
        await FlushCodeAsync();
    }

    /// <summary>A message for the report: user errors as their message, compile errors with diagnostics, others with type and origin.</summary>
    internal static string Describe(Exception e)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } aggregate) e = aggregate.InnerException!;
        if (e is CompilationErrorException c) return "Compilation failed:\n" + string.Join("\n", c.Diagnostics.Select(d => d.ToString()));
        return CommandCatalog.UserErrorMessage(e) ?? $"{e.GetType().Name}: {e.Message}\n{FirstFrames(e)}";
    }

    private static string FirstFrames(Exception e) =>
        string.Join("\n", (e.StackTrace ?? "").Split('\n').Take(6).Select(l => l.TrimEnd()));
}
