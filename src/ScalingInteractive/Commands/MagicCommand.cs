using System.Collections.Immutable;

namespace ScalingInteractive.Commands;

/// <summary>
/// A magic command such as <c>#!scaling-fit</c>: declared once (name, description, parameters) and
/// implemented once against <see cref="ICommandHost"/>. The kernel adapter and the headless runner
/// both call it; neither holds any logic of its own.
/// </summary>
public abstract class MagicCommand
{
    /// <summary>The command name including <c>#!</c>, e.g. <c>#!scaling-fit</c>.</summary>
    public abstract string Name { get; }

    /// <summary>One paragraph for help.</summary>
    public abstract string Description { get; }

    /// <summary>Declared parameters, in help order.</summary>
    public abstract ImmutableArray<CommandParameter> Parameters { get; }

    /// <summary>Runs the command with bound and validated arguments.</summary>
    public abstract Task InvokeAsync(CommandArguments arguments, ICommandHost host);

    /// <summary>Finds a declared parameter by name (with or without leading dashes, case-insensitive).</summary>
    public CommandParameter? FindParameter(string name)
    {
        string wanted = name.StartsWith("--", StringComparison.Ordinal) ? name : "--" + name;
        return Parameters.FirstOrDefault(p => string.Equals(p.Name, wanted, StringComparison.OrdinalIgnoreCase));
    }
}

/// <summary>A user error in a command line or its values: shown as a message, never as a stack trace.</summary>
public sealed class CommandException(string message) : UserErrorException(message);
