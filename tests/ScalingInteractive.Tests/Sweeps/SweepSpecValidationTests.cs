using System.Text.Json.Nodes;
using ScalingInteractive.Sweeps;

namespace ScalingInteractive.Tests.Sweeps;

/// <summary>
/// Hand-edited spec files, as issue 16 found them: each mistake is refused on load with a message naming the run or
/// field, and the worker turns it into exit code 2 with that message (no stack trace, no exit 134).
/// </summary>
public class SweepSpecValidationTests : IDisposable
{
    private readonly string _dir = SweepFixtures.TempFolder("si-spec-");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static JsonObject Spec() => JsonNode.Parse(SweepFixtures.TwelveRuns("edited").ToJson())!.AsObject();

    private static JsonObject Run(JsonObject spec, int i) => spec["runs"]![i]!.AsObject();

    [Fact]
    public void A_run_without_its_key_is_refused_so_an_edited_learning_rate_cannot_load_silently()
    {
        var spec = Spec();
        Run(spec, 3).Remove("key");
        Run(spec, 3)["training"]!["learningRate"] = 0.5; // the edit the key would have caught
        var e = Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(spec.ToJsonString(), "edited.json"));
        Assert.Contains("run 3 has no string \"key\"", e.Message);
    }

    [Fact]
    public void An_edited_run_with_its_old_key_is_refused()
    {
        var spec = Spec();
        Run(spec, 2)["training"]!["learningRate"] = 0.5;
        var e = Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(spec.ToJsonString(), "edited.json"));
        Assert.Contains("run 2 has key", e.Message);
        Assert.Contains("edited", e.Message);
    }

    [Fact]
    public void A_duplicated_run_is_refused_on_load_and_in_code()
    {
        var spec = Spec();
        spec["runs"]!.AsArray().Add(Run(spec, 5).DeepClone());
        var e = Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(spec.ToJsonString(), "edited.json"));
        Assert.Contains("runs 5 and 12 have the same key", e.Message);

        var twelve = SweepFixtures.TwelveRuns("code");
        var runs = SweepFixtures.ProxyRuns(twelve);
        var doubled = SweepFixtures.WithRuns(twelve, [.. runs, runs[0]]);
        Assert.Contains("the same configuration twice", Assert.Throws<InvalidDataException>(() => doubled.Validate()).Message);
    }

    [Theory]
    [InlineData("run", "learningRate", "\"fast\"", "run 1 cannot be read")]
    [InlineData("run", "steps", "12.5", "run 1 cannot be read")]
    [InlineData("top", "threads", "\"two\"", "\"threads\" must be a whole number")]
    [InlineData("top", "name", "7", "\"name\" must be a string")]
    [InlineData("top", "corpus", "{\"bytes\": \"many\"}", "corpus cannot be read")]
    public void A_wrong_typed_field_is_named_in_an_InvalidDataException(string where, string field, string value, string expected)
    {
        var spec = Spec();
        if (where == "run") Run(spec, 1)["training"]![field] = JsonNode.Parse(value);
        else spec[field] = JsonNode.Parse(value);
        var e = Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(spec.ToJsonString(), "edited.json"));
        Assert.Contains(expected, e.Message);
        if (where == "run") Assert.Contains(field, e.Message);
    }

    [Fact]
    public void An_invalid_setting_in_a_run_is_refused_with_its_run_number()
    {
        var spec = SweepFixtures.TwelveRuns("invalid");
        var runs = SweepFixtures.ProxyRuns(spec);
        var broken = SweepFixtures.WithRuns(spec, [.. runs.Take(4), runs[4] with { Training = runs[4].Training with { Steps = -3 } }]);
        var e = Assert.Throws<InvalidDataException>(() => broken.Validate());
        Assert.Contains("Run 4", e.Message);
        Assert.Contains("Steps", e.Message);
    }

    [Fact]
    public void The_worker_exits_2_with_the_message_and_no_stack_trace_for_a_wrong_typed_spec()
    {
        var spec = Spec();
        Run(spec, 0)["training"]!["batchSize"] = "eight";
        string path = Path.Combine(_dir, "spec.json");
        File.WriteAllText(path, spec.ToJsonString());
        var output = new StringWriter();
        var error = new StringWriter();
        int code = SweepWorker.Main(["--spec", path, "--shard", "0/2", "--store", Path.Combine(_dir, "store")], output, error);
        Assert.Equal(SweepWorker.UsageExitCode, code);
        Assert.Contains("run 0 cannot be read", error.ToString());
        Assert.Contains("batchSize", error.ToString());
        Assert.DoesNotContain("   at ", error.ToString());
        Assert.False(Directory.Exists(Path.Combine(_dir, "store")), "nothing may be written for a spec that does not load");
    }

    [Fact]
    public void A_signal_while_the_worker_ends_is_ignored_instead_of_cancelling_a_disposed_source()
    {
        var signals = new SweepWorker.SignalCancellation();
        var token = signals.Token;
        signals.OnSignal(null);
        Assert.True(token.IsCancellationRequested);
        signals.Dispose();
        signals.OnSignal(null); // what SIGTERM during the worker's last lines did: ObjectDisposedException before
        signals.Dispose();
    }
}
