using System.Text;
using static TorchSharp.torch;

namespace ScalingInteractive.Proxies;

/// <summary>
/// Byte-level tokens (vocabulary 256) with a fixed split: the first part trains, the last
/// <c>validationFraction</c> validates. Sources: any UTF-8 text file, a string, the built-in synthetic grammar
/// (<see cref="Synthetic"/>, no download), or tiny Shakespeare downloaded and cached (<see cref="DownloadTinyShakespeareAsync"/>).
/// </summary>
public sealed class TextCorpus
{
    /// <summary>Public URL of Karpathy's tiny Shakespeare (1.1 MB).</summary>
    public const string TinyShakespeareUrl = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt";

    private readonly byte[] _train;
    private readonly byte[] _validation;

    private TextCorpus(string name, byte[] bytes, double validationFraction)
    {
        if (bytes.Length == 0) throw new ArgumentException($"Corpus '{name}' is empty: it needs text to train on.", nameof(bytes));
        if (!double.IsFinite(validationFraction) || validationFraction <= 0 || validationFraction >= 1)
            throw new ArgumentException($"validationFraction must lie strictly between 0 and 1; got {validationFraction}.", nameof(validationFraction));
        Name = name;
        int validationLength = (int)Math.Round(bytes.Length * validationFraction);
        validationLength = Math.Clamp(validationLength, 1, bytes.Length - 1 > 0 ? bytes.Length - 1 : 1);
        _train = bytes[..(bytes.Length - validationLength)];
        _validation = bytes[(bytes.Length - validationLength)..];
    }

    private TextCorpus(string name, byte[] train, byte[] validation)
    {
        Name = name;
        _train = train;
        _validation = validation;
    }

    /// <summary>The same text under another name (a corpus's name is part of a run store's identity).</summary>
    public TextCorpus Renamed(string name) => new(name, _train, _validation);

    /// <summary>A short name (file name, or <c>synthetic-grammar</c>).</summary>
    public string Name { get; }

    /// <summary>Tokens (bytes) in the training split.</summary>
    public long TrainTokens => _train.Length;

    /// <summary>Tokens (bytes) in the validation split.</summary>
    public long ValidationTokens => _validation.Length;

    /// <summary>Vocabulary size of byte-level tokens.</summary>
    public const int VocabSize = 256;

