using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.LoraSpectra;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Sweeps;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.LoraSpectra;

/// <summary>The LoRA experiment as a spec (kind <c>lora-experiment</c>): three stages of keyed runs, run by the sweep worker.</summary>
public sealed class LoraExperimentSpecTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-lora-spec-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>The tiny settings of <see cref="LoraExperimentTests"/>.</summary>
    internal static LoraExperimentOptions Tiny => new()
    {
        Model = new ProxyModelConfig { Width = 32, Depth = 1, Heads = 2, ContextLength = 16 },
        PretrainSteps = 20, FineTuneSteps = 10, SequentialSteps = 5, BatchSize = 4, SequenceLength = 16,
        FullLearningRates = [1e-3], LoraLearningRates = [1e-2, 3e-2], Ranks = [1, 4], SequentialRanks = [2], EvaluationBatches = 2,
        Intruders = new IntruderOptions { TopK = 4 },
    };

    /// <summary>A tiny spec on text files in <paramref name="folder"/>: A, then B, B with lines reversed, B upper-cased.</summary>
    internal static LoraExperimentSpec TinySpec(string folder, LoraExperimentOptions? options = null)
    {
        string a = Path.Combine(folder, "a.txt"), b = Path.Combine(folder, "b.txt");
        File.WriteAllText(a, string.Concat(Enumerable.Repeat("the cat sat on the mat.\n", 200)));
        File.WriteAllText(b, string.Concat(Enumerable.Repeat("To be, or not to be: that is the question.\n", 120)));
        var sources = new LoraExperimentSources(CorpusSource.FromFile(a, "A"),
            [CorpusSource.FromFile(b, "B"), CorpusSource.FromFile(b, "C", transform: "reverse-lines"), CorpusSource.FromFile(b, "D", transform: "uppercase")]);
        return new LoraExperimentSpec("tiny-lora", options ?? Tiny, sources);
    }

    // A record as JSON without its timing, which is the only field that may differ between two trainings of a run.
    private static string Json(LoraRunRecord r) => JsonSerializer.Serialize(r with { Seconds = 0 }, LoraJson.Default.LoraRunRecord);

    private static string Json(LoraSequenceRecord r) => JsonSerializer.Serialize(r, LoraJson.Default.LoraSequenceRecord);

    private static void AssertSameRecords(LoraExperimentResult expected, LoraExperimentResult actual)
    {
        Assert.Equal(expected.Runs.Select(Json), actual.Runs.Select(Json));
        Assert.Equal(expected.Sequences.Select(Json), actual.Sequences.Select(Json));
        Assert.Equal(expected.PretrainLoss, actual.PretrainLoss);
        Assert.Equal(expected.Tasks, actual.Tasks);
    }

    [Fact]
    public void Default_sources_load_the_corpora_the_experiment_built_before()
    {
        string path = Path.Combine(_dir, "shakespeare.txt");
        File.WriteAllText(path, string.Concat(Enumerable.Range(0, 300).Select(i => $"First Citizen {i}:\nBefore we proceed any further, hear me speak.\n")));
        // The construction of earlier versions of LoraExperimentCorpora.Default, verbatim.
        string text = File.ReadAllText(path);
        string reversed = string.Join('\n', text.Split('\n').Select(l => new string(l.Reverse().ToArray())));
        var before = new LoraExperimentCorpora(TextCorpus.Synthetic(5_000, seed: 0),
        [
            TextCorpus.FromText("shakespeare", text),
            TextCorpus.FromText("shakespeare-reversed-lines", reversed),
            TextCorpus.FromText("shakespeare-uppercase", text.ToUpperInvariant()),
        ]);
        var now = LoraExperimentSources.Default(path, syntheticBytes: 5_000).Load();
        foreach (var (old, built) in new[] { before.Pretrain }.Concat(before.Tasks).Zip(new[] { now.Pretrain }.Concat(now.Tasks)))
        {
            Assert.Equal(old.Name, built.Name);
            Assert.Equal(old.TrainTokens, built.TrainTokens);
            Assert.Equal(old.ValidationTokens, built.ValidationTokens);
            foreach (bool validation in new[] { false, true })
            {
                var (x1, y1) = old.SampleBatch(validation, 8, 32, new Random(3), CPU);
                var (x2, y2) = built.SampleBatch(validation, 8, 32, new Random(3), CPU);
                Assert.True(x1.eq(x2).all().item<bool>() && y1.eq(y2).all().item<bool>(), $"{old.Name} ({(validation ? "validation" : "training")}) differs");
            }
        }
        // The same names, so the store identity (which holds them) of a default experiment is unchanged.
        Assert.Equal(LoraExperimentSpec.InProcess(Tiny, before).StoreIdentity().ToJsonString(),
                     new LoraExperimentSpec("x", Tiny, LoraExperimentSources.Default(path, 5_000)).StoreIdentity().ToJsonString());
    }

    [Fact]
    public void Spec_round_trips_through_json_with_its_keys_and_stages_and_without_workers()
    {
        var experiment = TinySpec(_dir, Tiny with { Workers = 2 });
        var spec = SweepSpec.For(experiment);
        // 1 pre-training, 1 full rate + 2 ranks x (LoRA, rsLoRA) x 2 rates, 2 sequences (full, rank 2).
        Assert.Equal(Enumerable.Repeat(0, 1).Concat(Enumerable.Repeat(1, 9)).Concat(Enumerable.Repeat(2, 2)), spec.Runs.Select(r => r.Stage));
        Assert.Equal(LoraExperimentSpec.PretrainKey, spec.Runs[0].Key);
        Assert.Equal(RunKeys.Of(new LoraTargetKey("target", 4, true, 3e-2), LoraJson.Default.LoraTargetKey), spec.Runs[9].Key); // keys of earlier versions
        Assert.Equal(LoraExperimentSpec.SequenceKey(2), spec.Runs[11].Key);

        string json = spec.ToJson();
        Assert.DoesNotContain("\"workers\"", json); // a runtime setting, not part of the experiment
        var parsed = SweepSpec.Parse(json);
        Assert.Equal("lora-experiment", parsed.Kind);
        Assert.Equal("tiny-lora", parsed.Name);
        Assert.Equal(spec.Keys, parsed.Keys);
        Assert.Equal(spec.Runs.Select(r => r.Stage), parsed.Runs.Select(r => r.Stage));
        Assert.Equal(spec.Stages, parsed.Stages);
        var back = Assert.IsType<LoraExperimentSpec>(parsed.Experiment);
        Assert.Null(back.Options.Workers);
        Assert.Equal(JsonSerializer.Serialize(Tiny, LoraJson.Default.LoraExperimentOptions), JsonSerializer.Serialize(back.Options, LoraJson.Default.LoraExperimentOptions));
        Assert.Equal(experiment.StoreIdentity().ToJsonString(), back.StoreIdentity().ToJsonString());
        Assert.Equal(json, parsed.ToJson());
    }

    [Fact]
    public void An_edited_run_or_option_is_rejected_with_a_message_naming_it()
    {
        string json = SweepSpec.For(TinySpec(_dir)).ToJson();

        var editedRun = JsonNode.Parse(json)!.AsObject();
        editedRun["runs"]![1]!["lr"] = 0.5; // the key still says 1e-3
        var error = Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(editedRun.ToJsonString(), "edited.json"));
        Assert.Contains("edited.json", error.Message);
        Assert.Contains("Run 1", error.Message);
        Assert.Contains("edit the options", error.Message);

        var editedKey = JsonNode.Parse(json)!.AsObject();
        editedKey["runs"]![2]!["key"] = "0123456789abcdef";
        Assert.Contains("run 2 has key 0123456789abcdef", Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(editedKey.ToJsonString())).Message);

        var editedOptions = JsonNode.Parse(json)!.AsObject();
        editedOptions["options"]!["ranks"] = new JsonArray(1, 4, 8);
        Assert.Contains("runs are listed but the options plan", Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(editedOptions.ToJsonString())).Message);

        var badOptions = JsonNode.Parse(json)!.AsObject();
        badOptions["options"]!["fineTuneSteps"] = 0;
        Assert.Contains("options are not valid", Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(badOptions.ToJsonString())).Message);

        var noCorpora = JsonNode.Parse(json)!.AsObject();
        noCorpora.Remove("corpora");
        Assert.Contains("\"corpora\"", Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(noCorpora.ToJsonString())).Message);

        // An experiment on corpora loaded in this process runs, but cannot be written as a spec.
        var inProcess = LoraExperimentSpec.InProcess(Tiny, TinySpec(_dir).LoadCorpora());
        Assert.Contains("LoraExperimentSources", Assert.Throws<InvalidOperationException>(() => SweepSpec.For(inProcess).ToJson()).Message);
    }

    [Fact]
    public void A_local_sweep_of_the_spec_gives_the_records_of_LoraExperiment_Run_and_resumes_only_the_missing_run()
    {
        var experiment = TinySpec(_dir);
        string file = Path.Combine(_dir, "lora.jsonl");
        var direct = LoraExperiment.Run(experiment.Options, experiment.LoadCorpora(), CPU, file);
        Assert.True(File.Exists(LoraExperiment.PretrainedCheckpointPath(file)));
        Assert.Equal(9, direct.Runs.Count);
        Assert.Equal(2, direct.Sequences.Count);

        // The same experiment as a spec, run by the sweep worker into a folder store (threads 0: this process's LibTorch threads).
        var spec = SweepSpec.For(TinySpec(_dir), threads: 0);
        var handle = LocalSweeps.Run(spec, Path.Combine(_dir, "sweep"));
        Assert.True(File.Exists(Path.Combine(handle.StoreFolder, "checkpoints", LoraExperimentSpec.PretrainKey + ".safetensors")));
        var swept = Assert.IsType<LoraExperimentResult>(SlurmSweeps.Collect(handle));
        AssertSameRecords(direct, swept);
        string shard = Path.Combine(handle.StoreFolder, "shard-0000.jsonl");
        var lines = File.ReadAllLines(shard).Where(l => l.Length > 0).ToList();
        Assert.Equal(1 + 1 + 9 + 2, lines.Count); // header, pre-training, target runs, sequences
        var pretrain = JsonNode.Parse(lines[1])!.Deserialize(LoraJson.Default.LoraPretrainRecord)!;
        Assert.Equal(LoraExperimentSpec.PretrainKey, pretrain.Key);
        Assert.Equal(LoraExperimentSpec.PretrainKey + ".safetensors", pretrain.Checkpoint);
        Assert.Equal(direct.PretrainLoss, pretrain.PretrainLoss);
        Assert.Equal(3, pretrain.TaskLosses.Length);
        Assert.False(pretrain.Adopted);

        // Resume: with the last record gone, only that run is trained again (the rest stay as they were, nothing else appended).
        File.WriteAllLines(shard, lines.Take(lines.Count - 1));
        var again = LocalSweeps.Run(spec, Path.Combine(_dir, "sweep"));
        var after = File.ReadAllLines(shard).Where(l => l.Length > 0).ToList();
        Assert.Equal(lines.Count, after.Count);
        Assert.Equal(lines.Take(lines.Count - 1), after.Take(lines.Count - 1));
        Assert.Equal(JsonNode.Parse(lines[^1])!["key"]!.GetValue<string>(), JsonNode.Parse(after[^1])!["key"]!.GetValue<string>());
        AssertSameRecords(direct, Assert.IsType<LoraExperimentResult>(SlurmSweeps.Collect(again)));
    }

    [Fact]
    public void A_missing_checkpoint_or_pretraining_run_stops_the_later_stages_with_a_clear_message()
    {
        var options = Tiny with { Ranks = [1], IncludeRsLora = false, LoraLearningRates = [1e-2], SequentialSteps = 0 };
        var spec = SweepSpec.For(TinySpec(_dir, options), threads: 0);
        string folder = Path.Combine(_dir, "sweep");
        var handle = LocalSweeps.Run(spec, folder);
        string shard = Path.Combine(handle.StoreFolder, "shard-0000.jsonl");
        var lines = File.ReadAllLines(shard).Where(l => l.Length > 0).ToList();
        Assert.Equal(1 + 1 + 2, lines.Count);

        // The checkpoint is gone and a target run must be trained again: the message names the file and the way out.
        string checkpoint = Path.Combine(handle.StoreFolder, "checkpoints", LoraExperimentSpec.PretrainKey + ".safetensors");
        File.Delete(checkpoint);
        File.WriteAllLines(shard, lines.Take(3));
        var missing = Assert.Throws<FileNotFoundException>(() => LocalSweeps.Run(spec, folder));
        Assert.Contains(checkpoint, missing.Message);
        Assert.Contains("is missing", missing.Message);

        // Stage 1 alone in a store without the pre-training run.
        string other = Path.Combine(_dir, "other");
        var context = new ExperimentContext(spec.OpenStore(other, "shard-0000.jsonl"), CPU);
        var noPretrain = Assert.Throws<InvalidDataException>(() => spec.Experiment.RunShard(context, stage: 1));
        Assert.Contains("no pre-training run", noPretrain.Message);
        Assert.Contains("run stage 0 first", noPretrain.Message);
        Assert.Contains("no pre-training run", Assert.Throws<InvalidDataException>(() => spec.Experiment.Collect(context.Store)).Message);
    }

    [Fact]
    public void A_single_file_store_of_an_earlier_version_adopts_its_pretrained_weights_and_keeps_its_checkpoints_beside_the_file()
    {
        var options = Tiny with { Ranks = [1], IncludeRsLora = false, LoraLearningRates = [1e-2] };
        var corpora = TinySpec(_dir).LoadCorpora();
        string first = Path.Combine(_dir, "first.jsonl");
        var trained = LoraExperiment.Run(options, corpora, CPU, first);
        string checkpoint = LoraExperiment.PretrainedCheckpointPath(first);
        Assert.Equal(Path.Combine(first + ".checkpoints", LoraExperimentSpec.PretrainKey + ".safetensors"), checkpoint);
        Assert.Equal(checkpoint, new ExperimentContext(RunStore.Open(first, LoraExperiment.StoreKind, LoraExperimentSpec.InProcess(options, corpora).StoreIdentity()), CPU)
            .CheckpointPath(LoraExperimentSpec.PretrainKey));

        // Earlier versions kept the base at STORE.pretrained.safetensors: a store with one there is not pre-trained again.
        string second = Path.Combine(_dir, "second.jsonl");
        File.Copy(checkpoint, second + ".pretrained.safetensors");
        var adopted = LoraExperiment.Run(options, corpora, CPU, second);
        AssertSameRecords(trained, adopted);
        var record = RunStore.Open(second, LoraExperiment.StoreKind, LoraExperimentSpec.InProcess(options, corpora).StoreIdentity())
            .Find(LoraExperimentSpec.PretrainKey)!.Deserialize(LoraJson.Default.LoraPretrainRecord)!;
        Assert.True(record.Adopted);
        Assert.True(double.IsNaN(record.TrainLoss));

        // Its task sequences, kept under keys that held the learning rate, are adopted under the new keys, not trained again
        // (a marker in the old record shows which one the result holds).
        string third = Path.Combine(_dir, "third.jsonl");
        File.Copy(checkpoint, third + ".pretrained.safetensors");
        var old = File.ReadAllLines(first).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(n => n["key"]?.GetValue<string>() != LoraExperimentSpec.PretrainKey).ToList();
        foreach (var node in old.Where(n => n["kind"]?.GetValue<string>() == "sequence"))
        {
            node["key"] = RunKeys.Of(new LoraSequenceKey("sequence", node["rank"]!.GetValue<int>(), node["learningRate"]!.GetValue<double>()), LoraJson.Default.LoraSequenceKey);
            node["intruders"] = new JsonArray(7, 7, 7, 7);
        }
        File.WriteAllLines(third, old.Select(n => n.ToJsonString()));
        var resumed = LoraExperiment.Run(options, corpora, CPU, third);
        Assert.Equal(trained.Runs.Select(Json), resumed.Runs.Select(Json));
        Assert.Equal(2, resumed.Sequences.Count);
        Assert.All(resumed.Sequences, q => Assert.Equal([7, 7, 7, 7], q.Intruders));
        Assert.Equal(trained.Sequences.Select(q => q.Losses[^1]), resumed.Sequences.Select(q => q.Losses[^1]));
    }
}

