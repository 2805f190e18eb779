using System.Text;

namespace ScalingInteractive.Proxies;

/// <summary>
/// Where an experiment's text comes from, written into its spec so a worker on another machine builds the same corpus:
/// the built-in synthetic grammar (size and seed), or a UTF-8 file by absolute path (readable where the workers run: a
/// shared file system on a cluster), optionally a slice of it (cut at line breaks) and transformed (lines reversed,
/// upper-cased): how notebook 03 pre-trains on the first 80% of tiny Shakespeare and notebook 04 builds its tasks.
/// </summary>
public sealed record CorpusSource
{
    /// <summary><c>synthetic</c> or <c>file</c>.</summary>
    public string Source { get; init; } = "synthetic";

    /// <summary>Absolute path of the text file (<see cref="Source"/> <c>file</c>).</summary>
    public string? Path { get; init; }

    /// <summary>Bytes of synthetic text.</summary>
    public int Bytes { get; init; } = 1_000_000;

    /// <summary>Seed of the synthetic grammar.</summary>
    public int Seed { get; init; }

    /// <summary>Fraction of the text kept for validation (files; the synthetic corpus always uses 0.1).</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>A file's text from this fraction of its length (cut at the next line break; default 0).</summary>
    public double From { get; init; }

    /// <summary>A file's text up to this fraction of its length (cut at the next line break; default 1).</summary>
    public double To { get; init; } = 1;

    /// <summary><c>none</c>, <c>reverse-lines</c> (each line reversed character by character) or <c>uppercase</c>.</summary>
    public string Transform { get; init; } = "none";

    /// <summary>The corpus name (null: the synthetic grammar's or the file's name).</summary>
    public string? Name { get; init; }

    /// <summary>
    /// The corpus a <c>--corpus</c> value names (<c>synthetic</c>, <c>shakespeare</c>, a path or a file name in the data
    /// folder; see <see cref="TextCorpus.Resolve"/>), with files resolved to absolute paths.
    /// </summary>
    public static CorpusSource FromName(string? nameOrPath, string? dataDirectory = null)
    {
        string source = string.IsNullOrWhiteSpace(nameOrPath) ? "synthetic" : nameOrPath.Trim();
        if (source.Equals("synthetic", StringComparison.OrdinalIgnoreCase)) return new CorpusSource();
        string folder = dataDirectory ?? Hosting.NotebookSession.DataDirectory;
        if (source.Equals("shakespeare", StringComparison.OrdinalIgnoreCase)) source = TextCorpus.TinyShakespeareFile;
        foreach (string candidate in new[] { source, System.IO.Path.Combine(folder, source) })
            if (File.Exists(candidate)) return new CorpusSource { Source = "file", Path = System.IO.Path.GetFullPath(candidate) };
        throw new FileNotFoundException($"Corpus '{nameOrPath}' is neither 'synthetic', 'shakespeare' nor an existing file (also looked in the data folder '{folder}').", source);
    }

    /// <summary>A file by path (made absolute), whole or sliced.</summary>
    public static CorpusSource FromFile(string path, string? name = null, double from = 0, double to = 1, string transform = "none") =>
        new() { Source = "file", Path = System.IO.Path.GetFullPath(path), Name = name, From = from, To = to, Transform = transform };

    /// <summary>Throws <see cref="InvalidDataException"/> naming what is wrong.</summary>
    public CorpusSource Validate()
    {
        if (Source is not ("synthetic" or "file")) throw new InvalidDataException($"A corpus source '{Source}' is not known; use 'synthetic' or 'file'.");
        if (Source == "file" && string.IsNullOrWhiteSpace(Path)) throw new InvalidDataException("A corpus with source 'file' needs a 'path'.");
        if (!(From >= 0 && From < To && To <= 1)) throw new InvalidDataException($"A corpus slice needs 0 <= from < to <= 1; got from {From}, to {To}.");
        if (Transform is not ("none" or "reverse-lines" or "uppercase")) throw new InvalidDataException($"A corpus transform '{Transform}' is not known; use none, reverse-lines or uppercase.");
        return this;
    }

    /// <summary>Builds the corpus.</summary>
    public TextCorpus Load()
    {
        Validate();
        if (Source == "synthetic")
        {
            var synthetic = TextCorpus.Synthetic(Bytes, Seed);
            return Name is null ? synthetic : synthetic.Renamed(Name);
        }
        string path = Path!;
        if (From == 0 && To == 1 && Transform == "none")
        {
            var whole = TextCorpus.FromFile(path, ValidationFraction);
            return Name is null ? whole : whole.Renamed(Name);
        }
        string text = System.IO.File.ReadAllText(path);
        int Cut(double fraction) => fraction <= 0 ? 0 : fraction >= 1 ? text.Length : Math.Max(0, text.IndexOf('\n', (int)(text.Length * fraction)) is var i && i < 0 ? text.Length : i);
        text = text[Cut(From)..Cut(To)];
        text = Transform switch
        {
            "reverse-lines" => string.Join('\n', text.Split('\n').Select(l => new string(l.Reverse().ToArray()))),
            "uppercase" => text.ToUpperInvariant(),
            _ => text,
        };
        return TextCorpus.FromText(Name ?? System.IO.Path.GetFileName(path), text, ValidationFraction);
    }
}