    /// <summary>Reads a UTF-8 (or any byte) file; throws <see cref="FileNotFoundException"/> when it is missing.</summary>
    public static TextCorpus FromFile(string path, double validationFraction = 0.1)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Corpus file '{path}' was not found. Give the path of a UTF-8 text file, or use the synthetic corpus.", path);
        var info = new FileInfo(path);
        if (info.Length > int.MaxValue) throw new InvalidDataException($"Corpus file '{path}' is {info.Length} bytes; at most {int.MaxValue} bytes are supported.");
        return new TextCorpus(Path.GetFileName(path), File.ReadAllBytes(path), validationFraction);
    }

    /// <summary>File name of tiny Shakespeare in a data folder.</summary>
    public const string TinyShakespeareFile = "tinyshakespeare.txt";

    /// <summary>
    /// A corpus by name: <c>synthetic</c> (the built-in grammar, no download), <c>shakespeare</c>
    /// (<see cref="TinyShakespeareFile"/> in <paramref name="dataDirectory"/>), or the path of a UTF-8 text file; a bare
    /// file name that is not found is also looked up in <paramref name="dataDirectory"/>.
    /// </summary>
    /// <param name="nameOrPath">synthetic, shakespeare or a file path (null or blank: synthetic).</param>
    /// <param name="dataDirectory">The data folder (null: <see cref="Hosting.NotebookSession.DataDirectory"/>).</param>
    /// <exception cref="FileNotFoundException">The file is neither a path nor in the data folder.</exception>
    public static TextCorpus Resolve(string? nameOrPath, string? dataDirectory = null)
    {
        string source = string.IsNullOrWhiteSpace(nameOrPath) ? "synthetic" : nameOrPath.Trim();
        string folder = dataDirectory ?? Hosting.NotebookSession.DataDirectory;
        if (source.Equals("synthetic", StringComparison.OrdinalIgnoreCase)) return Synthetic();
        if (source.Equals("shakespeare", StringComparison.OrdinalIgnoreCase)) source = TinyShakespeareFile;
        if (File.Exists(source)) return FromFile(source);
        string inData = Path.Combine(folder, source);
        if (File.Exists(inData)) return FromFile(inData);
        throw new FileNotFoundException($"Corpus '{nameOrPath}' is neither 'synthetic', 'shakespeare' nor an existing file (also looked in the data folder '{folder}'; " +
                                        "DownloadTinyShakespeareAsync() fetches tiny Shakespeare once with a network).", source);
    }

    /// <summary>Tokens of a string's UTF-8 bytes.</summary>
    public static TextCorpus FromText(string name, string text, double validationFraction = 0.1)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new TextCorpus(string.IsNullOrWhiteSpace(name) ? "text" : name, Encoding.UTF8.GetBytes(text), validationFraction);
    }

    /// <summary>
    /// The built-in synthetic corpus: <paramref name="bytes"/> bytes of English-like text from a probabilistic grammar
    /// (see <see cref="SyntheticGrammar"/>), deterministic for a <paramref name="seed"/>.
    /// </summary>
    public static TextCorpus Synthetic(int bytes = 1_000_000, int seed = 0)
    {
        if (bytes < 1000) throw new ArgumentException($"bytes must be at least 1000 for a synthetic corpus; got {bytes}.", nameof(bytes));
        return new TextCorpus("synthetic-grammar", SyntheticGrammar.Generate(bytes, seed), 0.1);
    }

    /// <summary>
    /// Downloads tiny Shakespeare once into <paramref name="cacheDirectory"/> (default
    /// <c>~/.cache/scaling-interactive/data</c>) and loads it; later calls read the cached file with no network.
    /// </summary>
    public static async Task<TextCorpus> DownloadTinyShakespeareAsync(string? cacheDirectory = null, CancellationToken cancellationToken = default)
    {
        string folder = cacheDirectory ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "scaling-interactive", "data");
        string path = Path.Combine(folder, "tinyshakespeare.txt");
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(folder);
            using var client = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
            byte[] data;
            try
            {
                data = await client.GetByteArrayAsync(TinyShakespeareUrl, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                throw new IOException($"Could not download tiny Shakespeare from {TinyShakespeareUrl} ({e.Message}). With no network, use TextCorpus.Synthetic() or TextCorpus.FromFile(path).", e);
            }
            // Write to a temporary file first so an interrupted download never leaves a truncated cache entry.
            string partial = path + ".partial";
            await File.WriteAllBytesAsync(partial, data, cancellationToken).ConfigureAwait(false);
            File.Move(partial, path, overwrite: true);
        }
        return FromFile(path);
    }

    /// <summary>
    /// A batch of <paramref name="batchSize"/> windows of <paramref name="sequenceLength"/> tokens at random offsets
    /// (drawn from <paramref name="random"/>), as int64 tensors (B, T) on <paramref name="device"/>; targets are the
    /// inputs shifted by one token.
    /// </summary>
    public (Tensor Input, Tensor Target) SampleBatch(bool validation, int batchSize, int sequenceLength, Random random, Device device)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (batchSize <= 0) throw new ArgumentException($"batchSize must be positive; got {batchSize}.", nameof(batchSize));
        if (sequenceLength <= 0) throw new ArgumentException($"sequenceLength must be positive; got {sequenceLength}.", nameof(sequenceLength));
        byte[] source = validation ? _validation : _train;
        if (source.Length < sequenceLength + 1)
            throw new ArgumentException($"The {(validation ? "validation" : "training")} split of corpus '{Name}' has {source.Length} tokens, too short for sequence length {sequenceLength} (needs at least {sequenceLength + 1}). Use a longer text or a shorter --seq-len.", nameof(sequenceLength));
        var input = new long[batchSize * sequenceLength];
        var target = new long[batchSize * sequenceLength];
        for (int b = 0; b < batchSize; b++)
        {
            int start = random.Next(0, source.Length - sequenceLength);
            int row = b * sequenceLength;
            for (int t = 0; t < sequenceLength; t++)
            {
                input[row + t] = source[start + t];
                target[row + t] = source[start + t + 1];
            }
        }
        return (tensor(input, [batchSize, sequenceLength], device: device), tensor(target, [batchSize, sequenceLength], device: device));
    }

    /// <summary>The first <paramref name="count"/> characters of the training text (for a look at the data).</summary>
    public string Preview(int count = 300) => Encoding.UTF8.GetString(_train, 0, Math.Min(count, _train.Length));
}
