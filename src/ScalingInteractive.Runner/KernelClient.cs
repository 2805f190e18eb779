using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ScalingInteractive.Runner;

/// <summary>How to start the real .NET Interactive kernel.</summary>
public sealed record KernelStartOptions
{
    /// <summary>The folder the kernel changes to (VS Code passes the notebook's folder).</summary>
    public required string WorkingDirectory { get; init; }

    /// <summary>
    /// The folder whose <c>.config/dotnet-tools.json</c> pins the tool (the repository root): the kernel is started as
    /// <c>dotnet tool run dotnet-interactive -- stdio</c> from there. Null: <c>dotnet-interactive</c> from PATH (a global tool).
    /// </summary>
    public string? ToolManifestDirectory { get; init; }

    /// <summary>Environment variables for the kernel process (notebook parameters such as quick mode and the data folder).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
}

/// <summary>One output of a cell, as the kernel formatted it (mime type to text), updated in place when the kernel says so.</summary>
public sealed class CellOutput
{
    internal CellOutput(string kind, string? valueId, IReadOnlyDictionary<string, string> values)
    {
        Kind = kind;
        ValueId = valueId;
        Values = values;
    }

    /// <summary><c>display</c>, <c>return</c>, <c>stdout</c>, <c>stderr</c> or <c>error</c>.</summary>
    public string Kind { get; }

    /// <summary>The kernel's id of a displayed value (updates replace the value with the same id).</summary>
    public string? ValueId { get; }

    /// <summary>Formatted values by mime type (text/html, text/plain, ...), the latest update.</summary>
    public IReadOnlyDictionary<string, string> Values { get; internal set; }

    /// <summary>The text/plain value, if any.</summary>
    public string? PlainText => Values.TryGetValue("text/plain", out string? v) ? v : null;

    /// <summary>The text/html value, if any.</summary>
    public string? Html => Values.TryGetValue("text/html", out string? v) ? v : null;
}

/// <summary>What one submission produced: outputs, errors (failure message, error events, error diagnostics), time.</summary>
public sealed class SubmissionResult
{
    /// <summary>Outputs in arrival order.</summary>
    public List<CellOutput> Outputs { get; } = [];

    /// <summary>Every error the kernel reported: CommandFailed's message, ErrorProduced, diagnostics of severity Error.</summary>
    public List<string> Errors { get; } = [];

    /// <summary>True when the kernel answered CommandSucceeded and reported no error.</summary>
    public bool Succeeded { get; internal set; }

    /// <summary>True when the runner gave up waiting (the cell was cancelled).</summary>
    public bool TimedOut { get; internal set; }

    /// <summary>Wall time from submission to the kernel's answer.</summary>
    public TimeSpan Elapsed { get; internal set; }

    /// <summary>Names of every event received for the submission (tests check the protocol with it).</summary>
    public List<string> EventTypes { get; } = [];
}

