using System.Diagnostics;
using System.Text.Json.Nodes;
using ScalingInteractive.IntrinsicDimension;
using ScalingInteractive.Runs;
using ScalingInteractive.Sweeps;
using ScalingInteractive.Tests.Sweeps;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.IntrinsicDimension;

/// <summary>
/// Issue 17 item 4: an intrinsic-dimension sweep as data. Its spec round-trips, an edited run is refused, the worker's
/// stages (pre-training, then the subspace runs reading theta0 from the pre-training checkpoint) give the records an
/// in-process <see cref="IntrinsicDimensionSweep.Run"/> gives, locally and on a real Slurm.
/// </summary>
public class IntrinsicDimensionExperimentTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = SweepFixtures.TempFolder("si-intrinsic-exp-");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    // A tiny lm probe: width 32, one block, 30 pre-training steps, 16-token windows; d = 8 and 32 with fastfood and dense.
    private static IntrinsicTaskOptions LmOptions => new() { DataDirectory = RepoPaths.SharedData, Width = 32, Depth = 1, PretrainSteps = 30, SequenceLength = 16 };

    private static IntrinsicSweepOptions Sweep => new([8, 32], [ProjectionKind.Fastfood, ProjectionKind.Dense], 2, new SubspaceTrainingOptions(Steps: 12, LearningRate: 0.05, FullLearningRate: 3e-3, BatchSize: 8),
        Resamples: 50) { SeedList = [0, 1], Workers = 1 };

    private static SweepSpec LmSpec(string name) =>
        SweepSpec.For(IntrinsicDimensionExperiment.Create(name, IntrinsicTaskSpec.For("lm", LmOptions), Sweep), threads: 1);

    [SharedDataFact]
    public void The_spec_round_trips_with_a_pretraining_stage_before_the_runs_and_the_keys_of_the_in_process_sweep()
    {
        var spec = LmSpec("lm-tiny");
        var again = SweepSpec.Parse(spec.ToJson());
        Assert.Equal("intrinsic-dimension", again.Kind);
        Assert.Equal(spec.Keys, again.Keys);
        Assert.Equal([0, 1], again.Stages);
        // One pre-training run, then 2 seeds x (baseline + 2 projections x 2 dimensions).
        Assert.Single(again.Runs, r => r.Stage == 0);
        Assert.Equal(2 * (1 + 2 * 2), again.Runs.Count(r => r.Stage == 1));
        // Keys are the published subspace key (independent: the hash of the six fields the run store has always used).
        var expected = new List<string>();
        foreach (int seed in new[] { 0, 1 }) expected.Add(SubspaceTraining.Key("lm-w32-d1-pretrained30", "full", 0, false, false, seed));
        foreach (string projection in new[] { "fastfood", "dense" })
            foreach (long d in new long[] { 8, 32 })
                foreach (int seed in new[] { 0, 1 })
                    expected.Add(SubspaceTraining.Key("lm-w32-d1-pretrained30", projection, d, false, false, seed));
        Assert.Equal(expected, again.Runs.Where(r => r.Stage == 1).Select(r => r.Key));
        // mnist has nothing to pre-train: one stage.
        var mnist = SweepSpec.For(IntrinsicDimensionExperiment.Create("m", IntrinsicTaskSpec.For("mnist-mlp", new IntrinsicTaskOptions { DataDirectory = RepoPaths.SharedData }), Sweep));
        Assert.Equal([1], SweepSpec.Parse(mnist.ToJson()).Stages);
    }

    [SharedDataFact]
    public void An_edited_run_or_setting_is_refused_with_a_message()
    {
        var json = JsonNode.Parse(LmSpec("lm-tiny").ToJson())!.AsObject();
        var edited = json.DeepClone().AsObject();
        edited["runs"]![3]!["d"] = 9; // the key still says 8
        var error = Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(edited.ToJsonString(), "edited.json"));
        Assert.Contains("run 3", error.Message);
        Assert.Contains("settings", error.Message);

        var steps = json.DeepClone().AsObject();
        steps["settings"]!["training"]!["steps"] = 13; // nothing in the runs changes, but the store identity does: allowed and read
        Assert.Equal(13, ((IntrinsicDimensionExperiment)SweepSpec.Parse(steps.ToJsonString()).Experiment).Settings.Training.Steps);

        var projection = json.DeepClone().AsObject();
        projection["settings"]!["projections"]![0] = "hadamard";
        Assert.Contains("hadamard", Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(projection.ToJsonString(), "p.json")).Message);

        var relative = json.DeepClone().AsObject();
        relative["task"]!["dataDirectory"] = "data";
        Assert.Contains("absolute", Assert.Throws<InvalidDataException>(() => SweepSpec.Parse(relative.ToJsonString(), "r.json")).Message);
    }

    [SharedDataFact]
    public void The_worker_stages_give_the_records_of_the_in_process_sweep_and_read_theta0_from_the_checkpoint()
    {
        var spec = LmSpec("lm-tiny");
        var experiment = (IntrinsicDimensionExperiment)spec.Experiment;

        var clock = Stopwatch.StartNew();
        var handle = LocalSweeps.Run(spec, Path.Combine(_dir, "local"));
        output.WriteLine($"as an experiment: {clock.Elapsed.TotalSeconds:F1} s");
        var collected = Assert.IsType<IntrinsicDimensionReport>(SlurmSweeps.Collect(handle));

        clock.Restart();
        IntrinsicDimensionReport inProcess;
        using (var task = IntrinsicDimensionTasks.Create("lm", LmOptions with { Device = CPU }))
            inProcess = IntrinsicDimensionSweep.Run(task, Sweep);
        output.WriteLine($"in process: {clock.Elapsed.TotalSeconds:F1} s");

        Assert.Equal(inProcess.Runs.Select(r => r.Key), collected.Runs.Select(r => r.Key));
        foreach (var (a, b) in inProcess.Runs.Zip(collected.Runs))
        {
            Assert.Equal(a.Metric, b.Metric); // bit-identical: theta0 round-trips exactly through safetensors
            Assert.Equal(a.FinalLoss, b.FinalLoss);
        }
        Assert.Equal(inProcess.Task, collected.Task);
        Assert.Equal(inProcess.MetricName, collected.MetricName);

        // The pre-training is one run with a record and a checkpoint named by its key.
        var store = spec.OpenStore(handle.StoreFolder);
        var pretrain = experiment.PretrainRecord(store);
        Assert.NotNull(pretrain);
        Assert.Equal(30, pretrain.Steps);
        string checkpoint = Path.Combine(handle.StoreFolder, "checkpoints", experiment.PretrainKey + ".safetensors");
        Assert.True(File.Exists(checkpoint));

        // Stage 1 uses the checkpoint, not a new pre-training: a fresh store whose checkpoint holds other weights gives other runs.
        string other = Path.Combine(_dir, "other");
        var otherStore = spec.OpenStore(other, "shard-0000.jsonl");
        var context = new ExperimentContext(otherStore, CPU, Workers: 1);
        var missing = Assert.Throws<InvalidDataException>(() => experiment.RunShard(context, stage: 1));
        Assert.Contains("stage 0", missing.Message);
        experiment.RunShard(context, stage: 0);
        Dictionary<string, Tensor> weights;
        using (var file = ScalingInteractive.Checkpoints.SafetensorsFile.Open(context.CheckpointPath(experiment.PretrainKey!)))
            weights = file.ToTensors().ToDictionary(p => p.Key, p => p.Value.mul(0.5)); // copies: the file's views map the file about to be rewritten
        ScalingInteractive.Checkpoints.SafetensorsWriter.Write(context.CheckpointPath(experiment.PretrainKey!), weights);
        experiment.RunShard(context, stage: 1);
        var halved = (IntrinsicDimensionReport)experiment.Collect(otherStore);
        Assert.NotEqual(collected.Runs[0].FinalLoss, halved.Runs[0].FinalLoss);
    }

    [SkippableFact]
    public async Task On_slurm_two_chained_arrays_give_the_records_of_a_local_run()
    {
        SweepFixtures.RequireSlurm();
        Skip.IfNot(Directory.Exists(RepoPaths.SharedData), $"needs {RepoPaths.SharedData}");
        var spec = LmSpec("lm-slurm");
        var handle = SlurmSweeps.Submit(spec, new SlurmOptions { Shards = 2, CpusPerTask = 1, Time = "00:10:00", Worker = SweepFixtures.WorkerDll }, Path.Combine(_dir, "slurm"));
        var clock = Stopwatch.StartNew();
        var status = await SlurmSweeps.WaitAsync(handle, s => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1} s  {s.Summary}"), TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
        Assert.True(status.IsComplete, status.ToText());
        var cluster = Assert.IsType<IntrinsicDimensionReport>(SlurmSweeps.Collect(handle));
        var local = Assert.IsType<IntrinsicDimensionReport>(SlurmSweeps.Collect(LocalSweeps.Run(spec, Path.Combine(_dir, "local"))));
        Assert.Equal(local.Runs.Select(r => (r.Key, r.Metric, r.FinalLoss)), cluster.Runs.Select(r => (r.Key, r.Metric, r.FinalLoss)));
        // Two stages: the pre-training array, then the runs' array waiting for it.
        Assert.Equal(2, handle.Submissions.Count);
    }
}
