using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.Scripting;
using Microsoft.CodeAnalysis.Scripting.Hosting;
using ScalingInteractive.Commands;
using ScalingInteractive.Runner;

namespace ScalingInteractive.Tests.Kernel;

/// <summary>
/// Compiles extension.dib's C# with Roslyn against the kernel API stub (KernelApiStub.cs) and runs it, so tests can
/// check that the adapter compiles, registers a directive per command, and forwards invocations to the library.
/// </summary>
internal static class ExtensionHarness
{
    private static readonly Lazy<(Assembly Assembly, MetadataReference Reference)> Stub = new(CompileStub);

    /// <summary>The C# cells of extension.dib, joined.</summary>
    public static string DibCSharp(string? dibText = null)
    {
        var cells = Notebook.ParseDib(dibText ?? File.ReadAllText(RepoPaths.ExtensionDib));
        return string.Join("\n", cells.Where(c => c.Kernel == "csharp").Select(c => c.Source));
    }

    public static Assembly StubAssembly => Stub.Value.Assembly;

    private static ScriptOptions Options() => ScriptOptions.Default
        .WithReferences(Stub.Value.Reference)
        .AddReferences(typeof(MagicCommand).Assembly, typeof(Microsoft.DotNet.Interactive.Formatting.Formatter).Assembly)
        .WithImports(Array.Empty<string>()); // the kernel's C# session adds its own usings; the adapter must not rely on them

    /// <summary>Error diagnostics of the adapter code compiled against the stub (empty: it compiles).</summary>
    public static IReadOnlyList<string> CompileErrors(string csharp)
    {
        var script = CSharpScript.Create(csharp, Options());
        return script.Compile().Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()).ToList();
    }

    /// <summary>Runs the adapter against a stub composite kernel (with a C# subkernel) and returns the root kernel.</summary>
    public static dynamic Load(string csharp)
    {
        var asm = StubAssembly;
        var composite = Activator.CreateInstance(asm.GetType("Microsoft.DotNet.Interactive.CompositeKernel")!)!;
        var csharpKernel = Activator.CreateInstance(asm.GetType("Microsoft.DotNet.Interactive.CSharp.CSharpKernel")!)!;
        composite.GetType().GetMethod("Add")!.Invoke(composite, [csharpKernel]);
        var context = NewContext(composite, CancellationToken.None);
        SetCurrentContext(context);
        try
        {
            var loader = new InteractiveAssemblyLoader();
            loader.RegisterDependency(asm);
            var script = CSharpScript.Create(csharp, Options(), assemblyLoader: loader);
            script.RunAsync().GetAwaiter().GetResult();
        }
        finally
        {
            SetCurrentContext(null);
        }
        return composite;
    }

    public static object NewContext(object kernel, CancellationToken token) =>
        Activator.CreateInstance(StubAssembly.GetType("Microsoft.DotNet.Interactive.KernelInvocationContext")!, kernel, token)!;

    private static void SetCurrentContext(object? context) =>
        StubAssembly.GetType("Microsoft.DotNet.Interactive.KernelInvocationContext")!.GetMethod("SetCurrentForTest")!.Invoke(null, [context]);

    /// <summary>
    /// Problems where the registered directive command types and the library's declarations disagree: a command with
    /// no directive, a directive with no command, a property missing or extra, or a property of the wrong type.
    /// </summary>
    public static IReadOnlyList<string> DriftProblems(string csharp, IEnumerable<MagicCommand> commands)
    {
        var problems = new List<string>();
        dynamic kernel = Load(csharp);
        var registered = new Dictionary<string, Type>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in (System.Collections.IEnumerable)kernel.Directives)
        {
            var tuple = (System.Runtime.CompilerServices.ITuple)entry;
            var directive = tuple[0]!;
            string name = (string)directive.GetType().GetProperty("Name")!.GetValue(directive)!;
            registered[name] = (Type)tuple[1]!;
        }
        var commandList = commands.ToList();
        foreach (var command in commandList)
        {
            if (!registered.TryGetValue(command.Name, out var type))
            {
                problems.Add($"{command.Name}: no directive registered in extension.dib");
                continue;
            }
            var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly).ToDictionary(p => p.Name);
            foreach (var parameter in command.Parameters)
            {
                if (!properties.TryGetValue(parameter.PropertyName, out var property))
                {
                    problems.Add($"{command.Name}: {type.Name} has no property {parameter.PropertyName} for {parameter.Name}");
                    continue;
                }
                var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                if (propertyType != parameter.Type)
                    problems.Add($"{command.Name}: {type.Name}.{property.Name} is {property.PropertyType.Name}, the library declares {parameter.Name} as {parameter.Type.Name}");
                else if (parameter.Type.IsValueType && !parameter.IsFlag && Nullable.GetUnderlyingType(property.PropertyType) is null)
                    problems.Add($"{command.Name}: {type.Name}.{property.Name} must be nullable ({parameter.Type.Name}?) so an absent value is not read as {Activator.CreateInstance(parameter.Type)}");
            }
            foreach (var extra in properties.Keys.Where(p => command.Parameters.All(q => q.PropertyName != p)))
                problems.Add($"{command.Name}: {type.Name}.{extra} matches no declared parameter");
        }
        foreach (var name in registered.Keys.Where(n => commandList.All(c => !string.Equals(c.Name, n, StringComparison.OrdinalIgnoreCase))))
            problems.Add($"{name}: directive registered in extension.dib but the library declares no such command");
        return problems;
    }

    private static (Assembly, MetadataReference) CompileStub()
    {
        string source = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Kernel", "KernelApiStub.cs"));
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "netstandard.dll" or "mscorlib.dll")
            .Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create("Microsoft.DotNet.Interactive.Stub",
            [CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest))],
            references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        using var stream = new MemoryStream();
        var result = compilation.Emit(stream);
        if (!result.Success)
            throw new InvalidOperationException("Kernel stub does not compile:\n" + string.Join("\n", result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        byte[] image = stream.ToArray();
        return (Assembly.Load(image), MetadataReference.CreateFromImage(image));
    }
}
