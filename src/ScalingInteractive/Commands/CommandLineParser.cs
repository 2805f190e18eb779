using System.Globalization;
using System.Text;

namespace ScalingInteractive.Commands;

/// <summary>One argument of a command line: a name (null for an implicit value) and its text (null for a flag).</summary>
public sealed record ParsedArgument(string? Name, string? Value);

/// <summary>A tokenised magic-command line.</summary>
public sealed record ParsedCommandLine(string CommandName, IReadOnlyList<ParsedArgument> Arguments);

/// <summary>
/// Parses a magic-command line with the kernel's rules: <c>#!name</c>, then <c>--kebab-name value</c> pairs,
/// flags without values, quoted multi-word values (<c>"a b"</c>), JSON literals (<c>[1,2]</c>, <c>{"a":1}</c>)
/// that may contain spaces, and <c>@csharp:name</c> replaced by the variable's text as the kernel does.
/// </summary>
public static class CommandLineParser
{
    /// <summary>Splits a line into command name and arguments. Variables are resolved through <paramref name="resolveVariable"/>.</summary>
    public static ParsedCommandLine Parse(string line, Func<string, string?>? resolveVariable = null)
    {
        var tokens = Tokenize(line.Trim());
        if (tokens.Count == 0 || !tokens[0].Text.StartsWith("#!", StringComparison.Ordinal) || tokens[0].Text.Length < 3)
            throw new CommandException($"'{line.Trim()}' is not a magic command: it must start with #! followed by the command name.");
        var arguments = new List<ParsedArgument>();
        string? pendingName = null;
        for (int i = 1; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (!token.Quoted && token.Text.StartsWith("--", StringComparison.Ordinal) && token.Text.Length > 2)
            {
                if (pendingName is not null) arguments.Add(new ParsedArgument(pendingName, null));
                pendingName = token.Text;
                continue;
            }
            string value = token.Text;
            if (!token.Quoted && value.StartsWith("@csharp:", StringComparison.Ordinal))
            {
                string variable = value["@csharp:".Length..];
                value = resolveVariable?.Invoke(variable)
                    ?? throw new CommandException($"{pendingName ?? tokens[0].Text}: @csharp:{variable} refers to a C# variable '{variable}' that does not exist.");
            }
            arguments.Add(new ParsedArgument(pendingName, value));
            pendingName = null;
        }
        if (pendingName is not null) arguments.Add(new ParsedArgument(pendingName, null));
        return new ParsedCommandLine(tokens[0].Text, arguments);
    }

    /// <summary>The text the kernel substitutes for <c>@csharp:name</c>: the value's ToString() (invariant culture for numbers).</summary>
    public static string VariableText(object? value) => value switch
    {
        null => "",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private readonly record struct Token(string Text, bool Quoted);

    private static List<Token> Tokenize(string line)
    {
        var tokens = new List<Token>();
        int i = 0;
        while (i < line.Length)
        {
            if (char.IsWhiteSpace(line[i])) { i++; continue; }
            if (line[i] == '"')
            {
                var sb = new StringBuilder();
                i++;
                while (true)
                {
                    if (i >= line.Length) throw new CommandException($"Unterminated quoted value in: {line}");
                    char c = line[i++];
                    if (c == '"') break;
                    if (c == '\\' && i < line.Length && (line[i] == '"' || line[i] == '\\')) c = line[i++];
                    sb.Append(c);
                }
                tokens.Add(new Token(sb.ToString(), true));
                continue;
            }
            int start = i;
            if (line[i] is '[' or '{')
            {
                i = SkipJson(line, i);
            }
            else
            {
                while (i < line.Length && !char.IsWhiteSpace(line[i])) i++;
            }
            tokens.Add(new Token(line[start..i], false));
        }
        return tokens;
    }

    // Returns the index just past a balanced JSON array/object starting at 'start' (strings respected).
    private static int SkipJson(string line, int start)
    {
        int depth = 0;
        bool inString = false;
        for (int i = start; i < line.Length; i++)
        {
            char c = line[i];
            if (inString)
            {
                if (c == '\\') i++;
                else if (c == '"') inString = false;
                continue;
            }
            if (c == '"') inString = true;
            else if (c is '[' or '{') depth++;
            else if (c is ']' or '}')
            {
                depth--;
                if (depth == 0) return i + 1;
            }
        }
        throw new CommandException($"Unbalanced JSON literal starting at '{line[start..]}'.");
    }
}
