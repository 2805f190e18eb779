using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Data.Analysis;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Fitting;

/// <summary>One data point: input values in column order, the observed value, and access by column name.</summary>
/// <param name="Names">Input column names.</param>
/// <param name="X">Input values.</param>
/// <param name="Y">Observed value.</param>
public readonly record struct FitPoint(IReadOnlyList<string> Names, double[] X, double Y)
{
    /// <summary>The value of an input column by name.</summary>
    public double this[string name]
    {
        get
        {
            for (int i = 0; i < Names.Count; i++) if (string.Equals(Names[i], name, StringComparison.OrdinalIgnoreCase)) return X[i];
            throw new ArgumentException($"No column '{name}'. Columns: {string.Join(", ", Names)}.", nameof(name));
        }
    }
}

/// <summary>
/// Data to fit: named input columns (mapped in order to a law's inputs) and one observed column. Built from arrays,
/// C# records, a CSV file, a <see cref="DataFrame"/> or a <see cref="RunStore"/>; every value is checked (finite,
/// equal lengths) with a message naming the column and row.
/// </summary>
public sealed class FitData
{
    /// <summary>Creates data from columns; throws an <see cref="ArgumentException"/> naming any bad value.</summary>
    /// <param name="xNames">Input column names.</param>
    /// <param name="x">Input columns, one array per name.</param>
    /// <param name="yName">Name of the observed column.</param>
    /// <param name="y">Observed values.</param>
    public FitData(IReadOnlyList<string> xNames, IReadOnlyList<double[]> x, string yName, double[] y)
    {
        ArgumentNullException.ThrowIfNull(xNames);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (xNames.Count == 0) throw new ArgumentException("Give at least one input column.", nameof(xNames));
        if (xNames.Count != x.Count)
            throw new ArgumentException($"{xNames.Count} input names ({string.Join(", ", xNames)}) but {x.Count} input columns; give one column per name.", nameof(x));
        for (int j = 0; j < x.Count; j++)
        {
            if (x[j] is null) throw new ArgumentException($"Input column {xNames[j]} is null.", nameof(x));
            if (x[j].Length != y.Length)
                throw new ArgumentException($"Mismatched lengths: input column {xNames[j]} has {x[j].Length} values but {yName} has {y.Length}; every column needs one value per point.", nameof(x));
            CheckFinite(xNames[j], x[j]);
        }
        CheckFinite(yName, y);
        XNames = [.. xNames];
        X = x.Select(c => c.ToArray()).ToArray();
        YName = yName;
        Y = y.ToArray();
    }

    /// <summary>Input column names.</summary>
    public string[] XNames { get; }

    /// <summary>Input columns.</summary>
    public double[][] X { get; }

    /// <summary>Name of the observed column.</summary>
    public string YName { get; }

    /// <summary>Observed values.</summary>
    public double[] Y { get; }

    /// <summary>Number of points.</summary>
    public int Count => Y.Length;

    /// <summary>Points skipped while reading (diverged runs, for example), with the reason.</summary>
    public IReadOnlyList<string> Skipped { get; init; } = [];

    /// <summary>The point at an index.</summary>
    public FitPoint Point(int index) => new(XNames, X.Select(c => c[index]).ToArray(), Y[index]);

    /// <summary>All points.</summary>
    public IEnumerable<FitPoint> Points => Enumerable.Range(0, Count).Select(Point);

