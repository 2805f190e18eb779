using ScalingInteractive.Commands;
using System.Text.Json.Nodes;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Sweeps;

namespace ScalingInteractive.Tests.Sweeps;

/// <summary>The folder run store many processes write (one shard file each), read back as one store.</summary>
public class ShardedStoreTests : IDisposable
{
    private readonly string _dir = SweepFixtures.TempFolder("si-shards-");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static JsonObject Identity => new() { ["name"] = "t" };

    [Fact]
    public void Shards_read_back_as_one_store_dedup_by_key_and_a_half_written_line_costs_only_that_run()
    {
        var a = RunStore.OpenFolder(_dir, "proxy-sweep", Identity, "shard-0000.jsonl");
        var b = RunStore.OpenFolder(_dir, "proxy-sweep", Identity, "shard-0001.jsonl");
        a.Append(new { key = "k1", finalLoss = 1.0 });
        a.Append(new { key = "k2", finalLoss = 2.0 });
        b.Append(new { key = "k3", finalLoss = 3.0 });
        b.Append(new { key = "k2", finalLoss = 2.5 }); // recorded twice (a requeued task): kept once, counted
        // A worker killed mid-write leaves half a line at the end of its shard.
        File.AppendAllText(Path.Combine(_dir, "shard-0001.jsonl"), "{\"key\":\"k4\",\"finalLo");

        var all = RunStore.OpenFolder(_dir, "proxy-sweep", Identity);
        Assert.Equal(["k1", "k2", "k3"], all.Records.Select(r => r["key"]!.GetValue<string>()));
        Assert.Equal(2.0, all.Find("k2")!["finalLoss"]!.GetValue<double>()); // first shard in name order wins
        Assert.Equal(1, all.DuplicateRecords);
        var bad = Assert.Single(all.BadLines);
        Assert.EndsWith("shard-0001.jsonl", bad.File);
        Assert.Equal(4, bad.LineNumber);
        Assert.Contains("interrupted", bad.Reason);
        Assert.Null(all.WritePath);
        Assert.Throws<InvalidOperationException>(() => all.Append(new { key = "k9" }));

        // The restarted shard appends after the broken line on a fresh line; the broken run is then recorded.
        var again = RunStore.OpenFolder(_dir, "proxy-sweep", Identity, "shard-0001.jsonl");
        Assert.False(again.Contains("k4"));
        again.Append(new { key = "k4", finalLoss = 4.0 });
        var reread = RunStore.OpenFolder(_dir, "proxy-sweep", Identity);
        Assert.Equal(4, reread.Count);
        Assert.Single(reread.BadLines);
    }

    [Fact]
    public void A_shard_of_another_sweep_is_refused_with_the_difference()
    {
        RunStore.OpenFolder(_dir, "proxy-sweep", Identity, "shard-0000.jsonl");
        var e = Assert.Throws<InvalidDataException>(() => RunStore.OpenFolder(_dir, "proxy-sweep", new JsonObject { ["name"] = "other" }));
        Assert.Contains("name: stored \"t\", now \"other\"", e.Message);
        Assert.Throws<ArgumentException>(() => RunStore.OpenFolder(_dir, "proxy-sweep", Identity, "../escape.jsonl"));
    }

