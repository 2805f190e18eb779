using System.Collections.Immutable;

namespace ScalingInteractive.Commands;

/// <summary>Bound, validated argument values of one command invocation (defaults applied).</summary>
public sealed class CommandArguments
{
    private readonly ImmutableDictionary<string, object?> _values;
    private readonly ImmutableHashSet<string> _given;

    internal CommandArguments(MagicCommand command, ImmutableDictionary<string, object?> values, ImmutableHashSet<string> given)
    {
        Command = command;
        _values = values;
        _given = given;
    }

    /// <summary>The command these arguments belong to.</summary>
    public MagicCommand Command { get; }

    /// <summary>Parameter names (with dashes) the user gave explicitly.</summary>
    public IReadOnlySet<string> Given => _given;

    /// <summary>True when the user gave the parameter (not just its default).</summary>
    public bool IsGiven(string name) => _given.Contains(Normalise(name));

    /// <summary>The value of a parameter (its default when absent), converted to <typeparamref name="T"/>.</summary>
    public T Get<T>(string name)
    {
        string key = Normalise(name);
        var parameter = Command.FindParameter(key) ?? throw new ArgumentException($"{Command.Name} declares no parameter {key}.", nameof(name));
        _values.TryGetValue(parameter.Name, out object? value);
        if (value is null) return default!;
        return value is T typed ? typed : throw new InvalidCastException($"{parameter.Name} is {parameter.Type.Name}, not {typeof(T).Name}.");
    }

    /// <summary>
    /// For a parameter declared with <see cref="CommandParameter.AcceptsVariable"/>: the value of the C# variable whose bare
    /// name was given, else the text itself when it is an existing file or folder; null when the parameter is absent.
    /// Throws a <see cref="CommandException"/> saying both were tried otherwise.
    /// </summary>
    /// <param name="name">The parameter, e.g. <c>--base</c>.</param>
    /// <param name="host">Where variables are looked up.</param>
    /// <param name="expected">What the parameter takes, for the message (e.g. "a TorchSharp module, a dictionary of tensors or a .safetensors file or folder").</param>
    public object? GetVariableOrPath(string name, ICommandHost host, string expected)
    {
        ArgumentNullException.ThrowIfNull(host);
        var parameter = Command.FindParameter(Normalise(name)) ?? throw new ArgumentException($"{Command.Name} declares no parameter {name}.", nameof(name));
        if (!parameter.AcceptsVariable) throw new InvalidOperationException($"{Command.Name} {parameter.Name} is not declared AcceptsVariable.");
        if (Get<string>(parameter.Name) is not { } text) return null;
        if (host.TryGetVariable(text, out object? value) && value is not null) return value;
        if (File.Exists(text) || Directory.Exists(text)) return text;
        // @csharp:x is replaced by the variable's text (ToString/JSON) before the command sees it, so objects arrive as type names.
        throw new CommandException($"{Command.Name}: {parameter.Name} '{text}' is neither a C# variable (none has that name) nor an existing file or folder. " +
                                   $"It takes {expected}: give the variable's bare name ({parameter.Name} myVariable) or a path. " +
                                   $"Do not write @csharp:myVariable: that passes only the variable's text/JSON, not the object.");
    }

    /// <summary>The value or null when the parameter is absent and has no default.</summary>
    public object? this[string name] => _values.TryGetValue(Normalise(name), out object? v) ? v : null;

    /// <summary>All values by parameter name.</summary>
    public IReadOnlyDictionary<string, object?> Values => _values;

    private static string Normalise(string name) => name.StartsWith("--", StringComparison.Ordinal) ? name.ToLowerInvariant() : "--" + name.ToLowerInvariant();
}
