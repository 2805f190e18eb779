using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Directives;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Events;
using ScalingInteractive.Commands;

namespace ScalingInteractive.Tests.Kernel;

/// <summary>
/// Fast checks of extension.dib against the REAL kernel API (Microsoft.DotNet.Interactive.CSharp, the version the tool
/// ships), in process: the extension compiles, registers one directive per catalogue command with the declared
/// parameters, and forwards to the library. The notebook tests run the same file in the real tool over stdio.
/// </summary>
public class ExtensionInProcessTests
{
    private static async Task<CompositeKernel> LoadExtensionAsync()
    {
        var kernel = new CompositeKernel { new CSharpKernel() };
        kernel.DefaultKernelName = "csharp";
        // The kernel references the package's lib/ assemblies, then runs extension.dib's C# cells as submissions.
        await Submit(kernel, $"#r \"{typeof(CommandCatalog).Assembly.Location}\"");
        var dib = CodeSubmission.Parse(File.ReadAllText(RepoPaths.ExtensionDib));
        foreach (var cell in dib.Elements.Where(e => e.KernelName == "csharp")) await Submit(kernel, cell.Contents);
        return kernel;
    }

    private static async Task<KernelCommandResult> Submit(Microsoft.DotNet.Interactive.Kernel kernel, string code, bool expectSuccess = true)
    {
        var result = await kernel.SendAsync(new SubmitCode(code));
        if (expectSuccess)
        {
            var errors = result.Events.OfType<CommandFailed>().Select(f => f.Message)
                .Concat(result.Events.OfType<DiagnosticsProduced>().SelectMany(d => d.Diagnostics).Where(d => d.Severity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error).Select(d => d.Message))
                .ToList();
            Assert.True(errors.Count == 0, string.Join("\n", errors));
        }
        return result;
    }

    [Fact]
    public async Task Every_catalogue_command_is_a_directive_with_the_declared_parameters()
    {
        using var kernel = await LoadExtensionAsync();
        var directives = kernel.KernelInfo.SupportedDirectives.OfType<KernelActionDirective>().ToDictionary(d => d.Name);
        foreach (var command in CommandCatalog.All)
        {
            Assert.True(directives.TryGetValue(command.Name, out var directive), $"{command.Name} is not registered");
            Assert.Equal(command.Parameters.Select(p => (p.Name, p.Required, p.IsFlag, p.AllowImplicitName)),
                directive!.Parameters.Select(p => (p.Name, p.Required, p.Flag, p.AllowImplicitName)));
        }
    }

    [Fact]
    public async Task Values_bind_through_the_library_and_user_errors_fail_with_its_message()
    {
        using var kernel = await LoadExtensionAsync();
        var help = await Submit(kernel, "#!scaling-help --command scaling-fit");
        var shown = help.Events.OfType<DisplayedValueProduced>().Single();
        Assert.Contains(shown.FormattedValues, v => v.MimeType == "text/html" && v.Value.Contains("--bootstrap"));
        Assert.Contains(shown.FormattedValues, v => v.MimeType == "text/plain" && v.Value.Contains("--bootstrap"));

        var unknown = await Submit(kernel, "#!scaling-help --command nothing", expectSuccess: false);
        Assert.Contains("nothing", Assert.Single(unknown.Events.OfType<CommandFailed>()).Message);

        await Submit(kernel, "var resamples = 50;\nvar points = ScalingInteractive.Fitting.FitData.FromArrays([1e6, 1e7, 1e8, 1e9], [3.0, 2.5, 2.2, 2.0], \"N\", \"L\");");
        var wrong = await Submit(kernel, "#!scaling-fit --law power --data points --bootstrap abc", expectSuccess: false);
        Assert.Contains("--bootstrap 'abc' is not an integer", Assert.Single(wrong.Events.OfType<CommandFailed>()).Message);
        await Submit(kernel, "#!scaling-fit --law power --data points --bootstrap resamples --name fit");
        var fit = await Submit(kernel, "fit.Bootstrap!.Resamples");
        Assert.Equal(50, fit.Events.OfType<ReturnValueProduced>().Single().Value);
    }
}
