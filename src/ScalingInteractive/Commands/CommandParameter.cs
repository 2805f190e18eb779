using System.Collections.Immutable;

namespace ScalingInteractive.Commands;

/// <summary>
/// One declared parameter of a magic command. The declaration is the single source of truth: the
/// runner's parser, the kernel adapter in extension.dib, validation and <c>#!scaling-help</c> all read it.
/// </summary>
/// <remarks>
/// Supported value types mirror what the .NET Interactive kernel binds: <see cref="string"/>, <see cref="int"/>,
/// <see cref="long"/>, <see cref="double"/>, <see cref="bool"/> (flags only), and JSON lists
/// <c>int[]</c>, <c>double[]</c>, <c>string[]</c>.
/// </remarks>
public sealed record CommandParameter
{
    /// <summary>Types a parameter may have.</summary>
    public static readonly ImmutableArray<Type> SupportedTypes =
        [typeof(string), typeof(int), typeof(long), typeof(double), typeof(bool), typeof(int[]), typeof(double[]), typeof(string[])];

    /// <summary>Creates a parameter; <paramref name="name"/> is kebab-case with its leading <c>--</c>.</summary>
    public CommandParameter(string name, Type type, string description)
    {
        if (!name.StartsWith("--", StringComparison.Ordinal) || name.Length < 3 || name.Any(c => char.IsUpper(c) || char.IsWhiteSpace(c)))
            throw new ArgumentException($"Parameter name '{name}' must be kebab-case and start with '--', e.g. --max-items.", nameof(name));
        if (!SupportedTypes.Contains(type))
            throw new ArgumentException($"Parameter {name}: type {type.Name} is not supported; use one of {string.Join(", ", SupportedTypes.Select(TypeNames.Describe))}.", nameof(type));
        if (name is "--target-kernel-name" or "--invoked-directive")
            throw new ArgumentException($"Parameter name '{name}' is reserved by the .NET Interactive kernel.", nameof(name));
        Name = name;
        Type = type;
        Description = description;
    }

    /// <summary>Kebab-case name with leading dashes, e.g. <c>--learning-rates</c>.</summary>
    public string Name { get; }

    /// <summary>The CLR type the value binds to.</summary>
    public Type Type { get; }

    /// <summary>One line for help text.</summary>
    public string Description { get; init; }

    /// <summary>Value used when the parameter is absent (null: none).</summary>
    public object? Default { get; init; }

    /// <summary>The command fails when this parameter is absent.</summary>
    public bool Required { get; init; }

    /// <summary>A lone value with no <c>--name</c> binds to this parameter (at most one per command).</summary>
    public bool AllowImplicitName { get; init; }

    /// <summary>For string (or string list) parameters: the accepted values, compared case-insensitively.</summary>
    public ImmutableArray<string> AllowedValues { get; init; } = [];

    /// <summary>Inclusive lower bound for numbers and each element of number lists.</summary>
    public double? Minimum { get; init; }

    /// <summary>Inclusive upper bound for numbers and each element of number lists.</summary>
    public double? Maximum { get; init; }

    /// <summary>
    /// For text parameters that name a model or data: the value may be the BARE name of a C# variable (looked up through
    /// <see cref="ICommandHost.TryGetVariable"/>), else it is a path. Read it with <see cref="CommandArguments.GetVariableOrPath"/>.
    /// Help shows such parameters as "a C# variable name or a path".
    /// </summary>
    public bool AcceptsVariable
    {
        get => _acceptsVariable;
        init
        {
            if (value && Type != typeof(string))
                throw new ArgumentException($"Parameter {Name}: only text parameters can accept a C# variable name (it is {TypeNames.Describe(Type)}).", nameof(AcceptsVariable));
            _acceptsVariable = value;
        }
    }

    private readonly bool _acceptsVariable;

    /// <summary>True for boolean parameters, which are flags: present means true.</summary>
    public bool IsFlag => Type == typeof(bool);

    /// <summary>The PascalCase property name the kernel binds this parameter to (<c>--max-items</c> to <c>MaxItems</c>).</summary>
    public string PropertyName => TypeNames.KebabToPascal(Name);

    /// <summary>What <see cref="Accepts"/> says for a parameter that <see cref="AcceptsVariable"/>.</summary>
    public const string VariableOrPath = "a C# variable name or a path";

    /// <summary>Short description of the accepted values, used in error messages and help.</summary>
    public string Accepts
    {
        get
        {
            string kind = AcceptsVariable ? VariableOrPath : TypeNames.Describe(Type);
            if (!AllowedValues.IsEmpty) kind += " (one of: " + string.Join(", ", AllowedValues) + ")";
            if (Minimum is not null && Maximum is not null) kind += $" in [{Minimum}, {Maximum}]";
            else if (Minimum is not null) kind += $" >= {Minimum}";
            else if (Maximum is not null) kind += $" <= {Maximum}";
            return kind;
        }
    }
}

/// <summary>Helpers for naming types and parameters the way users see them.</summary>
public static class TypeNames
{
    /// <summary>Human name of a parameter type, e.g. "a JSON list of numbers".</summary>
    public static string Describe(Type type) => type switch
    {
        _ when type == typeof(string) => "text",
        _ when type == typeof(int) => "an integer",
        _ when type == typeof(long) => "an integer",
        _ when type == typeof(double) => "a number",
        _ when type == typeof(bool) => "a flag (no value)",
        _ when type == typeof(int[]) => "a JSON list of integers, e.g. [64,128]",
        _ when type == typeof(double[]) => "a JSON list of numbers, e.g. [1e-3,3e-3]",
        _ when type == typeof(string[]) => "a JSON list of strings, e.g. [\"a\",\"b\"]",
        _ => type.Name,
    };

    /// <summary><c>--max-items</c> to <c>MaxItems</c>, the kernel's binding rule.</summary>
    public static string KebabToPascal(string name)
    {
        var parts = name.TrimStart('-').Split('-', StringSplitOptions.RemoveEmptyEntries);
        return string.Concat(parts.Select(p => char.ToUpperInvariant(p[0]) + p[1..]));
    }
}
