using System.Diagnostics;
using System.Text;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Documents.Jupyter;

namespace ScalingInteractive.Runner;

/// <summary>Outcome of one cell.</summary>
public enum CellStatus
{
    /// <summary>The kernel answered CommandSucceeded with no error event and no error diagnostic.</summary>
    Ok,
    /// <summary>CommandFailed, an error event or diagnostic, a timeout, or the kernel died.</summary>
    Failed,
    /// <summary>Not run because an earlier cell failed (as "Run All" stops in a notebook front end).</summary>
    Skipped,
    /// <summary>Markdown: rendered, nothing to run.</summary>
    Text,
}

/// <summary>One cell with what the kernel produced for it.</summary>
/// <param name="Kernel">The subkernel (csharp, markdown, ...).</param>
/// <param name="Source">The cell's code or text.</param>
/// <param name="Status">How it ended.</param>
/// <param name="Elapsed">Wall time in the kernel.</param>
/// <param name="Outputs">Outputs in arrival order, each at its latest update.</param>
/// <param name="Errors">Error messages (empty when it succeeded).</param>
/// <param name="Injected">True for the parameters cell the runner adds (papermill's "injected-parameters").</param>
public sealed record CellRun(string Kernel, string Source, CellStatus Status, TimeSpan Elapsed,
    IReadOnlyList<CellOutput> Outputs, IReadOnlyList<string> Errors, bool Injected = false);

/// <summary>One executed notebook.</summary>
/// <param name="Path">The notebook file.</param>
/// <param name="Cells">Every cell, the injected parameters cell first.</param>
/// <param name="LoadError">Why the notebook could not be read or the kernel not started (null when it ran).</param>
/// <param name="Elapsed">Wall time including the kernel's start.</param>
public sealed record NotebookRun(string Path, IReadOnlyList<CellRun> Cells, string? LoadError, TimeSpan Elapsed)
{
    /// <summary>True when the notebook ran and no cell failed.</summary>
    public bool Succeeded => LoadError is null && Cells.All(c => c.Status is CellStatus.Ok or CellStatus.Text);
}

/// <summary>Settings of a run: the notebook parameters (quick mode, data folder, package feed) and limits.</summary>
public sealed record RunnerSettings
{
    /// <summary>Shrink each notebook's experiments (CI); reaches the kernel as SCALING_INTERACTIVE_QUICK=1.</summary>
    public bool Quick { get; init; }

    /// <summary>Data folder; reaches the kernel as SCALING_INTERACTIVE_DATA. Null: the notebooks' default.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>
    /// A local NuGet feed holding the ScalingInteractive package to load; injected as <c>#i "nuget: FEED"</c> in a
    /// parameters cell before the notebook's own cells. Null: the kernel's configured sources only.
    /// </summary>
    public string? PackageFeed { get; init; }

    /// <summary>
    /// With a <see cref="PackageFeed"/>: give each kernel its own NuGet packages folder in which only ScalingInteractive is
    /// extracted afresh (from the feed) and every other package is linked from the shared one, so concurrent runs of
    /// different builds never load or delete each other's copy (default true).
    /// </summary>
    public bool IsolatePackages { get; init; } = true;

    /// <summary>The folder with <c>.config/dotnet-tools.json</c> pinning the kernel tool; null: a global dotnet-interactive.</summary>
    public string? ToolManifestDirectory { get; init; }

    /// <summary>A cell running longer is cancelled and fails.</summary>
    public TimeSpan CellTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Minimum time between two progress lines of one cell.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Extra environment variables for the kernel.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// Executes notebooks in the real .NET Interactive kernel, as papermill or <c>nbconvert --execute</c> do for Jupyter:
/// one fresh kernel per notebook (started as VS Code starts it), every cell submitted over the stdio protocol, outputs
/// and errors recorded, later cells skipped after a failure. <see cref="ReportWriter"/> turns the result into an HTML
/// report and an executed .ipynb.
/// </summary>
public sealed class NotebookRunner(RunnerSettings settings, TextWriter log)
{
    /// <summary>The kernels a .dib or .ipynb of this package may use (names and aliases as Polyglot Notebooks writes them).</summary>
    public static KernelInfoCollection KernelInfos()
    {
        var infos = new KernelInfoCollection
        {
            new KernelInfo("csharp", "C#", ["c#", "C#", "cs"]),
            new KernelInfo("fsharp", "F#", ["f#", "F#", "fs"]),
            new KernelInfo("pwsh", "PowerShell", ["powershell"]),
            new KernelInfo("javascript", "JavaScript", ["js"]),
            new KernelInfo("html", "HTML"),
            new KernelInfo("mermaid", "Mermaid"),
            new KernelInfo("value"),
            new KernelInfo("markdown", "Markdown", ["md"]),
        };
        infos.DefaultKernelName = "csharp";
        return infos;
    }

