using System.Diagnostics;
using ScalingInteractive.Runner;

// Notebook runner: a client of the real .NET Interactive kernel (what papermill is to Jupyter).
//   dotnet run --project src/ScalingInteractive.Runner -c Release -- NOTEBOOK_OR_FOLDER... --out DIR [--data DIR] [--quick]
//   dotnet run --project src/ScalingInteractive.Runner -c Release -- export-ipynb NOTEBOOK_OR_FOLDER...
// Exit codes: 0 every cell ran, 1 a cell or notebook failed, 2 bad command line.
const string Usage =
    "usage: ScalingInteractive.Runner NOTEBOOK_OR_FOLDER... --out DIR [--data DIR] [--quick] [--feed DIR|none] [--cell-timeout MINUTES]\n" +
    "       ScalingInteractive.Runner export-ipynb NOTEBOOK_OR_FOLDER...   (writes NAME.ipynb beside each NAME.dib)";

if (args.Length > 0 && args[0] == "export-ipynb")
{
    var sources = args.Skip(1).SelectMany(a => Directory.Exists(a) ? Directory.GetFiles(a, "*.dib").Order(StringComparer.Ordinal).ToArray() : new[] { a }).ToList();
    if (sources.Count == 0) { Console.Error.WriteLine($"No .dib notebook given. {Usage}"); return 2; }
    foreach (string dib in sources)
    {
        try
        {
            string target = Path.ChangeExtension(dib, ".ipynb");
            File.WriteAllText(target, IpynbExport.FromDib(dib));
            Console.WriteLine($"{dib} -> {target}");
        }
        catch (NotebookFormatException e) { Console.Error.WriteLine(e.Message); return 1; }
    }
    return 0;
}

var notebooks = new List<string>();
var problems = new List<string>();
string? outDir = null, dataDir = null, feed = null;
bool quick = false;
double cellTimeoutMinutes = 30;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--out" when i + 1 < args.Length: outDir = args[++i]; break;
        case "--data" when i + 1 < args.Length: dataDir = args[++i]; break;
        case "--feed" when i + 1 < args.Length: feed = args[++i]; break;
        case "--cell-timeout" when i + 1 < args.Length:
            if (!double.TryParse(args[++i], System.Globalization.CultureInfo.InvariantCulture, out cellTimeoutMinutes) || cellTimeoutMinutes <= 0)
            {
                Console.Error.WriteLine($"--cell-timeout '{args[i]}' is not accepted: give a positive number of minutes. {Usage}");
                return 2;
            }
            break;
        case "--quick": quick = true; break;
        case "-h" or "--help": Console.WriteLine(Usage); return 0;
        case var a when a.StartsWith("--", StringComparison.Ordinal):
            Console.Error.WriteLine($"Unknown option '{a}' (or missing value). {Usage}");
            return 2;
        case var path when Directory.Exists(path):
            var found = NotebookRunner.NotebooksIn(path).ToList();
            if (found.Count == 0) problems.Add($"Folder '{path}' holds no .dib or .ipynb notebook.");
            notebooks.AddRange(found);
            break;
        case var path: notebooks.Add(path); break;
    }
}
if (outDir is null)
{
    Console.Error.WriteLine($"--out DIR is required. {Usage}");
    return 2;
}
foreach (string problem in problems) Console.Error.WriteLine(problem);
if (notebooks.Count == 0)
{
    Console.Error.WriteLine($"No notebook given. {Usage}");
    return 2;
}
if (dataDir is not null && !Directory.Exists(dataDir))
{
    Console.Error.WriteLine($"--data '{dataDir}' is not an existing folder.");
    return 2;
}

// "--feed none": inject nothing, as a user's VS Code session would (the kernel's NuGet sources must then hold the package).
if (feed == "none") feed = null;
else feed ??= PackageFeed.BuiltFeed;
if (feed is not null)
{
    if (!Directory.Exists(feed)) { Console.Error.WriteLine($"--feed '{feed}' is not an existing folder."); return 2; }
    feed = Path.GetFullPath(feed);
}
string? toolDir = PackageFeed.FindToolManifestDirectory();
if (toolDir is not null)
{
    using var restore = Process.Start(new ProcessStartInfo("dotnet", "tool restore") { WorkingDirectory = toolDir, RedirectStandardOutput = true, RedirectStandardError = true });
    if (restore is not null) { await restore.WaitForExitAsync(); if (restore.ExitCode != 0) Console.Error.WriteLine("dotnet tool restore failed: " + await restore.StandardError.ReadToEndAsync()); }
}

using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancellation.Cancel(); Console.Error.WriteLine("Cancelling the running cell..."); };

var settings = new RunnerSettings
{
    Quick = quick,
    DataDirectory = dataDir,
    PackageFeed = feed,
    ToolManifestDirectory = toolDir,
    CellTimeout = TimeSpan.FromMinutes(cellTimeoutMinutes),
};
Console.WriteLine($"Running {notebooks.Count} notebook(s) in the .NET Interactive kernel ({(toolDir is null ? "global dotnet-interactive" : "tool pinned in " + Path.Combine(toolDir, ".config", "dotnet-tools.json"))})" +
                  $"{(quick ? ", quick mode" : "")}, data: {dataDir ?? "notebook default"}, package feed: {feed ?? "kernel's NuGet sources"}");
var runner = new NotebookRunner(settings, Console.Out);
var runs = new List<NotebookRun>();
foreach (string notebook in notebooks)
{
    var run = await runner.RunAsync(notebook, cancellation.Token);
    runs.Add(run);
    if (run.LoadError is null)
    {
        string html = ReportWriter.WriteHtml(run, outDir);
        string ipynb = ReportWriter.WriteIpynb(run, outDir);
        Console.WriteLine($"{(run.Succeeded ? "PASS" : "FAIL")} {notebook} in {run.Elapsed.TotalSeconds:F1} s -> {html}, {ipynb}");
    }
    else
    {
        Console.WriteLine($"FAIL {notebook}: {run.LoadError}");
    }
}
string index = ReportWriter.WriteIndex(runs, outDir);
int failedCount = runs.Count(r => !r.Succeeded);
Console.WriteLine($"{runs.Count - failedCount} notebook(s) passed, {failedCount} failed. Index: {index}");
return failedCount == 0 ? 0 : 1;
