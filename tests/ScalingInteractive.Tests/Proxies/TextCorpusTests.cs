using System.Text;
using ScalingInteractive.Proxies;
using Xunit;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.Proxies;

public class TextCorpusTests
{
    [Fact]
    public void SplitsAndBatchesShiftTargetsByOne()
    {
        var corpus = TextCorpus.FromText("abc", string.Concat(Enumerable.Repeat("abcdefghij", 10)), validationFraction: 0.2);
        Assert.Equal(80, corpus.TrainTokens);
        Assert.Equal(20, corpus.ValidationTokens);
        var (x, y) = corpus.SampleBatch(false, 4, 8, new Random(1), CPU);
        Assert.Equal(new long[] { 4, 8 }, x.shape);
        var xs = x.data<long>().ToArray(); var ys = y.data<long>().ToArray();
        for (int b = 0; b < 4; b++)
            for (int t = 0; t < 7; t++) Assert.Equal(xs[b * 8 + t + 1], ys[b * 8 + t]);
        // The alphabet cycles, so each target is the next letter.
        for (int i = 0; i < xs.Length; i++) Assert.Equal((xs[i] - 'a' + 1) % 10, ys[i] - 'a');
    }

    [Fact]
    public void TooShortAndEmptyCorporaAreRejected()
    {
        Assert.Contains("is empty", Assert.Throws<ArgumentException>(() => TextCorpus.FromText("e", "")).Message);
        var small = TextCorpus.FromText("small", new string('x', 50));
        var e = Assert.Throws<ArgumentException>(() => small.SampleBatch(true, 2, 64, new Random(0), CPU));
        Assert.Contains("too short for sequence length 64", e.Message);
        Assert.Throws<FileNotFoundException>(() => TextCorpus.FromFile("/nonexistent/corpus.txt"));
        Assert.Throws<ArgumentException>(() => TextCorpus.FromText("x", "abcdef", validationFraction: 1.5));
    }

    [SharedDataFact]
    public void TinyShakespeareFromSharedDataLoads()
    {
        var corpus = TextCorpus.FromFile(Path.Combine(RepoPaths.SharedData, "tinyshakespeare.txt"));
        Assert.Equal("tinyshakespeare.txt", corpus.Name);
        Assert.Equal(1_115_394, corpus.TrainTokens + corpus.ValidationTokens); // the published size of input.txt
        Assert.StartsWith("First Citizen:", corpus.Preview(20));
    }

    [Fact]
    public void SyntheticCorpusIsDeterministicStructuredAndAgrees()
    {
        var a = SyntheticGrammar.Generate(200_000, seed: 7);
        var b = SyntheticGrammar.Generate(200_000, seed: 7);
        var c = SyntheticGrammar.Generate(200_000, seed: 8);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        string text = Encoding.ASCII.GetString(a);
        // Unigram byte entropy well below uniform (8 bits) and the text is printable ASCII.
        var counts = a.GroupBy(x => x).Select(g => (double)g.Count() / a.Length);
        double entropy = -counts.Sum(p => p * Math.Log2(p));
        Assert.InRange(entropy, 3.0, 5.0);
        Assert.All(a, x => Assert.True(x == '\n' || (x >= 32 && x < 127)));
        // Agreement: a plural pronoun is followed by a verb without the singular -s, a singular one by -s.
        var words = text.Split([' ', '\n', '.', ',', '!'], StringSplitOptions.RemoveEmptyEntries);
        int itVerbs = 0, itWithS = 0;
        for (int i = 0; i + 1 < words.Length; i++)
            if (words[i] == "it") { itVerbs++; if (words[i + 1].EndsWith('s')) itWithS++; }
        Assert.True(itVerbs > 20);
        Assert.Equal(itVerbs, itWithS);
        // Zipf: the most frequent content word is far more frequent than the 50th.
        var freq = words.Where(w => w.Length > 4).GroupBy(w => w).Select(g => g.Count()).OrderDescending().ToList();
        Assert.True(freq[0] > 10 * freq[49], $"top {freq[0]} vs 50th {freq[49]}");
        var corpus = TextCorpus.Synthetic(20_000, seed: 1);
        Assert.Equal(18_000, corpus.TrainTokens);
    }
}