    /// <summary>Reads a .dib or .ipynb; throws <see cref="NotebookFormatException"/> with a clear message on bad input.</summary>
    public static InteractiveDocument Load(string path)
    {
        if (Directory.Exists(path)) throw new NotebookFormatException($"'{path}' is a folder, not a notebook file.");
        if (!File.Exists(path)) throw new NotebookFormatException($"Notebook '{path}' does not exist.");
        string extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension is not (".dib" or ".ipynb"))
            throw new NotebookFormatException($"'{path}' is not a notebook: expected a .dib or .ipynb file.");
        try
        {
            using var stream = File.OpenRead(path);
            return extension == ".dib" ? CodeSubmission.Read(stream, KernelInfos()) : Notebook.Read(stream, KernelInfos());
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or ArgumentException)
        {
            throw new NotebookFormatException($"'{path}' could not be read as a notebook: {e.Message}");
        }
    }

    /// <summary>
    /// The code of the parameters cell the runner injects (null when there is nothing to inject). <paramref name="feedCopy"/>:
    /// this kernel's private copy of the feed, injected in place of <see cref="RunnerSettings.PackageFeed"/>.
    /// </summary>
    public string? ParametersCell(string? feedCopy = null)
    {
        if (settings.PackageFeed is null) return null;
        string source = feedCopy is null ? "the package feed built with this runner" : $"this kernel's copy of the package feed {settings.PackageFeed}";
        return $"// Parameters injected by ScalingInteractive.Runner: {source}" +
               $" (quick mode: {(settings.Quick ? "on" : "off")}, data: {settings.DataDirectory ?? "default"}).\n" +
               $"#i \"nuget: {feedCopy ?? settings.PackageFeed}\"";
    }

    /// <summary>Runs one notebook in a fresh kernel.</summary>
    public async Task<NotebookRun> RunAsync(string path, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        string name = Path.GetFileName(path);
        InteractiveDocument document;
        try
        {
            document = Load(path);
        }
        catch (NotebookFormatException e)
        {
            log.WriteLine($"[failed] {path}: {e.Message}");
            return new NotebookRun(path, [], e.Message, clock.Elapsed);
        }

        var environment = new Dictionary<string, string>(settings.Environment)
        {
            ["SCALING_INTERACTIVE_QUICK"] = settings.Quick ? "1" : "0",
        };
        if (settings.DataDirectory is not null) environment["SCALING_INTERACTIVE_DATA"] = Path.GetFullPath(settings.DataDirectory);
        // The feed's package, extracted for this kernel alone (see IsolatedPackagesFolder); disposed after the kernel exits.
        using var packages = settings.PackageFeed is not null && settings.IsolatePackages && !environment.ContainsKey("NUGET_PACKAGES")
            ? IsolatedPackagesFolder.Create(settings.PackageFeed) : null;
        if (packages is not null) environment["NUGET_PACKAGES"] = packages.PackagesPath;

        KernelClient kernel;
        try
        {
            kernel = await KernelClient.StartAsync(new KernelStartOptions
            {
                WorkingDirectory = Path.GetDirectoryName(Path.GetFullPath(path))!,
                ToolManifestDirectory = settings.ToolManifestDirectory,
                Environment = environment,
            }, TimeSpan.FromMinutes(2), cancellationToken);
        }
        catch (KernelStartException e)
        {
            log.WriteLine($"[failed] {name}: {e.Message}");
            return new NotebookRun(path, [], e.Message, clock.Elapsed);
        }

        var cells = new List<CellRun>();
        await using (kernel)
        {
            var plan = new List<(string Kernel, string Source, bool Injected)>();
            if (ParametersCell(packages?.FeedPath) is { } parameters) plan.Add(("csharp", parameters, true));
            plan.AddRange(document.Elements.Select(e => (e.KernelName ?? "csharp", e.Contents, false)));
            bool failed = false;
            int runnable = plan.Count(p => p.Kernel != "markdown");
            int number = 0;
            foreach (var (kernelName, source, injected) in plan)
            {
                if (kernelName == "markdown")
                {
                    cells.Add(new CellRun(kernelName, source, CellStatus.Text, TimeSpan.Zero, [], []));
                    continue;
                }
                number++;
                string label = $"{name} cell {number}/{runnable}{(injected ? " (parameters)" : "")}";
                if (failed || cancellationToken.IsCancellationRequested || source.Trim().Length == 0)
                {
                    var status = failed || cancellationToken.IsCancellationRequested ? CellStatus.Skipped : CellStatus.Ok;
                    cells.Add(new CellRun(kernelName, source, status, TimeSpan.Zero, [], [], injected));
                    if (status == CellStatus.Skipped) log.WriteLine($"[skipped] {label}");
                    continue;
                }
                var progress = new CellProgress(log, label, settings.ProgressInterval);
                var result = await kernel.SubmitCodeAsync(source, kernelName, settings.CellTimeout, progress.OnOutput, cancellationToken);
                progress.Stop();
                var cellStatus = result.Succeeded ? CellStatus.Ok : CellStatus.Failed;
                cells.Add(new CellRun(kernelName, source, cellStatus, result.Elapsed, result.Outputs, result.Errors, injected));
                log.WriteLine($"[{(result.Succeeded ? "ok" : "failed")}] {label} ({result.Elapsed.TotalSeconds:F2} s)");
                if (!result.Succeeded)
                {
                    failed = true;
                    foreach (string error in result.Errors.Distinct()) log.WriteLine("    " + error.Replace("\n", "\n    "));
                }
            }
        }
        return new NotebookRun(path, cells, null, clock.Elapsed);
    }