    /// <summary>
    /// Data from any supported holder: <see cref="FitData"/> (returned as is), a <see cref="DataFrame"/>, a <see cref="RunStore"/>,
    /// a dictionary of columns (<c>string</c> to <c>double[]</c>), a <see cref="string"/> path of a CSV file, or a sequence of
    /// records (objects or dictionaries). This is what <c>#!scaling-fit --data</c> reads.
    /// </summary>
    /// <param name="source">The holder.</param>
    /// <param name="x">Input columns in the law's order.</param>
    /// <param name="y">Observed column.</param>
    /// <exception cref="ArgumentException">The holder's type is not supported, or a column is missing.</exception>
    public static FitData From(object source, IReadOnlyList<string> x, string y)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source switch
        {
            FitData data => data,
            DataFrame frame => FromDataFrame(frame, x, y),
            RunStore store => FromRunStore(store, x, y),
            IReadOnlyDictionary<string, double[]> columns => FromColumns(columns, x, y),
            IDictionary<string, double[]> columns => FromColumns(columns.ToDictionary(), x, y),
            string path => FromCsv(path, x, y),
            IEnumerable records => FromObjects(records, x, y),
            _ => throw new ArgumentException($"A {source.GetType().Name} holds no data FitData can read; use FitData, a DataFrame, a RunStore, a Dictionary<string, double[]>, a list of records, or a CSV path.", nameof(source)),
        };
    }

    /// <summary>Data with one input column: <c>(x, y)</c>.</summary>
    public static FitData FromArrays(double[] x, double[] y, string xName = "x", string yName = "y") => new([xName], [x], yName, y);

    /// <summary>Data with two input columns: <c>(N, D, loss)</c> for example.</summary>
    public static FitData FromArrays(double[] x1, double[] x2, double[] y, string x1Name = "N", string x2Name = "D", string yName = "loss") =>
        new([x1Name, x2Name], [x1, x2], yName, y);

    /// <summary>Data from named columns, choosing the inputs and the observed column by name.</summary>
    public static FitData FromColumns(IReadOnlyDictionary<string, double[]> columns, IReadOnlyList<string> x, string y)
    {
        double[] Column(string name) =>
            columns.FirstOrDefault(c => string.Equals(c.Key, name, StringComparison.OrdinalIgnoreCase)).Value
            ?? throw UnknownColumn(name, columns.Keys, "the columns");
        return new FitData(x, x.Select(Column).ToList(), y, Column(y));
    }

    /// <summary>Data from C# objects (records, classes, anonymous objects): numeric properties or fields chosen by name.</summary>
    public static FitData FromRecords<T>(IEnumerable<T> records, IReadOnlyList<string> x, string y) => FromObjects(records.Cast<object?>(), x, y);

    /// <summary>Data from any sequence of objects with numeric properties or fields chosen by name.</summary>
    public static FitData FromObjects(IEnumerable records, IReadOnlyList<string> x, string y)
    {
        var items = records.Cast<object?>().ToList();
        var names = x.Append(y).ToArray();
        var columns = names.Select(_ => new double[items.Count]).ToArray();
        for (int i = 0; i < items.Count; i++)
        {
            var item = items[i] ?? throw new ArgumentException($"Record {i} is null.", nameof(records));
            for (int j = 0; j < names.Length; j++)
            {
                var type = item.GetType();
                var flags = BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase;
                object? value = type.GetProperty(names[j], flags) is { } property ? property.GetValue(item)
                    : type.GetField(names[j], flags) is { } field ? field.GetValue(item)
                    : throw UnknownColumn(names[j], type.GetProperties().Select(p => p.Name).Concat(type.GetFields().Select(f => f.Name)), $"type {type.Name}");
                columns[j][i] = ToDouble(value, names[j], i);
            }
        }
        return new FitData(x, columns[..^1], y, columns[^1]);
    }

    /// <summary>
    /// Data from a CSV file with a header row (comma separated, double quotes allowed, invariant culture numbers):
    /// the inputs and the observed column are chosen by header name.
    /// </summary>
    public static FitData FromCsv(string path, IReadOnlyList<string> x, string y)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"CSV file '{path}' does not exist.", path);
        using var reader = new StreamReader(path);
        string? header = ReadLine(reader, path, 1);
        if (header is null) throw new InvalidDataException($"CSV file '{path}' is empty; it needs a header row naming the columns.");
        var headers = SplitCsv(header).Select(h => h.Trim()).ToArray();
        int Index(string name)
        {
            int index = Array.FindIndex(headers, h => string.Equals(h, name, StringComparison.OrdinalIgnoreCase));
            return index >= 0 ? index : throw UnknownColumn(name, headers, $"CSV file '{path}'");
        }
        var indices = x.Append(y).Select(Index).ToArray();
        var columns = indices.Select(_ => new List<double>()).ToArray();
        int lineNumber = 1;
        for (string? line = ReadLine(reader, path, 2); line is not null; line = ReadLine(reader, path, lineNumber + 2))
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            var cells = SplitCsv(line);
            for (int j = 0; j < indices.Length; j++)
            {
                string name = headers[indices[j]];
                if (indices[j] >= cells.Count)
                    throw new InvalidDataException($"CSV file '{path}', line {lineNumber}: {cells.Count} cells, no value for column {name}.");
                string cell = cells[indices[j]].Trim();
                if (!double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
                    throw new InvalidDataException($"CSV file '{path}', line {lineNumber}, column {name}: '{Cut(cell)}' is not a number (use invariant culture, e.g. 1.5e9).");
                columns[j].Add(value);
            }
        }
        try
        {
            return new FitData(x, columns[..^1].Select(c => c.ToArray()).ToList(), y, columns[^1].ToArray());
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"CSV file '{path}': {e.Message}", e);
        }
    }

    /// <summary>Data from a Microsoft.Data.Analysis <see cref="DataFrame"/>: columns chosen by name; rows with missing values are skipped and listed.</summary>
    public static FitData FromDataFrame(DataFrame frame, IReadOnlyList<string> x, string y)
    {
        ArgumentNullException.ThrowIfNull(frame);
        var available = frame.Columns.Select(c => c.Name).ToArray();
        var columns = x.Append(y).Select(name => frame.Columns.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase))
                                                   ?? throw UnknownColumn(name, available, "the DataFrame")).ToArray();
        var values = columns.Select(_ => new List<double>()).ToArray();
        var skipped = new List<string>();
        for (long row = 0; row < frame.Rows.Count; row++)
        {
            if (columns.Any(c => c[row] is null))
            {
                skipped.Add($"row {row}: missing value");
                continue;
            }
            for (int j = 0; j < columns.Length; j++) values[j].Add(ToDouble(columns[j][row], columns[j].Name, (int)row));
        }
        return new FitData(x, values[..^1].Select(v => v.ToArray()).ToList(), y, values[^1].ToArray()) { Skipped = skipped };
    }

    /// <summary>
    /// Data from a run store: numeric fields chosen by name or dotted path (for example <c>config.parameters</c>,
    /// <c>finalLoss</c>). Diverged runs (<c>"diverged": true</c> or <c>"status": "diverged"</c>) and runs without a
    /// finite value are skipped and listed in <see cref="Skipped"/>.
    /// </summary>
    public static FitData FromRunStore(RunStore store, IReadOnlyList<string> x, string y)
    {
        ArgumentNullException.ThrowIfNull(store);
        var names = x.Append(y).ToArray();
        var values = names.Select(_ => new List<double>()).ToArray();
        var skipped = new List<string>();
        var records = store.Records;
        if (records.Count > 0)
            foreach (var name in names)
                if (records.All(r => Navigate(r, name) is null))
                    throw UnknownColumn(name, records[0].Select(p => p.Key), $"run store '{store.Path}'");
        foreach (var record in records)
        {
            string key = record["key"]?.ToString() ?? "?";
            if (IsDiverged(record))
            {
                skipped.Add($"{key}: diverged");
                continue;
            }
            var row = new double[names.Length];
            string? problem = null;
            for (int j = 0; j < names.Length && problem is null; j++)
            {
                var node = Navigate(record, names[j]);
                if (node is JsonValue v && v.TryGetValue(out double d) && double.IsFinite(d)) row[j] = d;
                else problem = $"{key}: no finite number at {names[j]}";
            }
            if (problem is not null)
            {
                skipped.Add(problem);
                continue;
            }
            for (int j = 0; j < names.Length; j++) values[j].Add(row[j]);
        }
        return new FitData(x, values[..^1].Select(v => v.ToArray()).ToList(), y, values[^1].ToArray()) { Skipped = skipped };
    }

    /// <summary>Splits the points by a predicate: those it keeps, and the rest (for extrapolation checks).</summary>
    public (FitData Kept, FitData HeldOut) Split(Func<FitPoint, bool> keep)
    {
        var mask = Enumerable.Range(0, Count).Select(i => keep(Point(i))).ToArray();
        return (Subset(mask, true), Subset(mask, false));
    }

    /// <summary>Splits the points by a filter such as <c>N&lt;=1e9</c> or <c>N&gt;1e8 &amp;&amp; D&lt;1e11</c> (see <see cref="PointFilter"/>).</summary>
    public (FitData Kept, FitData HeldOut) Split(string filter) => Split(PointFilter.Parse(filter, XNames.Append(YName).ToArray()).Matches(this));

    private FitData Subset(bool[] mask, bool wanted)
    {
        var index = Enumerable.Range(0, Count).Where(i => mask[i] == wanted).ToArray();
        return new FitData(XNames, X.Select(c => index.Select(i => c[i]).ToArray()).ToList(), YName, index.Select(i => Y[i]).ToArray());
    }

    internal static ArgumentException UnknownColumn(string name, IEnumerable<string> available, string where) =>
        new($"Unknown column '{name}' in {where}. Available columns: {string.Join(", ", available.Take(50))}.", nameof(name));

    private static bool IsDiverged(JsonObject record) =>
        (record["diverged"] is JsonValue d && d.TryGetValue(out bool b) && b) ||
        (record["status"] is JsonValue s && s.TryGetValue(out string? text) && string.Equals(text, "diverged", StringComparison.OrdinalIgnoreCase));

    private static JsonNode? Navigate(JsonObject record, string path)
    {
        JsonNode? node = record;
        foreach (var part in path.Split('.'))
        {
            if (node is not JsonObject obj) return null;
            node = obj.FirstOrDefault(p => string.Equals(p.Key, part, StringComparison.OrdinalIgnoreCase)).Value;
        }
        return node;
    }

    private static double ToDouble(object? value, string column, int row) => value switch
    {
        double d => d,
        float f => f,
        int i => i,
        long l => l,
        decimal m => (double)m,
        short s => s,
        uint u => u,
        ulong ul => ul,
        null => throw new ArgumentException($"Column {column}, row {row}: the value is missing (null)."),
        IConvertible c when value is not string => c.ToDouble(CultureInfo.InvariantCulture),
        _ => throw new ArgumentException($"Column {column}, row {row}: '{Cut(value.ToString())}' ({value.GetType().Name}) is not a number."),
    };

    private static void CheckFinite(string name, double[] values)
    {
        for (int i = 0; i < values.Length; i++)
            if (!double.IsFinite(values[i]))
                throw new ArgumentException($"Column {name}, point {i}: the value is {values[i]}; every value must be a finite number (no NaN or Infinity).");
    }

    private static string Cut(string? text) => text is null ? "" : text.Length > 40 ? text[..40] + "..." : text;

    /// <summary>Longest CSV line accepted: a hostile or binary file cannot make the reader allocate without bound.</summary>
    internal const int MaxLineLength = 1 << 20;

    private static string? ReadLine(StreamReader reader, string path, int lineNumber)
    {
        var line = new StringBuilder();
        int c;
        while ((c = reader.Read()) >= 0)
        {
            if (c == '\n') return line.ToString().TrimEnd('\r');
            if (line.Length >= MaxLineLength)
                throw new InvalidDataException($"CSV file '{path}', line {lineNumber}: longer than {MaxLineLength} characters; this does not look like a CSV table of runs.");
            line.Append((char)c);
        }
        return line.Length > 0 ? line.ToString().TrimEnd('\r') : null;
    }

    private static List<string> SplitCsv(string line)
    {
        var cells = new List<string>();
        var cell = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { cell.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else cell.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { cells.Add(cell.ToString()); cell.Clear(); }
            else cell.Append(c);
        }
        cells.Add(cell.ToString());
        return cells;
    }
}

