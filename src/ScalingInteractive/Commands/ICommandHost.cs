using ScalingInteractive.Core;
using ScalingInteractive.Display;

namespace ScalingInteractive.Commands;

/// <summary>
/// What a magic command needs from wherever it runs: the .NET Interactive kernel (through extension.dib),
/// the headless runner, or a test. Kept small so any host can implement it.
/// </summary>
public interface ICommandHost : IDisplaySurface
{
    /// <summary>Reads a notebook variable (C# kernel variable, script global). False when it does not exist.</summary>
    bool TryGetVariable(string name, out object? value);

    /// <summary>Creates or replaces a notebook variable (visible to the next cells).</summary>
    Task SetVariableAsync(string name, object value, Type declaredType);

    /// <summary>Cancelled when the user interrupts the cell (or presses Ctrl+C in the runner).</summary>
    CancellationToken CancellationToken { get; }

    /// <summary>A progress sink for long work; the default shows a <see cref="Display.ProgressDisplay"/> updated in place.</summary>
    IProgressSink CreateProgress(string title, int? total = null) => new ProgressDisplay(title, total, this);
}

