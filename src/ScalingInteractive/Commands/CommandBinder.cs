using System.Collections;
using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace ScalingInteractive.Commands;

/// <summary>
/// Binds argument values to a command's declared parameters and validates them, with messages that name the
/// parameter, the value and what is accepted. Used for both text command lines (runner) and values the kernel
/// has already bound to a directive's properties (extension.dib).
/// </summary>
public static class CommandBinder
{
    /// <summary>Binds text values (the runner's path): each value is converted as the kernel would, through System.Text.Json.</summary>
    public static CommandArguments BindText(MagicCommand command, IReadOnlyList<ParsedArgument> arguments)
    {
        var typed = new List<(CommandParameter, object?)>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var argument in arguments)
        {
            CommandParameter parameter;
            if (argument.Name is null)
            {
                parameter = command.Parameters.FirstOrDefault(p => p.AllowImplicitName)
                    ?? throw new CommandException($"{command.Name}: unexpected value '{argument.Value}' with no parameter name. Valid parameters: {ListParameters(command)}.");
            }
            else
            {
                parameter = command.FindParameter(argument.Name)
                    ?? throw new CommandException($"{command.Name}: unknown parameter '{argument.Name}'. Valid parameters: {ListParameters(command)}.");
            }
            if (!seen.Add(parameter.Name))
                throw new CommandException($"{command.Name}: parameter {parameter.Name} is given more than once; give it once (use a JSON list for several values).");
            if (parameter.IsFlag)
            {
                if (argument.Value is not null)
                    throw new CommandException($"{command.Name}: {parameter.Name} is a flag and takes no value (got '{argument.Value}'); write {parameter.Name} alone to turn it on.");
                typed.Add((parameter, true));
                continue;
            }
            if (argument.Value is null)
                throw new CommandException($"{command.Name}: {parameter.Name} needs a value: {parameter.Accepts}.");
            typed.Add((parameter, ConvertText(command, parameter, argument.Value)));
        }
        return Validate(command, typed);
    }

    /// <summary>
    /// Binds values keyed by property name (<c>MaxItems</c>) or parameter name (<c>--max-items</c>), as a kernel
    /// directive delivers them. Null values count as absent.
    /// </summary>
    public static CommandArguments BindValues(MagicCommand command, IReadOnlyDictionary<string, object?> values)
    {
        var typed = new List<(CommandParameter, object?)>();
        foreach (var (key, value) in values)
        {
            var parameter = command.Parameters.FirstOrDefault(p => string.Equals(p.PropertyName, key, StringComparison.OrdinalIgnoreCase))
                ?? command.FindParameter(key)
                ?? throw new CommandException($"{command.Name}: unknown parameter '{key}'. Valid parameters: {ListParameters(command)}.");
            if (value is null || (parameter.IsFlag && value is false)) continue;
            typed.Add((parameter, Coerce(command, parameter, value)));
        }
        return Validate(command, typed);
    }

    /// <summary>
    /// Binds raw JSON values keyed by the kernel's camelCase parameter names (<c>lrMin</c> for <c>--lr-min</c>). Keys that
    /// name no declared parameter are ignored (the kernel adds its own fields and rejects unknown parameters itself).
    /// Each value goes through the same conversion as a text command line, so a wrong-typed value gets a message that
    /// names the parameter, the value and what is accepted.
    /// </summary>
    /// <remarks>
    /// With <paramref name="variables"/>, a value that is a bare C# identifier naming a notebook variable stands for that
    /// variable's value (<c>--steps steps</c>), for every parameter that cannot take the identifier literally: numbers,
    /// lists and flags never parse as an identifier, so nothing is ambiguous. Parameters that accept a variable
    /// (<see cref="CommandParameter.AcceptsVariable"/>) keep the name; the command resolves it to the object. This is how
    /// notebooks pass C# values to commands in the kernel, whose <c>@csharp:</c> binding fails with two values on a line.
    /// </remarks>
    public static CommandArguments BindJson(MagicCommand command, IReadOnlyDictionary<string, JsonElement> values, Func<string, object?>? variables = null)
    {
        var typed = new List<(CommandParameter, object?)>();
        foreach (var (key, element) in values)
        {
            var parameter = command.Parameters.FirstOrDefault(p => string.Equals(p.PropertyName, key, StringComparison.OrdinalIgnoreCase));
            if (parameter is null || element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined) continue;
            if (parameter.IsFlag)
            {
                if (element.ValueKind == JsonValueKind.True) typed.Add((parameter, true));
                else if (element.ValueKind != JsonValueKind.False)
                    throw new CommandException($"{command.Name}: {parameter.Name} is a flag and takes no value (got '{element.GetRawText()}'); write {parameter.Name} alone to turn it on.");
                continue;
            }
            // A JSON string holds the text the user typed ("abc", or a quoted value); anything else is a JSON literal.
            string text = element.ValueKind == JsonValueKind.String ? element.GetString()! : element.GetRawText();
            if (variables is not null && VariableText(parameter, text, variables) is { } substituted) text = substituted;
            typed.Add((parameter, ConvertText(command, parameter, text)));
        }
        return Validate(command, typed);
    }

    /// <summary>The text of the variable a bare identifier names, or null when the value stays as typed.</summary>
    internal static string? VariableText(CommandParameter parameter, string value, Func<string, object?> variables)
    {
        if (parameter.AcceptsVariable || !IsIdentifier(value)) return null;
        if (parameter.Type == typeof(string) && parameter.AllowedValues.Contains(value, StringComparer.OrdinalIgnoreCase)) return null;
        return variables(value) switch
        {
            null => null,
            string text => text,
            IEnumerable list => ListJson(list),
            var other => CommandLineParser.VariableText(other),
        };
    }

    private static bool IsIdentifier(string value) =>
        value.Length > 0 && (char.IsLetter(value[0]) || value[0] == '_') && value.All(c => char.IsLetterOrDigit(c) || c == '_');

    private static CommandArguments Validate(MagicCommand command, List<(CommandParameter Parameter, object? Value)> typed)
    {
        var values = ImmutableDictionary.CreateBuilder<string, object?>(StringComparer.OrdinalIgnoreCase);
        var given = ImmutableHashSet.CreateBuilder<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var p in command.Parameters) values[p.Name] = p.Default ?? (p.IsFlag ? false : null);
        foreach (var (parameter, value) in typed)
        {
            CheckValue(command, parameter, value);
            values[parameter.Name] = value;
            given.Add(parameter.Name);
        }
        var missing = command.Parameters.Where(p => p.Required && !given.Contains(p.Name)).ToList();
        if (missing.Count > 0)
            throw new CommandException($"{command.Name}: missing required parameter{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(p => p.Name + " (" + p.Accepts + ")"))}.");
        return new CommandArguments(command, values.ToImmutable(), given.ToImmutable());
    }

    private static void CheckValue(MagicCommand command, CommandParameter parameter, object? value)
    {
        switch (value)
        {
            case string s:
                CheckAllowed(command, parameter, s);
                break;
            case string[] list:
                if (list.Length == 0) throw Fail(command, parameter, "[]", "the list is empty");
                foreach (var s in list) CheckAllowed(command, parameter, s);
                break;
            case int or long or double:
                CheckRange(command, parameter, Convert.ToDouble(value, CultureInfo.InvariantCulture), FormatValue(value));
                break;
            case int[] or double[]:
                var numbers = ((IEnumerable)value).Cast<object>().Select(o => Convert.ToDouble(o, CultureInfo.InvariantCulture)).ToArray();
                if (numbers.Length == 0) throw Fail(command, parameter, "[]", "the list is empty");
                foreach (double x in numbers) CheckRange(command, parameter, x, FormatValue(value));
                break;
        }
    }

    private static void CheckAllowed(MagicCommand command, CommandParameter parameter, string value)
    {
        if (!parameter.AllowedValues.IsEmpty && !parameter.AllowedValues.Contains(value, StringComparer.OrdinalIgnoreCase))
            throw new CommandException($"{command.Name}: {parameter.Name} '{value}' is not accepted; use one of: {string.Join(", ", parameter.AllowedValues)}.");
    }

    private static void CheckRange(MagicCommand command, CommandParameter parameter, double x, string shown)
    {
        if (double.IsNaN(x) || double.IsInfinity(x)) throw Fail(command, parameter, shown, "it is not a finite number");
        if (parameter.Minimum is double min && x < min) throw Fail(command, parameter, shown, $"{x.ToString(CultureInfo.InvariantCulture)} is below the minimum {min.ToString(CultureInfo.InvariantCulture)}");
        if (parameter.Maximum is double max && x > max) throw Fail(command, parameter, shown, $"{x.ToString(CultureInfo.InvariantCulture)} is above the maximum {max.ToString(CultureInfo.InvariantCulture)}");
    }

    private static CommandException Fail(MagicCommand command, CommandParameter parameter, string value, string why) =>
        new($"{command.Name}: {parameter.Name} {value} is not accepted: {why}. Accepted: {parameter.Accepts}.");

    private static object ConvertText(MagicCommand command, CommandParameter parameter, string text)
    {
        if (parameter.Type == typeof(string)) return text;
        try
        {
            // The kernel binds non-string values through System.Text.Json; do the same so both accept the same lines.
            return JsonSerializer.Deserialize(text, CommandJson.Default.GetTypeInfo(parameter.Type)!)
                ?? throw new JsonException("null");
        }
        catch (JsonException)
        {
            throw new CommandException($"{command.Name}: {parameter.Name} '{text}' is not {parameter.Accepts}.");
        }
    }

    private static object Coerce(MagicCommand command, CommandParameter parameter, object value)
    {
        if (parameter.Type.IsInstanceOfType(value)) return value;
        try
        {
            if (parameter.Type == typeof(string)) return Convert.ToString(value, CultureInfo.InvariantCulture)!;
            if (parameter.Type == typeof(int[]) && value is IEnumerable ints) return ints.Cast<object>().Select(o => Convert.ToInt32(o, CultureInfo.InvariantCulture)).ToArray();
            if (parameter.Type == typeof(double[]) && value is IEnumerable doubles) return doubles.Cast<object>().Select(o => Convert.ToDouble(o, CultureInfo.InvariantCulture)).ToArray();
            if (parameter.Type == typeof(string[]) && value is IEnumerable strings and not string) return strings.Cast<object>().Select(o => Convert.ToString(o, CultureInfo.InvariantCulture)!).ToArray();
            if (value is IConvertible) return Convert.ChangeType(value, parameter.Type, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or InvalidCastException or OverflowException) { }
        throw new CommandException($"{command.Name}: {parameter.Name} '{FormatValue(value)}' is not {parameter.Accepts}.");
    }

    internal static string FormatValue(object? value) => value switch
    {
        null => "null",
        string s => s,
        IEnumerable e => ListJson(e),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string ListParameters(MagicCommand command) =>
        command.Parameters.Length == 0 ? "(none)" : string.Join(", ", command.Parameters.Select(p => p.Name));

    /// <summary>A list of numbers, strings or flags as a JSON array (no reflection: file-based apps turn it off).</summary>
    internal static string ListJson(IEnumerable values) =>
        new JsonArray(values.Cast<object?>().Select(v => v switch
        {
            null => null,
            string text => JsonValue.Create(text),
            bool flag => JsonValue.Create(flag),
            int or long or short or byte => JsonValue.Create(Convert.ToInt64(v, CultureInfo.InvariantCulture)),
            float or double or decimal => JsonValue.Create(Convert.ToDouble(v, CultureInfo.InvariantCulture)),
            _ => (JsonNode?)JsonValue.Create(Convert.ToString(v, CultureInfo.InvariantCulture)),
        }).ToArray()).ToJsonString();
}

/// <summary>
/// The value types a command parameter binds to (<see cref="CommandParameter.SupportedTypes"/>), read with
/// source-generated metadata and strict numbers, as the kernel binds them.
/// </summary>
[JsonSourceGenerationOptions(NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(int[]))]
[JsonSerializable(typeof(double[]))]
[JsonSerializable(typeof(string[]))]
internal sealed partial class CommandJson : JsonSerializerContext
{
}
