namespace ScalingInteractive.Commands;

/// <summary>
/// What a magic command needs from wherever it runs: the .NET Interactive kernel (through extension.dib),
/// the headless runner, or a test. Kept small so any host can implement it.
/// </summary>
public interface ICommandHost
{
    /// <summary>Shows a value (formatted by the display layer) and returns a handle to replace it in place.</summary>
    IDisplayHandle Display(object value);

    /// <summary>Reads a notebook variable (C# kernel variable, script global). False when it does not exist.</summary>
    bool TryGetVariable(string name, out object? value);

    /// <summary>Creates or replaces a notebook variable (visible to the next cells).</summary>
    Task SetVariableAsync(string name, object value, Type declaredType);

    /// <summary>Cancelled when the user interrupts the cell (or presses Ctrl+C in the runner).</summary>
    CancellationToken CancellationToken { get; }

    /// <summary>A progress sink for long work; the default shows a <see cref="Display.ProgressDisplay"/> updated in place.</summary>
    IProgressSink CreateProgress(string title, int? total = null) => new Display.ProgressDisplay(title, total, this);
}

/// <summary>A displayed value that can be replaced in place.</summary>
public interface IDisplayHandle
{
    /// <summary>Replaces the displayed value.</summary>
    void Update(object value);
}

/// <summary>Receives progress of long work. Implementations throttle what they show.</summary>
public interface IProgressSink
{
    /// <summary>Reports progress: items done, an optional status line and an optional "best so far" text.</summary>
    void Report(int done, string? status = null, string? best = null);

    /// <summary>Marks the work finished (shown at once, unthrottled).</summary>
    void Complete(string? status = null);
}
