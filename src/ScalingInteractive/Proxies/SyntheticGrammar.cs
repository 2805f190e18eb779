using System.Text;

namespace ScalingInteractive.Proxies;

/// <summary>
/// A deterministic probabilistic grammar that produces English-like text with real structure, so training runs need
/// no download: a generated lexicon (nouns, verbs, adjectives, adverbs built from syllables) drawn with Zipfian
/// frequencies (rank^-1.1); number agreement between subject, determiner and verb across relative clauses (long-range
/// agreement: the verb must agree with a noun several words back, not with the nearest noun); paragraphs with a topic
/// noun that recurs; capitalisation and punctuation.
/// </summary>
public static class SyntheticGrammar
{
    private static readonly string[] Onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "cl", "dr", "gr", "pl", "st", "tr", "sh", "th"];
    private static readonly string[] Vowels = ["a", "e", "i", "o", "u", "ai", "ea", "oo"];
    private static readonly string[] Codas = ["", "", "", "n", "r", "l", "m", "nd", "st", "k"];
    private static readonly string[] Prepositions = ["near", "under", "with", "behind", "above", "beyond", "without"];
    private static readonly string[] Conjunctions = ["and", "but", "because", "while", "although"];

    /// <summary>Generates exactly <paramref name="length"/> bytes of text (cut at the end) for <paramref name="seed"/>.</summary>
    public static byte[] Generate(int length, int seed)
    {
        if (length <= 0) throw new ArgumentException($"length must be positive; got {length}.", nameof(length));
        var random = new Random(seed);
        var lexicon = new Lexicon(random);
        var text = new StringBuilder(length + 512);
        while (text.Length < length)
        {
            // A paragraph: a topic noun that later sentences often return to.
            var topic = lexicon.Noun(random);
            int sentences = 3 + random.Next(5);
            for (int s = 0; s < sentences; s++)
            {
                text.Append(Sentence(random, lexicon, topic));
                text.Append(s + 1 < sentences ? ' ' : '\n');
            }
            text.Append('\n');
        }
        // The text is ASCII, so characters are bytes.
        return Encoding.ASCII.GetBytes(text.ToString(0, length));
    }

    private static string Sentence(Random random, Lexicon lexicon, string topic)
    {
        var words = new List<string>();
        bool plural = random.NextDouble() < 0.4;
        string subject = random.NextDouble() < 0.4 ? topic : lexicon.Noun(random);
        NounPhrase(words, random, lexicon, subject, plural);
        // Relative clause between subject and verb: the verb after it must still agree with the subject.
        double r = random.NextDouble();
        if (r < 0.3)
        {
            words.Add("that");
            words.Add(Verb(lexicon.Verb(random), plural));
            NounPhrase(words, random, lexicon, lexicon.Noun(random), random.NextDouble() < 0.5);
        }
        else if (r < 0.5)
        {
            bool innerPlural = random.NextDouble() < 0.5;
            words.Add("which");
            NounPhrase(words, random, lexicon, lexicon.Noun(random), innerPlural);
            words.Add(Verb(lexicon.Verb(random), innerPlural));
        }
        if (random.NextDouble() < 0.25) words.Add(lexicon.Adverb(random));
        words.Add(Verb(lexicon.Verb(random), plural));
        NounPhrase(words, random, lexicon, lexicon.Noun(random), random.NextDouble() < 0.4);
        if (random.NextDouble() < 0.35)
        {
            words.Add(Prepositions[random.Next(Prepositions.Length)]);
            NounPhrase(words, random, lexicon, random.NextDouble() < 0.3 ? topic : lexicon.Noun(random), random.NextDouble() < 0.4);
        }
        string sentence = string.Join(' ', words);
        if (random.NextDouble() < 0.2)
        {
            // A second clause joined by a conjunction; its subject is a pronoun agreeing with the first subject.
            bool pronounPlural = plural;
            sentence += ", " + Conjunctions[random.Next(Conjunctions.Length)] + " " + (pronounPlural ? "they " : "it ") +
                        Verb(lexicon.Verb(random), pronounPlural) + " " + string.Join(' ', NounPhraseWords(random, lexicon, lexicon.Noun(random), random.NextDouble() < 0.4));
        }
        return char.ToUpperInvariant(sentence[0]) + sentence[1..] + (random.NextDouble() < 0.1 ? "!" : ".");
    }

    private static void NounPhrase(List<string> words, Random random, Lexicon lexicon, string noun, bool plural) =>
        words.AddRange(NounPhraseWords(random, lexicon, noun, plural));

    private static IEnumerable<string> NounPhraseWords(Random random, Lexicon lexicon, string noun, bool plural)
    {
        string[] determiners = plural ? ["the", "these", "some", "many", "those"] : ["the", "a", "this", "every", "that"];
        yield return determiners[random.Next(determiners.Length)];
        if (random.NextDouble() < 0.45) yield return lexicon.Adjective(random);
        yield return plural ? Plural(noun) : noun;
    }

    private static string Plural(string noun) => noun.EndsWith('s') || noun.EndsWith("sh", StringComparison.Ordinal) ? noun + "es" : noun + "s";

    private static string Verb(string stem, bool plural) => plural ? stem : stem.EndsWith('s') || stem.EndsWith("sh", StringComparison.Ordinal) ? stem + "es" : stem + "s";

    private sealed class Lexicon
    {
        private readonly Zipf _nouns, _verbs, _adjectives, _adverbs;

        public Lexicon(Random random)
        {
            var used = new HashSet<string>(StringComparer.Ordinal) { "the", "a", "that", "which", "this", "these", "some", "many", "those", "every", "it", "they" };
            _nouns = new Zipf(Words(random, used, 800, 1, 3, ""));
            _verbs = new Zipf(Words(random, used, 250, 1, 2, ""));
            _adjectives = new Zipf(Words(random, used, 200, 1, 2, "ous"));
            _adverbs = new Zipf(Words(random, used, 60, 1, 2, "ly"));
        }

        public string Noun(Random r) => _nouns.Draw(r);
        public string Verb(Random r) => _verbs.Draw(r);
        public string Adjective(Random r) => _adjectives.Draw(r);
        public string Adverb(Random r) => _adverbs.Draw(r);

        private static string[] Words(Random random, HashSet<string> used, int count, int minSyllables, int maxSyllables, string suffix)
        {
            var words = new string[count];
            for (int i = 0; i < count; i++)
            {
                string word;
                do
                {
                    var sb = new StringBuilder();
                    int syllables = minSyllables + random.Next(maxSyllables - minSyllables + 1);
                    for (int s = 0; s < syllables; s++)
                        sb.Append(Onsets[random.Next(Onsets.Length)]).Append(Vowels[random.Next(Vowels.Length)]).Append(Codas[random.Next(Codas.Length)]);
                    // Suffixes mark the word class (as -ous and -ly do in English), sometimes.
                    if (suffix.Length > 0 && random.NextDouble() < 0.6) sb.Append(suffix);
                    word = sb.ToString();
                } while (!used.Add(word));
                words[i] = word;
            }
            return words;
        }
    }

    /// <summary>Draws items with probability proportional to rank^-1.1.</summary>
    private sealed class Zipf
    {
        private readonly string[] _items;
        private readonly double[] _cumulative;

        public Zipf(string[] items)
        {
            _items = items;
            _cumulative = new double[items.Length];
            double total = 0;
            for (int i = 0; i < items.Length; i++) _cumulative[i] = total += Math.Pow(i + 1, -1.1);
            for (int i = 0; i < items.Length; i++) _cumulative[i] /= total;
        }

        public string Draw(Random random)
        {
            int index = Array.BinarySearch(_cumulative, random.NextDouble());
            if (index < 0) index = ~index;
            return _items[Math.Min(index, _items.Length - 1)];
        }
    }
}
