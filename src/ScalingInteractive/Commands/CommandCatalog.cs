using System.Collections.Immutable;

namespace ScalingInteractive.Commands;

/// <summary>
/// All magic commands of the package. Hosts (extension.dib, the runner) look commands up here and invoke them;
/// adding a command means adding it to <see cref="All"/> and a directive class to extension.dib (a test checks both).
/// </summary>
public static class CommandCatalog
{
    /// <summary>Every command, in help order.</summary>
    public static ImmutableArray<MagicCommand> All { get; } =
    [
        new HelpCommand(),
        new ScalingFitCommand(),
        new ProxyTrainCommand(),
        new ProxySweepCommand(),
        new IntrinsicDimCommand(),
        new LoraSpectrumCommand(),
        new LoraExperimentCommand(),
        new SweepSubmitCommand(),
        new SweepStatusCommand(),
        new SweepCollectCommand(),
    ];

    /// <summary>Finds a command by name (with or without <c>#!</c>, case-insensitive).</summary>
    public static MagicCommand? Find(string name)
    {
        string wanted = name.StartsWith("#!", StringComparison.Ordinal) ? name : "#!" + name;
        return All.FirstOrDefault(c => string.Equals(c.Name, wanted, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Finds a command or throws a <see cref="CommandException"/> listing the valid ones.</summary>
    public static MagicCommand Get(string name) =>
        Find(name) ?? throw new CommandException($"Unknown magic command '{name}'. Valid commands: {string.Join(", ", All.Select(c => c.Name))}.");

    /// <summary>Parses and runs one command line (the runner's path).</summary>
    public static Task InvokeAsync(string commandLine, ICommandHost host)
    {
        var parsed = CommandLineParser.Parse(commandLine, name => host.TryGetVariable(name, out object? value) ? CommandLineParser.VariableText(value) : null);
        var command = Get(parsed.CommandName);
        var arguments = CommandBinder.BindText(command, parsed.Arguments);
        return command.InvokeAsync(arguments, host);
    }

    /// <summary>
    /// The message to show for a failure caused by the user's input or environment (bad parameter, missing file or
    /// variable, no TorchSharp backend, cancellation), or null for an unexpected failure that deserves its stack trace.
    /// Both hosts use it so a user error never shows as a stack trace.
    /// </summary>
    public static string? UserErrorMessage(Exception error) => UserErrors.MessageOf(error);

    /// <summary>
    /// Runs a command from the raw JSON values the kernel delivers (the extension's path): keys are the kernel's
    /// camelCase parameter names; keys that match no declared parameter are the kernel's own fields and are ignored
    /// (the kernel has already rejected unknown parameters). Values are bound by <see cref="CommandBinder.BindJson"/>.
    /// </summary>
    public static Task InvokeJsonAsync(string commandName, IReadOnlyDictionary<string, System.Text.Json.JsonElement> values, ICommandHost host)
    {
        var command = Get(commandName);
        var arguments = CommandBinder.BindJson(command, values, name => host.TryGetVariable(name, out object? value) ? value : null);
        return command.InvokeAsync(arguments, host);
    }

    /// <summary>Runs a command whose values a host has already bound to properties.</summary>
    public static Task InvokeAsync(string commandName, IReadOnlyDictionary<string, object?> propertyValues, ICommandHost host)
    {
        var command = Get(commandName);
        var arguments = CommandBinder.BindValues(command, propertyValues);
        return command.InvokeAsync(arguments, host);
    }
}