/// <summary>The LoRA experiment through the sweep commands and, where a cluster answers, as Slurm job arrays.</summary>
public sealed class LoraExperimentSweepTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-lora-sweep-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } // a Slurm task still finishing its log
    }

    private static LoraExperimentOptions Small => LoraExperimentSpecTests.Tiny with { Ranks = [1], LoraLearningRates = [1e-2] };

    [Fact]
    public async Task Sweep_submit_takes_a_LoRA_experiment_variable_and_collect_gives_its_result()
    {
        var experiment = LoraExperimentSpecTests.TinySpec(_dir, Small);
        var host = new ScalingInteractive.Tests.Commands.TestHost { Variables = { ["lora"] = experiment } };
        string folder = Path.Combine(_dir, "cmd");
        await ScalingInteractive.Commands.CommandCatalog.InvokeAsync($"#!sweep-submit --spec lora --folder {folder} --name loraSweep", host);
        var handle = Assert.IsType<SweepHandle>(host.Variables["loraSweep"]);
        Assert.Equal(Path.GetFullPath(folder), handle.Folder);
        Assert.Equal(experiment.Runs.Count, SlurmSweeps.OpenStore(handle).Count);
        await ScalingInteractive.Commands.CommandCatalog.InvokeAsync("#!sweep-collect --handle loraSweep --name loraResult", host);
        var result = Assert.IsType<LoraExperimentResult>(host.Variables["loraResult"]);
        Assert.Equal(3, result.Runs.Count); // full, LoRA r=1, rsLoRA r=1
        Assert.Equal(2, result.Sequences.Count);
    }

    [SkippableFact]
    [Trait("Category", "Slurm")]
    public async Task The_tiny_LoRA_spec_as_two_shard_job_arrays_gives_the_records_of_a_local_run()
    {
        ScalingInteractive.Tests.Sweeps.SweepFixtures.RequireSlurm();
        var spec = SweepSpec.For(LoraExperimentSpecTests.TinySpec(_dir, Small), threads: 1);
        var handle = SlurmSweeps.Submit(spec, new SlurmOptions { Shards = 2, CpusPerTask = 1, Time = "00:10:00", Worker = ScalingInteractive.Tests.Sweeps.SweepFixtures.WorkerDll },
            Path.Combine(_dir, "slurm"));
        var status = await SlurmSweeps.WaitAsync(handle, s => output.WriteLine(s.Summary), TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(6));
        Assert.True(status.IsComplete, status.ToText());
        var cluster = Assert.IsType<LoraExperimentResult>(SlurmSweeps.Collect(handle));
        var local = Assert.IsType<LoraExperimentResult>(SlurmSweeps.Collect(LocalSweeps.Run(spec, Path.Combine(_dir, "local"))));
        string Json(LoraRunRecord r) => System.Text.Json.JsonSerializer.Serialize(r with { Seconds = 0 }, LoraJson.Default.LoraRunRecord);
        Assert.Equal(local.Runs.Select(Json), cluster.Runs.Select(Json));
        Assert.Equal(local.Sequences.Select(q => System.Text.Json.JsonSerializer.Serialize(q, LoraJson.Default.LoraSequenceRecord)),
                     cluster.Sequences.Select(q => System.Text.Json.JsonSerializer.Serialize(q, LoraJson.Default.LoraSequenceRecord)));
    }
}