    [Fact]
    public void Spec_round_trips_with_keys_and_shards_partition_the_runs()
    {
        var spec = SweepFixtures.TwelveRuns("roundtrip");
        string path = spec.Save(Path.Combine(_dir, "spec.json"));
        var back = SweepSpec.Load(path);
        Assert.Equal(spec.Keys, back.Keys);
        Assert.Equal(((ProxySweepExperiment)spec.Experiment).Corpus, ((ProxySweepExperiment)back.Experiment).Corpus);
        var shards = Enumerable.Range(0, 3).Select(i => back.Shard(0, i, 3)).ToList();
        Assert.All(shards, s => Assert.Equal(4, s.Count));
        Assert.Equal(spec.Keys.Order(), shards.SelectMany(s => s).Select(r => r.Key).Order());
        // A spec edited by hand (a config changed, key left) is refused rather than silently mixing runs.
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"steps\": 30", "\"steps\": 31"));
        Assert.Contains("has key", Assert.Throws<InvalidDataException>(() => SweepSpec.Load(path)).Message);
    }

    [Fact]
    public void Proxy_sweep_command_line_gives_the_same_runs_as_the_local_command()
    {
        var spec = ProxySweepCommand.ToSweepSpec("#!proxy-sweep --widths [16,32] --learning-rates [1e-3,1e-2] --steps 20 --threads 1 --name cmd");
        Assert.Equal(4, spec.Runs.Count);
        Assert.Equal("cmd", spec.Name);
        Assert.Equal("synthetic", ((ProxySweepExperiment)spec.Experiment).Corpus.Source);
        Assert.Equal(spec.Keys, SweepSpec.Parse(spec.ToJson()).Keys);
    }

    [Theory]
    [InlineData(new[] { "--spec", "s.json", "--shard", "1/3", "--store", "d" }, null, 1, 3)]
    [InlineData(new[] { "--spec", "s.json", "--shard", "$JOB_COMPLETION_INDEX/4", "--store", "d" }, "2", 2, 4)]
    [InlineData(new[] { "--spec", "s.json", "--shard", "$(JOB_COMPLETION_INDEX)/4", "--store", "d" }, "3", 3, 4)]
    [InlineData(new[] { "--spec=s.json", "--shards", "4", "--store=d" }, "0", 0, 4)]
    public void Worker_takes_the_shard_index_from_the_command_line_or_JOB_COMPLETION_INDEX(string[] args, string? completionIndex, int index, int count)
    {
        var parsed = WorkerArguments.Parse(args, v => v == "JOB_COMPLETION_INDEX" ? completionIndex : null);
        Assert.Equal((index, count, "s.json", "d"), (parsed.Index, parsed.Count, parsed.Spec, parsed.Store));
    }

    [Fact]
    public void Worker_arguments_errors_name_the_parameter_and_what_is_accepted()
    {
        static string Error(params string[] a) => Assert.Throws<ArgumentException>(() => WorkerArguments.Parse(a, _ => null)).Message;
        Assert.Contains("--spec is required", Error("--shard", "0/1", "--store", "d"));
        Assert.Contains("is not I/N", Error("--spec", "s", "--shard", "3", "--store", "d"));
        Assert.Contains("outside 0..2", Error("--spec", "s", "--shard", "3/3", "--store", "d"));
        Assert.Contains("JOB_COMPLETION_INDEX is not set", Error("--spec", "s", "--shard", "$JOB_COMPLETION_INDEX/3", "--store", "d"));
        Assert.Contains("Unknown argument '--bogus'", Error("--bogus", "1"));
    }

    [Fact]
    public void Slurm_ranges_and_script_carry_the_options()
    {
        Assert.Equal("0-2,5,7-8", SlurmSweeps.Ranges([8, 0, 1, 2, 5, 7]));
        var spec = SweepFixtures.TwelveRuns("script") with { Device = "cuda" };
        var options = new SlurmOptions { Shards = 3, Partition = "gpu", Time = "00:10:00", CpusPerTask = 2, Memory = "4G", Gpus = 1, ExtraSbatchOptions = ["--account=proj"] }.Validate(spec);
        var handle = new SweepHandle { Folder = _dir, SpecPath = Path.Combine(_dir, "spec.json"), StoreFolder = Path.Combine(_dir, "store"), LogFolder = Path.Combine(_dir, "logs"), Shards = 3 };
        string script = SlurmSweeps.Script(spec, options, handle, "dotnet '/w/ScalingInteractive.Worker.dll'");
        foreach (string line in new[] { "#SBATCH --partition=gpu", "#SBATCH --time=00:10:00", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=4G", "#SBATCH --gres=gpu:1", "#SBATCH --account=proj", "--shard \"$SLURM_ARRAY_TASK_ID/$2\" --stage \"$1\"" })
            Assert.Contains(line, script);
        Assert.Contains("device is 'cpu'", Assert.Throws<ArgumentException>(() => new SlurmOptions { Gpus = 1 }.Validate(spec with { Device = "cpu" })).Message);
        Assert.Contains("no GPUs are requested", Assert.Throws<ArgumentException>(() => new SlurmOptions().Validate(spec)).Message);
        Assert.Contains("more than the 12 runs of the sweep's largest stage", Assert.Throws<ArgumentException>(() => new SlurmOptions { Shards = 13, Gpus = 1 }.Validate(spec)).Message);
    }
}

/// <summary>The sweep commands on the local scheduler (the default), through the catalogue as a notebook calls them.</summary>
public class SweepCommandTests : IDisposable
{
    private readonly string _dir = SweepFixtures.TempFolder("si-sweepcmd-");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Submit_status_and_collect_run_a_builder_sweep_locally_and_give_a_ProxySweepResult()
    {
        // A ProxyExperiments builder's runs become a spec like any grid.
        var runs = ScalingInteractive.Proxies.ProxyExperiments.NdGrid([16, 32], [10, 20],
            new ScalingInteractive.Proxies.ProxyTrainingOptions { BatchSize = 4, SequenceLength = 16, LogEvery = 5 });
        var spec = SweepSpec.ForProxyRuns("nd", runs, new CorpusSource { Bytes = 50_000 });
        Assert.Equal(spec.Keys, SweepSpec.Parse(spec.ToJson()).Keys);
        var host = new ScalingInteractive.Tests.Commands.TestHost { Variables = { ["spec"] = spec, ["folder"] = Path.Combine(_dir, "nd") } };

        await ScalingInteractive.Commands.CommandCatalog.InvokeAsync("#!sweep-submit --spec spec --folder folder --name nd", host);
        var handle = Assert.IsType<SweepHandle>(host.Variables["nd"]);
        Assert.Equal("local", handle.Scheduler);
        await ScalingInteractive.Commands.CommandCatalog.InvokeAsync("#!sweep-status --handle nd --watch", host);
        var status = Assert.IsType<SweepStatus>(host.Variables["sweepStatus"]);
        Assert.True(status.IsComplete);
        // A later session reattaches by folder.
        await ScalingInteractive.Commands.CommandCatalog.InvokeAsync($"#!sweep-collect --handle {handle.Folder} --name ndResult", host);
        var result = Assert.IsType<ScalingInteractive.Proxies.ProxySweepResult>(host.Variables["ndResult"]);
        Assert.Equal(4, result.Rows.Count);
        Assert.All(result.Rows, r => Assert.Equal("nd-grid", r.Experiment));

        // A second submit into the same folder skips every recorded run.
        await ScalingInteractive.Commands.CommandCatalog.InvokeAsync("#!sweep-submit --spec spec --folder folder --name nd", host);
        Assert.Equal(4, SlurmSweeps.OpenStore(handle).Count);
        Assert.Equal(0, SlurmSweeps.OpenStore(handle).DuplicateRecords);

        var bad = await Assert.ThrowsAnyAsync<Exception>(() => ScalingInteractive.Commands.CommandCatalog.InvokeAsync("#!sweep-status --handle nowhere", host));
        Assert.Contains("neither a C# variable", ScalingInteractive.Commands.CommandCatalog.UserErrorMessage(bad));
    }
}