/// <summary>
/// A client of the real .NET Interactive kernel over its stdio protocol, as VS Code Polyglot Notebooks drives it:
/// the tool started as <c>dotnet-interactive stdio --working-dir DIR</c>, one JSON envelope per line both ways,
/// <c>SubmitCode</c> per cell, events routed by command token (child commands carry the parent's token as a prefix),
/// and commands the kernel sends to the client (<c>RequestInput</c>, <c>RequestInputs</c>, <c>RequestKernelInfo</c>, ...)
/// answered so a cell never waits on a client that cannot type.
/// </summary>
public sealed class KernelClient : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _stdin;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentDictionary<string, Pending> _pending = new();
    private readonly StringBuilder _stderr = new();
    private readonly object _writeGate = new();
    private readonly Task _readLoop;
    private int _nextToken;

    private sealed class Pending(Action<string, JsonObject> onEvent)
    {
        public readonly TaskCompletionSource<JsonObject> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly Action<string, JsonObject> OnEvent = onEvent;
    }

    private KernelClient(Process process)
    {
        _process = process;
        _stdin = process.StandardInput;
        _stdin.AutoFlush = true;
        _readLoop = Task.Run(ReadLoopAsync);
        _ = Task.Run(async () =>
        {
            string? line;
            while ((line = await process.StandardError.ReadLineAsync()) is not null)
                lock (_stderr) { if (_stderr.Length < 64_000) _stderr.AppendLine(line); }
        });
    }

    /// <summary>The kernel's standard error so far (start-up failures show here).</summary>
    public string StandardError { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>The kernel's process id.</summary>
    public int ProcessId => _process.Id;

    /// <summary>True while the kernel process runs.</summary>
    public bool IsRunning => !_process.HasExited;

    /// <summary>Starts the kernel and waits for <c>KernelReady</c>.</summary>
    public static async Task<KernelClient> StartAsync(KernelStartOptions options, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = new UTF8Encoding(false),
            StandardInputEncoding = new UTF8Encoding(false),
        };
        if (options.ToolManifestDirectory is { } toolDir)
        {
            info.FileName = "dotnet";
            info.WorkingDirectory = toolDir;
            foreach (string a in new[] { "tool", "run", "dotnet-interactive", "--" }) info.ArgumentList.Add(a);
        }
        else
        {
            info.FileName = "dotnet-interactive";
        }
        foreach (string a in new[] { "stdio", "--default-kernel", "csharp", "--working-dir", options.WorkingDirectory }) info.ArgumentList.Add(a);
        // No first-run banner or telemetry on stdout: the protocol owns stdout.
        info.Environment["DOTNET_INTERACTIVE_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_INTERACTIVE_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (key, value) in options.Environment) info.Environment[key] = value;

        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new KernelStartException($"Could not start the .NET Interactive kernel ({info.FileName}): {e.Message}. " +
                "Run 'dotnet tool restore' in the repository (the tool is pinned in .config/dotnet-tools.json) or install it globally: " +
                "dotnet tool install -g Microsoft.dotnet-interactive --version 1.0.712001.");
        }
        var client = new KernelClient(process);
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        try
        {
            await client._ready.Task.WaitAsync(timeoutSource.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or KernelStartException)
        {
            string why = process.HasExited ? $"it exited with code {process.ExitCode}" : $"it did not report KernelReady within {timeout.TotalSeconds:F0} s";
            await client.DisposeAsync();
            if (cancellationToken.IsCancellationRequested) throw;
            throw new KernelStartException($"The .NET Interactive kernel did not start: {why}. Its standard error:\n{client.StandardError}");
        }
        return client;
    }

    /// <summary>
    /// Submits code to one subkernel (csharp, fsharp, ...) and collects everything the kernel reports for it until
    /// <c>CommandSucceeded</c> or <c>CommandFailed</c>. <paramref name="onUpdate"/> sees each output as it arrives or changes
    /// (progress of long cells). When <paramref name="timeout"/> passes, the cell is cancelled and reported as timed out.
    /// </summary>
    public async Task<SubmissionResult> SubmitCodeAsync(string code, string kernelName, TimeSpan timeout,
        Action<CellOutput>? onUpdate = null, CancellationToken cancellationToken = default)
    {
        var result = new SubmissionResult();
        var byValueId = new Dictionary<string, CellOutput>();
        string token = "si-" + Interlocked.Increment(ref _nextToken).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var clock = Stopwatch.StartNew();
        using var inputRequested = new CancellationTokenSource();
        var pending = new Pending((eventType, envelope) =>
        {
            lock (result)
            {
                result.EventTypes.Add(eventType);
                var ev = envelope["event"] as JsonObject;
                CellOutput? changed = null;
                switch (eventType)
                {
                    case "DisplayedValueProduced":
                    case "ReturnValueProduced":
                    case "StandardOutputValueProduced":
                    case "StandardErrorValueProduced":
                    {
                        string kind = eventType switch
                        {
                            "DisplayedValueProduced" => "display",
                            "ReturnValueProduced" => "return",
                            "StandardOutputValueProduced" => "stdout",
                            _ => "stderr",
                        };
                        string? valueId = ev?["valueId"]?.GetValue<string?>();
                        changed = new CellOutput(kind, valueId, FormattedValues(ev));
                        result.Outputs.Add(changed);
                        if (valueId is not null) byValueId[valueId] = changed;
                        break;
                    }
                    case "DisplayedValueUpdated":
                    {
                        string? valueId = ev?["valueId"]?.GetValue<string?>();
                        if (valueId is not null && byValueId.TryGetValue(valueId, out var existing))
                        {
                            existing.Values = FormattedValues(ev);
                            changed = existing;
                        }
                        else
                        {
                            changed = new CellOutput("display", valueId, FormattedValues(ev));
                            result.Outputs.Add(changed);
                            if (valueId is not null) byValueId[valueId] = changed;
                        }
                        break;
                    }
                    case "ErrorProduced":
                        result.Errors.Add(ev?["message"]?.GetValue<string>() ?? "ErrorProduced");
                        changed = new CellOutput("error", null, FormattedValues(ev));
                        result.Outputs.Add(changed);
                        break;
                    case "DiagnosticsProduced":
                        foreach (var d in ev?["diagnostics"] as JsonArray ?? [])
                            if (string.Equals(d?["severity"]?.ToString(), "Error", StringComparison.OrdinalIgnoreCase))
                                result.Errors.Add($"{d?["code"]}: {d?["message"]}");
                        break;
                }
                if (changed?.Html is { } html && html.Contains("sendSendValueCommand(", StringComparison.Ordinal))
                {
                    // The kernel shows an input form (RequestInputs, e.g. two @csharp: values on one magic-command line)
                    // and waits for a click no headless client can give: fail the cell now instead of waiting for ever.
                    result.Errors.Add("The kernel asked for user input (an input form), which a headless run cannot give. " +
                        "A magic-command line with two or more @csharp: values does this (a kernel bug); pass bare C# variable names instead.");
                    inputRequested.Cancel();
                }
                if (changed is not null) onUpdate?.Invoke(changed);
            }
        });
        _pending[token] = pending;
        try
        {
            Send(new JsonObject
            {
                ["token"] = token,
                ["commandType"] = "SubmitCode",
                ["command"] = new JsonObject { ["code"] = code, ["targetKernelName"] = kernelName },
            });
            using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, inputRequested.Token);
            timeoutSource.CancelAfter(timeout);
            JsonObject final;
            try
            {
                final = await pending.Done.Task.WaitAsync(timeoutSource.Token);
            }
            catch (OperationCanceledException)
            {
                // Interrupt the cell as VS Code's stop button does, then wait briefly for the kernel to answer.
                Send(new JsonObject { ["token"] = token + "-cancel", ["commandType"] = "Cancel", ["command"] = new JsonObject() });
                result.TimedOut = !cancellationToken.IsCancellationRequested && !inputRequested.IsCancellationRequested;
                try { final = await pending.Done.Task.WaitAsync(TimeSpan.FromSeconds(30)); }
                catch (TimeoutException) { final = new JsonObject { ["eventType"] = "CommandFailed", ["event"] = new JsonObject { ["message"] = "The kernel did not answer the cancellation." } }; }
                if (!inputRequested.IsCancellationRequested)
                    lock (result) result.Errors.Add(result.TimedOut ? $"The cell did not finish within {timeout.TotalMinutes:F1} min and was cancelled." : "Cancelled.");
            }
            catch (KernelExitedException e)
            {
                lock (result) result.Errors.Add(e.Message);
                result.Elapsed = clock.Elapsed;
                return result;
            }
            string finalType = final["eventType"]!.GetValue<string>();
            lock (result)
            {
                if (finalType == "CommandFailed") result.Errors.Insert(0, (final["event"] as JsonObject)?["message"]?.GetValue<string>() ?? "CommandFailed");
                result.Succeeded = finalType == "CommandSucceeded" && result.Errors.Count == 0;
            }
            result.Elapsed = clock.Elapsed;
            return result;
        }
        finally
        {
            _pending.TryRemove(token, out _);
        }
    }

    private static IReadOnlyDictionary<string, string> FormattedValues(JsonObject? ev)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (ev?["formattedValues"] is JsonArray array)
            foreach (var v in array)
                if (v?["mimeType"]?.GetValue<string>() is { } mime) values[mime] = v["value"]?.GetValue<string>() ?? "";
        if (ev?["formattedValue"] is JsonObject single && single["mimeType"]?.GetValue<string>() is { } m) values[m] = single["value"]?.GetValue<string>() ?? "";
        if (values.Count == 0 && ev?["message"]?.GetValue<string>() is { } message) values["text/plain"] = message;
        return values;
    }

    private void Send(JsonNode envelope)
    {
        string line = envelope.ToJsonString();
        lock (_writeGate)
        {
            if (_process.HasExited) return;
            try { _stdin.WriteLine(line); }
            catch (IOException) { /* the read loop reports the exit */ }
        }
    }

    private async Task ReadLoopAsync()
    {
        var stdout = _process.StandardOutput;
        string? line;
        while ((line = await stdout.ReadLineAsync()) is not null)
        {
            if (line.Length == 0 || line[0] != '{') continue; // banners and blank lines are not protocol
            JsonObject? envelope;
            try { envelope = JsonNode.Parse(line) as JsonObject; }
            catch (JsonException) { continue; }
            if (envelope is null) continue;
            if (envelope["eventType"]?.GetValue<string>() is { } eventType)
            {
                if (eventType == "KernelReady") { _ready.TrySetResult(); continue; }
                string? token = (envelope["command"] as JsonObject)?["token"]?.GetValue<string>();
                if (token is null) continue;
                string root = token.Split('.')[0];
                if (!_pending.TryGetValue(root, out var pending)) continue;
                bool final = token == root && eventType is "CommandSucceeded" or "CommandFailed";
                if (final) pending.Done.TrySetResult(envelope);
                else if (eventType is not ("CommandSucceeded" or "CommandFailed")) pending.OnEvent(eventType, envelope);
                else if (eventType == "CommandFailed" && token != root)
                    pending.OnEvent("ErrorProduced", new JsonObject { ["event"] = new JsonObject { ["message"] = (envelope["event"] as JsonObject)?["message"]?.GetValue<string>() } });
            }
            else if (envelope["commandType"] is not null)
            {
                AnswerKernelRequest(envelope);
            }
        }
        var exited = new KernelExitedException($"The kernel process exited{(_process.HasExited ? $" with code {_process.ExitCode}" : "")}. Its standard error:\n{StandardError}");
        _ready.TrySetException(new KernelStartException(exited.Message));
        foreach (var pending in _pending.Values) pending.Done.TrySetException(exited);
    }

    /// <summary>
    /// The kernel asks the client for things (VS Code shows an input box for RequestInput/RequestInputs). A headless
    /// client cannot type, so those fail at once with a message (the cell fails instead of hanging); everything else
    /// is acknowledged as VS Code does.
    /// </summary>
    private void AnswerKernelRequest(JsonObject command)
    {
        string commandType = command["commandType"]!.GetValue<string>();
        JsonObject answer = commandType is "RequestInput" or "RequestInputs"
            ? new JsonObject
            {
                ["eventType"] = "CommandFailed",
                ["event"] = new JsonObject { ["message"] = $"{commandType}: the notebook asked for user input, which a headless run cannot give. " +
                    "Pass values in the cell (bare C# variable names for ScalingInteractive commands; never two @csharp: values on one line)." },
                ["command"] = command.DeepClone(),
            }
            : new JsonObject { ["eventType"] = "CommandSucceeded", ["event"] = new JsonObject(), ["command"] = command.DeepClone() };
        Send(answer);
    }

    /// <summary>Asks the kernel to quit, then ends the process if it does not.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                Send(new JsonObject { ["token"] = "si-quit", ["commandType"] = "Quit", ["command"] = new JsonObject() });
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                try { await _process.WaitForExitAsync(wait.Token); } catch (OperationCanceledException) { }
                if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            }
            await _readLoop.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception) { }
        finally
        {
            _process.Dispose();
        }
    }
}

/// <summary>The kernel could not be started.</summary>
public sealed class KernelStartException(string message) : Exception(message);

/// <summary>The kernel process ended while a cell ran.</summary>
public sealed class KernelExitedException(string message) : Exception(message);
