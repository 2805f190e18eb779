using System.Collections.Immutable;
using ScalingInteractive.Display;

namespace ScalingInteractive.Commands;

/// <summary><c>#!scaling-help</c>: lists every magic command with its parameters, or one command in detail.</summary>
public sealed class HelpCommand : MagicCommand
{
    /// <inheritdoc />
    public override string Name => "#!scaling-help";

    /// <inheritdoc />
    public override string Description => "Lists the ScalingInteractive magic commands and their parameters.";

    /// <inheritdoc />
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        new("--command", typeof(string), "Show only this command (for example scaling-fit).") { AllowImplicitName = true },
    ];

    /// <inheritdoc />
    public override Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        string? only = arguments.Get<string>("--command");
        var commands = only is null ? CommandCatalog.All : [CommandCatalog.Get(only)];
        host.Display(new CommandHelp(commands));
        return Task.CompletedTask;
    }
}
