using System.Text.Json.Nodes;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.Proxies;

/// <summary>
/// Issue 17 replaced the proxy ensemble's own model and training loop by the one model class and the one trainer, and
/// asked for proxy-sweep records bit-identical to those of the earlier code. Fixtures/proxy-sweep-records.jsonl holds
/// the records the earlier code (commit 7f2d4c1) wrote for this 48-run sweep: two widths, baseline, qk-layernorm with
/// z-loss, independent weight decay with warm-up, coupled weight decay with muP, three learning rates (the top one
/// diverges) and two seeds. Every field but the timings must match exactly on the CPU type that wrote them
/// (Fixtures/proxy-sweep-records.cpu.txt); on another CPU type LibTorch's kernels may round differently, and numbers
/// are compared to 1e-4 relative instead. <c>SI_WRITE_FIXTURE=path</c> rewrites the file (only to re-baseline on purpose).
/// </summary>
public class RecordFixtureTests(ITestOutputHelper output)
{
    private static readonly string Fixture = Path.Combine(RepoPaths.Root, "tests", "ScalingInteractive.Tests", "Proxies", "Fixtures", "proxy-sweep-records.jsonl");

    internal static IReadOnlyList<ProxyRunSpec> Runs() => new ProxySweepSpec
    {
        Widths = [16, 24], HeadDim = 8, LearningRates = [3e-3, 3e-2, 30], Seeds = [0, 1],
        Settings =
        [
            new ProxySetting { Name = "baseline" },
            new ProxySetting { Name = "qk-zloss", QkLayerNorm = true, ZLoss = true },
            new ProxySetting { Name = "independent-wd-warmup", WeightDecay = 1e-2, WeightDecayMode = Core.WeightDecayMode.Independent, WarmupSteps = 5 },
            new ProxySetting { Name = "coupled-wd-mup", WeightDecay = 0.1, MupBaseWidth = 8 },
        ],
        Training = new ProxyTrainingOptions { Steps = 30, BatchSize = 4, SequenceLength = 16, LogEvery = 5, ValidationBatches = 2, ValidationSteps = [15], ZLossCoefficient = 1e-2 },
    }.Runs();

    [Fact]
    public void Proxy_sweep_records_equal_those_of_the_earlier_ensemble_trainer()
    {
        var corpus = TextCorpus.Synthetic(100_000, 3);
        string path = Environment.GetEnvironmentVariable("SI_WRITE_FIXTURE") ?? Path.Combine(Directory.CreateTempSubdirectory("si-fixture-").FullName, "records.jsonl");
        if (File.Exists(path)) File.Delete(path);
        var store = ProxySweep.OpenStore(path, corpus, "fixture");
        var records = ProxySweep.Run(Runs(), corpus, CPU, store);
        var expected = File.ReadLines(Fixture).Skip(1).Select(l => JsonNode.Parse(l)!.AsObject()).ToDictionary(r => r["key"]!.GetValue<string>());
        string cpu = File.ReadAllText(Path.ChangeExtension(Fixture, ".cpu.txt")).Trim();
        string here = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        bool exact = here == cpu;
        output.WriteLine(exact ? $"same CPU type ({cpu}): exact comparison" : $"CPU {here} differs from the fixture's {cpu}: comparison to 1e-4 relative");
        Assert.Equal(expected.Count, records.Count);
        int numbers = 0;
        foreach (var record in records)
        {
            string key = record["key"]!.GetValue<string>();
            Assert.True(expected.TryGetValue(key, out var want), $"run {key} is not in the fixture: its key changed");
            numbers += Compare(want!, record, key, exact);
        }
        output.WriteLine($"{records.Count} records, {numbers} numbers compared");
    }

    // Every field except wall times; returns the numbers compared.
    private static int Compare(JsonNode? want, JsonNode? got, string path, bool exact)
    {
        switch (want)
        {
            case JsonObject o:
                var g = Assert.IsType<JsonObject>(got);
                Assert.Equal(o.Select(p => p.Key).Where(Timed).Order(), g.Select(p => p.Key).Where(Timed).Order());
                return o.Where(p => Timed(p.Key)).Sum(p => Compare(p.Value, g[p.Key], path + "." + p.Key, exact));
            case JsonArray a:
                var ga = Assert.IsType<JsonArray>(got);
                Assert.True(a.Count == ga.Count, $"{path}: {ga.Count} values, expected {a.Count}");
                return a.Select((x, i) => Compare(x, ga[i], $"{path}[{i}]", exact)).Sum();
            case JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.Number || IsNamedNumber(v):
                double x = Core.JsonNumbers.Read(v), y = Core.JsonNumbers.Read(got);
                bool same = exact ? x.Equals(y) : x.Equals(y) || Math.Abs(x - y) <= 1e-4 * Math.Max(1, Math.Abs(x));
                Assert.True(same, $"{path}: {y:R}, expected {x:R}");
                return 1;
            default:
                Assert.Equal(want?.ToJsonString(), got?.ToJsonString());
                return 0;
        }
    }

    private static bool Timed(string name) => name is not ("seconds" or "tokensPerSecond");

    private static bool IsNamedNumber(JsonValue v) => v.GetValueKind() == System.Text.Json.JsonValueKind.String && v.GetValue<string>() is "NaN" or "Infinity" or "-Infinity";
}
