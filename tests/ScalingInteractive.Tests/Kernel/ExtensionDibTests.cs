using ScalingInteractive.Commands;
using ScalingInteractive.Display;

namespace ScalingInteractive.Tests.Kernel;

public class ExtensionDibTests
{
    [Fact]
    public void Extension_compiles_against_the_kernel_api_stub()
    {
        Assert.Empty(ExtensionHarness.CompileErrors(ExtensionHarness.DibCSharp()));
    }

    [Fact]
    public void A_broken_adapter_fails_the_compile_check()
    {
        string broken = ExtensionHarness.DibCSharp().Replace("KernelActionDirective(name)", "KernelActionDirectiv(name)");
        Assert.Contains(ExtensionHarness.CompileErrors(broken), e => e.Contains("KernelActionDirectiv"));
        // A member the kernel does not have (for example a guessed API) also fails.
        string guessed = ExtensionHarness.DibCSharp().Replace("context.Fail(", "context.FailWith(");
        Assert.NotEmpty(ExtensionHarness.CompileErrors(guessed));
    }

    [Fact]
    public void Every_command_has_a_matching_directive_and_vice_versa()
    {
        Assert.Empty(ExtensionHarness.DriftProblems(ExtensionHarness.DibCSharp(), CommandCatalog.All));
    }

    [Fact]
    public void Drift_is_reported_for_a_renamed_property_a_wrong_type_and_a_missing_command()
    {
        string renamed = ExtensionHarness.DibCSharp().Replace("public string Command { get; set; }", "public string Commandd { get; set; }");
        var problems = ExtensionHarness.DriftProblems(renamed, CommandCatalog.All);
        Assert.Contains(problems, p => p.Contains("no property Command"));
        Assert.Contains(problems, p => p.Contains("Commandd matches no declared parameter"));

        string retyped = ExtensionHarness.DibCSharp().Replace("public string Command { get; set; }", "public int? Command { get; set; }");
        Assert.Contains(ExtensionHarness.DriftProblems(retyped, CommandCatalog.All), p => p.Contains("declares --command as String"));

        var extra = CommandCatalog.All.Add(new FakeCommand());
        Assert.Contains(ExtensionHarness.DriftProblems(ExtensionHarness.DibCSharp(), extra), p => p.StartsWith("#!scaling-fake: no directive"));
    }

    [Fact]
    public void Directives_mirror_the_declared_parameters()
    {
        dynamic kernel = ExtensionHarness.Load(ExtensionHarness.DibCSharp());
        foreach (var entry in (System.Collections.IEnumerable)kernel.Directives)
        {
            dynamic directive = ((System.Runtime.CompilerServices.ITuple)entry)[0]!;
            var command = CommandCatalog.Get((string)directive.Name);
            Assert.Equal(command.Description, (string)directive.Description);
            var parameters = ((System.Collections.IEnumerable)directive.Parameters).Cast<dynamic>().ToList();
            Assert.Equal(command.Parameters.Select(p => p.Name), parameters.Select(p => (string)p.Name));
            foreach (var (declared, registered) in command.Parameters.Zip(parameters))
            {
                Assert.Equal(declared.Required, (bool)registered.Required);
                Assert.Equal(declared.IsFlag, (bool)registered.Flag);
                Assert.Equal(declared.AllowImplicitName, (bool)registered.AllowImplicitName);
            }
        }
    }

    [Fact]
    public async Task An_invocation_is_forwarded_to_the_library_and_displayed()
    {
        dynamic kernel = ExtensionHarness.Load(ExtensionHarness.DibCSharp());
        (Type commandType, Func<object, object, Task> handler) = Handler((object)kernel, "#!scaling-help");
        dynamic directiveCommand = Activator.CreateInstance(commandType)!;
        directiveCommand.Command = "scaling-help";
        dynamic context = ExtensionHarness.NewContext(kernel, CancellationToken.None);
        await handler(directiveCommand, context);
        Assert.False((bool)context.IsFailed);
        var shown = Assert.Single((IEnumerable<dynamic>)context.Displayed);
        var help = Assert.IsType<CommandHelp>((object)shown.Value);
        Assert.Equal("#!scaling-help", Assert.Single(help.Commands).Name);
    }

    [Fact]
    public async Task A_user_error_fails_the_cell_with_the_library_message()
    {
        dynamic kernel = ExtensionHarness.Load(ExtensionHarness.DibCSharp());
        (Type commandType, Func<object, object, Task> handler) = Handler((object)kernel, "#!scaling-help");
        dynamic directiveCommand = Activator.CreateInstance(commandType)!;
        directiveCommand.Command = "no-such-command";
        dynamic context = ExtensionHarness.NewContext(kernel, CancellationToken.None);
        await handler(directiveCommand, context);
        Assert.True((bool)context.IsFailed);
        Assert.Contains("Unknown magic command 'no-such-command'", (string)context.FailureMessage);
        Assert.Contains("#!scaling-help", (string)context.FailureMessage);
    }

    private static (Type, Func<object, object, Task>) Handler(object kernel, string name)
    {
        foreach (var entry in (System.Collections.IEnumerable)((dynamic)kernel).Directives)
        {
            var tuple = (System.Runtime.CompilerServices.ITuple)entry;
            dynamic directive = tuple[0]!;
            if ((string)directive.Name != name) continue;
            var handler = (Delegate)tuple[2]!;
            return ((Type)tuple[1]!, (command, context) => (Task)handler.DynamicInvoke(command, context)!);
        }
        throw new InvalidOperationException(name + " was not registered");
    }

    private sealed class FakeCommand : MagicCommand
    {
        public override string Name => "#!scaling-fake";
        public override string Description => "fake";
        public override System.Collections.Immutable.ImmutableArray<CommandParameter> Parameters { get; } = [];
        public override Task InvokeAsync(CommandArguments arguments, ICommandHost host) => Task.CompletedTask;
    }
}
