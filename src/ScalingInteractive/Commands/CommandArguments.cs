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

    /// <summary>The value or null when the parameter is absent and has no default.</summary>
    public object? this[string name] => _values.TryGetValue(Normalise(name), out object? v) ? v : null;

    /// <summary>All values by parameter name.</summary>
    public IReadOnlyDictionary<string, object?> Values => _values;

    private static string Normalise(string name) => name.StartsWith("--", StringComparison.Ordinal) ? name.ToLowerInvariant() : "--" + name.ToLowerInvariant();
}
