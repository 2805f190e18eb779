using ScalingInteractive.Display;
using ScalingInteractive.Hosting;
using ScalingInteractive.Runner;

// Headless notebook runner:
//   dotnet run --project src/ScalingInteractive.Runner -c Release -- NOTEBOOK... --out DIR [--data DIR] [--quick]
// Exit codes: 0 every cell ran, 1 a cell or notebook failed, 2 bad command line.
const string Usage = "usage: ScalingInteractive.Runner NOTEBOOK_OR_FOLDER... --out DIR [--data DIR] [--quick]";

var notebooks = new List<string>();
string? outDir = null;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--out" when i + 1 < args.Length: outDir = args[++i]; break;
        case "--data" when i + 1 < args.Length: NotebookSession.DataDirectory = Path.GetFullPath(args[++i]); break;
        case "--quick": NotebookSession.Quick = true; break;
        case "-h" or "--help": Console.WriteLine(Usage); return 0;
        case var a when a.StartsWith("--", StringComparison.Ordinal):
            Console.Error.WriteLine($"Unknown option '{a}' (or missing value). {Usage}");
            return 2;
        case var path when Directory.Exists(path):
            notebooks.AddRange(Directory.GetFiles(path).Where(f => f.EndsWith(".dib", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".ipynb", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal));
            break;
        case var path: notebooks.Add(path); break;
    }
}
if (notebooks.Count == 0 || outDir is null)
{
    Console.Error.WriteLine(notebooks.Count == 0 ? $"No notebook given. {Usage}" : $"--out DIR is required. {Usage}");
    return 2;
}

// Notebooks read these like a notebook front end's environment; charts rely on the report's single plotly.js.
Environment.SetEnvironmentVariable(NotebookSession.QuickVariable, NotebookSession.Quick ? "1" : "0");
Environment.SetEnvironmentVariable(NotebookSession.DataVariable, NotebookSession.DataDirectory);
PlotlyAssets.DocumentProvidesScript = true;
Formatters.Register();

using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancellation.Cancel(); Console.Error.WriteLine("Cancelling after the current step..."); };

Console.WriteLine($"Running {notebooks.Count} notebook(s){(NotebookSession.Quick ? " in quick mode" : "")}, data: {NotebookSession.DataDirectory}");
var runner = new NotebookRunner(Console.Out);
var reports = new List<(NotebookResult, string?)>();
foreach (string notebook in notebooks)
{
    var result = await runner.RunAsync(notebook, cancellation.Token);
    string? report = result.LoadError is null ? ReportWriter.Write(result, outDir) : null;
    reports.Add((result, report));
    Console.WriteLine($"{(result.Succeeded ? "PASS" : "FAIL")} {notebook}{(report is null ? "" : " -> " + report)}");
}
ReportWriter.WriteIndex(reports, outDir);
int failedCount = reports.Count(r => !r.Item1.Succeeded);
Console.WriteLine($"{reports.Count - failedCount} notebook(s) passed, {failedCount} failed.");
return failedCount == 0 ? 0 : 1;