    /// <summary>Prints throttled progress of a long cell: the latest text of any output that changed, plus a heartbeat.</summary>
    private sealed class CellProgress
    {
        private readonly TextWriter _log;
        private readonly string _label;
        private readonly TimeSpan _interval;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly Timer _heartbeat;
        private TimeSpan _lastPrinted;
        private string? _lastText;

        public CellProgress(TextWriter log, string label, TimeSpan interval)
        {
            _log = log;
            _label = label;
            _interval = interval;
            var heartbeat = TimeSpan.FromSeconds(Math.Max(30, interval.TotalSeconds * 3));
            _heartbeat = new Timer(_ => Print(null), null, heartbeat, heartbeat);
        }

        public void OnOutput(CellOutput output)
        {
            if (output.Kind is not ("display" or "stdout")) return;
            string? text = output.PlainText;
            if (text is null && output.Html is { } html) text = System.Text.RegularExpressions.Regex.Replace(html, "<[^>]*>", " ");
            if (text is null) return;
            text = string.Join(" ", text.Split((char[])['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries)).Trim();
            if (text.Length > 160) text = text[..157] + "...";
            lock (this) _lastText = text;
            if (_clock.Elapsed - _lastPrinted >= _interval) Print(text);
        }

        private void Print(string? text)
        {
            lock (this)
            {
                text ??= _lastText;
                _lastPrinted = _clock.Elapsed;
                _log.WriteLine($"    [{_clock.Elapsed.TotalSeconds:F0} s] {_label}{(text is null ? " running" : ": " + text)}");
            }
        }

        public void Stop() => _heartbeat.Dispose();
    }

    /// <summary>The notebooks a folder holds: every .dib, and each .ipynb that has no .dib of the same name.</summary>
    public static IEnumerable<string> NotebooksIn(string folder)
    {
        var files = Directory.GetFiles(folder).Order(StringComparer.Ordinal).ToList();
        var dibs = files.Where(f => f.EndsWith(".dib", StringComparison.OrdinalIgnoreCase)).ToList();
        var names = dibs.Select(Path.GetFileNameWithoutExtension).ToHashSet(StringComparer.Ordinal);
        return dibs.Concat(files.Where(f => f.EndsWith(".ipynb", StringComparison.OrdinalIgnoreCase) && !names.Contains(Path.GetFileNameWithoutExtension(f))))
            .Order(StringComparer.Ordinal);
    }
}

/// <summary>A file that is missing or not a readable notebook.</summary>
public sealed class NotebookFormatException(string message) : Exception(message);

/// <summary>Converts .dib notebooks to .ipynb (cells only, no outputs) so Jupyter users get the same notebooks.</summary>
public static class IpynbExport
{
    /// <summary>The .ipynb text of a .dib notebook (C# default kernel; metadata Jupyter's .NET kernel reads).</summary>
    public static string FromDib(string dibPath)
    {
        var document = NotebookRunner.Load(dibPath);
        var copy = new InteractiveDocument();
        foreach (var element in document.Elements) copy.Add(new InteractiveDocumentElement(element.Contents, element.KernelName));
        return copy.ToJupyterJson("C#");
    }
}