/// <summary>
/// A filter on points such as <c>N&gt;1e9</c>, <c>N&lt;=1e9 &amp;&amp; D&lt;1e11</c> or <c>step &lt; 5000 and D &gt; 1e9</c>:
/// comparisons (<c>&lt; &lt;= &gt; &gt;= == !=</c>) of a column with a number, joined by <c>&amp;&amp;</c> or <c>and</c>.
/// </summary>
public sealed class PointFilter
{
    private readonly (string Column, string Op, double Value)[] _terms;

    private PointFilter(string text, (string, string, double)[] terms)
    {
        Text = text;
        _terms = terms;
    }

    /// <summary>The filter text.</summary>
    public string Text { get; }

    /// <summary>Parses a filter; column names must be among <paramref name="columns"/>.</summary>
    public static PointFilter Parse(string text, IReadOnlyList<string> columns)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new ArgumentException("The filter is empty; write e.g. N>1e9.", nameof(text));
        var parts = System.Text.RegularExpressions.Regex.Split(text, @"\s*(?:&&|\band\b)\s*", System.Text.RegularExpressions.RegexOptions.IgnoreCase);
        var terms = new List<(string, string, double)>();
        foreach (var part in parts)
        {
            var m = System.Text.RegularExpressions.Regex.Match(part.Trim(), @"^([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>|=)\s*([-+0-9.eE]+)$");
            if (!m.Success)
                throw new ArgumentException($"Cannot read filter term '{part.Trim()}' of '{text}'; write column, comparison, number, e.g. N>1e9 or D<=5e10 (terms joined by && or and).", nameof(text));
            string column = m.Groups[1].Value;
            string? known = columns.FirstOrDefault(c => string.Equals(c, column, StringComparison.OrdinalIgnoreCase));
            if (known is null) throw FitData.UnknownColumn(column, columns, $"filter '{text}'");
            if (!double.TryParse(m.Groups[3].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
                throw new ArgumentException($"Filter '{text}': '{m.Groups[3].Value}' is not a number.", nameof(text));
            terms.Add((known, m.Groups[2].Value == "=" ? "==" : m.Groups[2].Value, value));
        }
        return new PointFilter(text, [.. terms]);
    }

    /// <summary>A predicate for points of <paramref name="data"/>.</summary>
    public Func<FitPoint, bool> Matches(FitData data) => point => _terms.All(t =>
    {
        double v = string.Equals(t.Column, data.YName, StringComparison.OrdinalIgnoreCase) && !data.XNames.Contains(t.Column, StringComparer.OrdinalIgnoreCase)
            ? point.Y : point[t.Column];
        return t.Op switch
        {
            "<" => v < t.Value,
            "<=" => v <= t.Value,
            ">" => v > t.Value,
            ">=" => v >= t.Value,
            "==" => v == t.Value,
            _ => v != t.Value,
        };
    });
}
