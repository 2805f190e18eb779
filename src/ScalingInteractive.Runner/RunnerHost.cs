using System.Diagnostics;
using ScalingInteractive.Commands;

namespace ScalingInteractive.Runner;

/// <summary>The command host of the headless runner: outputs go to the cell, variables to the script state.</summary>
internal sealed class RunnerHost(ScriptSession session, CellOutputs outputs, CancellationToken cancellationToken) : ICommandHost
{
    public IDisplayHandle Display(object value) => outputs.Add(value, null);

    public bool TryGetVariable(string name, out object? value) => session.TryGetVariable(name, out value);

    public Task SetVariableAsync(string name, object value, Type declaredType)
    {
        session.QueueVariable(name, value, declaredType);
        return Task.CompletedTask;
    }

    public CancellationToken CancellationToken => cancellationToken;
}

/// <summary>Prints progress displays to the console, throttled, so long CI runs show signs of life.</summary>
internal static class ConsoleProgress
{
    private static readonly Stopwatch Clock = Stopwatch.StartNew();
    private static TimeSpan? _last;

    public static void OnUpdate(object? value)
    {
        if (value is not Display.ProgressDisplay progress) return;
        var now = Clock.Elapsed;
        if (!progress.IsComplete && _last is TimeSpan last && now - last < TimeSpan.FromSeconds(5)) return;
        _last = now;
        Console.Error.WriteLine("    " + progress.ToText());
    }
}
