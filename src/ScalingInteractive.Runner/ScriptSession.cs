using System.Reflection;
using System.Text;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.Scripting;

namespace ScalingInteractive.Runner;

/// <summary>
/// One Roslyn scripting state shared by all C# cells of a notebook, as in the kernel's C# session.
/// </summary>
internal sealed class ScriptSession
{
    private readonly List<(string Name, object Value, Type Type)> _pendingVariables = new();
    private ScriptState<object>? _state;

    public RunnerGlobals Globals { get; } = new();

    public static ScriptOptions Options { get; } = ScriptOptions.Default
        .WithReferences(ReferencedAssemblies())
        .WithImports("System", "System.IO", "System.Linq", "System.Text", "System.Collections.Generic", "System.Threading", "System.Threading.Tasks")
        .WithLanguageVersion(Microsoft.CodeAnalysis.CSharp.LanguageVersion.Latest)
        .WithOptimizationLevel(Microsoft.CodeAnalysis.OptimizationLevel.Release)
        .WithAllowUnsafe(false);

    private static IEnumerable<Assembly> ReferencedAssemblies()
    {
        var seeds = new[]
        {
            typeof(ScalingInteractive.Commands.MagicCommand).Assembly,
            typeof(TorchSharp.torch).Assembly,
            typeof(MathNet.Numerics.LinearAlgebra.Matrix<double>).Assembly,
            typeof(Microsoft.DotNet.Interactive.Formatting.Formatter).Assembly,
            typeof(Microsoft.AspNetCore.Html.HtmlString).Assembly,
            typeof(System.Text.Json.JsonSerializer).Assembly,
            typeof(System.Collections.Immutable.ImmutableArray).Assembly,
            typeof(RunnerGlobals).Assembly,
        };
        return seeds.Distinct();
    }

    /// <summary>Runs one chunk of C# and returns its value (the last expression without a semicolon), or null.</summary>
    public async Task<object?> RunAsync(string code, CancellationToken cancellationToken)
    {
        _state = _state is null
            ? await CSharpScript.RunAsync(code, Options, Globals, typeof(RunnerGlobals), cancellationToken)
            : await _state.ContinueWithAsync(code, Options, cancellationToken);
        if (_state.Exception is not null) throw _state.Exception;
        return _state.ReturnValue;
    }

    public bool TryGetVariable(string name, out object? value)
    {
        var variable = _state?.Variables.LastOrDefault(v => v.Name == name);
        if (variable is not null)
        {
            value = variable.Value;
            return true;
        }
        var pending = _pendingVariables.LastOrDefault(v => v.Name == name);
        value = pending.Value;
        return pending.Name is not null;
    }

    public void QueueVariable(string name, object value, Type type)
    {
        if (!Microsoft.CodeAnalysis.CSharp.SyntaxFacts.IsValidIdentifier(name))
            throw new Commands.CommandException($"'{name}' is not a valid C# variable name.");
        _pendingVariables.Add((name, value, type));
    }

    /// <summary>Declares variables that commands set, so later cells see them with their declared types.</summary>
    public async Task FlushVariablesAsync(CancellationToken cancellationToken)
    {
        if (_pendingVariables.Count == 0) return;
        var code = new StringBuilder();
        foreach (var (name, value, type) in _pendingVariables)
        {
            Globals.__si_vars[name] = value;
            code.Append($"var {name} = ({CSharpTypeName(type)})__si_vars[\"{name}\"];\n");
        }
        _pendingVariables.Clear();
        await RunAsync(code.ToString(), cancellationToken);
    }

    /// <summary>C# source name of a type (generics, arrays and nested types included); object for non-public types.</summary>
    public static string CSharpTypeName(Type type)
    {
        if (!(type.IsPublic || type.IsNestedPublic) && !type.IsArray) return "object";
        if (type.IsArray) return CSharpTypeName(type.GetElementType()!) + "[" + new string(',', type.GetArrayRank() - 1) + "]";
        string name = (type.FullName ?? type.Name).Replace('+', '.');
        if (!type.IsGenericType) return "global::" + name;
        string baseName = name[..name.IndexOf('`')];
        return "global::" + baseName + "<" + string.Join(", ", type.GetGenericArguments().Select(CSharpTypeName)) + ">";
    }
}
