using ScalingInteractive.Runs;

namespace ScalingInteractive.Tests.Runs;

public class RunStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-store-").FullName;
    private string StorePath => Path.Combine(_dir, "sub", "runs.jsonl");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed record Run(string Key, double LearningRate, double FinalLoss, bool Diverged);

    [Fact]
    public void Appended_runs_survive_reopening_and_are_skipped_by_key()
    {
        var store = RunStore.Open(StorePath, "proxy-sweep", new { corpus = "tiny", steps = 100 });
        store.Append(new Run("a", 1e-3, 2.5, false));
        store.Append(new Run("b", 1e-1, double.NaN, true));
        var reopened = RunStore.Open(StorePath, "proxy-sweep", new { corpus = "tiny", steps = 100 });
        Assert.Equal(2, reopened.Count);
        Assert.True(reopened.Contains("a"));
        var runs = reopened.Read<Run>();
        Assert.Equal(2.5, runs[0].FinalLoss);
        Assert.True(double.IsNaN(runs[1].FinalLoss));
        Assert.True(runs[1].Diverged);
        Assert.Equal(3, File.ReadAllLines(StorePath).Length); // header + two runs
    }

    [Fact]
    public void A_truncated_last_line_is_reported_and_the_good_lines_kept()
    {
        var store = RunStore.Open(StorePath, "proxy-sweep");
        store.Append(new Run("a", 1e-3, 2.5, false));
        store.Append(new Run("b", 2e-3, 2.4, false));
        string text = File.ReadAllText(StorePath);
        File.WriteAllText(StorePath, text[..^15]); // a crash in the middle of writing run b
        var reopened = RunStore.Open(StorePath, "proxy-sweep");
        Assert.Equal(["a"], reopened.Records.Select(r => (string)r["key"]!));
        var bad = Assert.Single(reopened.BadLines);
        Assert.Equal(3, bad.LineNumber);
        Assert.Contains("not valid JSON", bad.Reason);
        // The next append starts on a fresh line, so the file stays readable.
        reopened.Append(new Run("b", 2e-3, 2.4, false));
        var again = RunStore.Open(StorePath, "proxy-sweep");
        Assert.Equal(["a", "b"], again.Records.Select(r => (string)r["key"]!));
        Assert.Single(again.BadLines);
    }

    [Fact]
    public void A_store_of_another_configuration_or_kind_is_refused_with_the_difference()
    {
        RunStore.Open(StorePath, "proxy-sweep", new { corpus = "tiny", steps = 100 }).Append(new Run("a", 1, 1, false));
        var error = Assert.Throws<InvalidDataException>(() => RunStore.Open(StorePath, "proxy-sweep", new { corpus = "tiny", steps = 200 }));
        Assert.Contains("steps: stored 100, now 200", error.Message);
        Assert.Contains("holds 'proxy-sweep' runs, not 'intrinsic-dim'", Assert.Throws<InvalidDataException>(() => RunStore.Open(StorePath, "intrinsic-dim", null)).Message);
        File.WriteAllText(StorePath, "{\"key\":\"x\"}\n");
        Assert.Contains("not a ScalingInteractive run-store header", Assert.Throws<InvalidDataException>(() => RunStore.Open(StorePath, "proxy-sweep")).Message);
    }

    [Fact]
    public void Records_need_a_key_and_keys_are_stable()
    {
        var store = RunStore.Open(StorePath, "k");
        Assert.Throws<ArgumentException>(() => store.Append(new { value = 1 }));
        Assert.Equal(RunKeys.Of(new { lr = 1e-3, width = 64 }), RunKeys.Of(new { lr = 1e-3, width = 64 }));
        Assert.NotEqual(RunKeys.Of(new { lr = 1e-3, width = 64 }), RunKeys.Of(new { lr = 1e-3, width = 128 }));
    }
}
