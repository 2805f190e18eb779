using ScalingInteractive.IntrinsicDimension;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Training;
using TorchSharp;
using static TorchSharp.torch;
using FitSchedule = ScalingInteractive.Core.LearningRateSchedule;

namespace ScalingInteractive.Tests.Training;

public class TrainerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-trainer-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ProxySchedulesAreLaw7sScheduleAndMatchClosedForms()
    {
        // 21 steps, warm-up 4, peak 2, minimum 0.2. Warm-up: peak*(s+1)/W; then progress p = (s-W)/(N-1-W) over 0-based s.
        int n = 21, w = 4;
        double peak = 2, min = 0.2;
        var o = new ProxyTrainingOptions { Steps = n, LearningRate = peak, MinLearningRate = min, WarmupSteps = w };
        double P(int s) => (s - w) / (double)(n - 1 - w);
        double Warm(int s) => peak * (s + 1) / w;
        var cases = new (ScheduleShape Kind, Func<int, double> Closed)[]
        {
            (ScheduleShape.Cosine, s => s < w ? Warm(s) : min + (peak - min) * 0.5 * (1 + Math.Cos(Math.PI * P(s)))),
            (ScheduleShape.Linear, s => s < w ? Warm(s) : peak - (peak - min) * P(s)),
            (ScheduleShape.Constant, s => s < w ? Warm(s) : peak),
            // WSD with decay fraction 0.2: the last round(4.2) = 4 steps fall linearly, the last one at the minimum.
            (ScheduleShape.WarmupStableDecay, s => s < w ? Warm(s) : s < n - 4 ? peak : peak + (min - peak) * (s - (n - 4) + 1) / 4.0),
        };
        foreach (var (kind, closed) in cases)
        {
            var options = o with { Schedule = kind };
            FitSchedule schedule = options.ToSchedule();
            Assert.Equal(n, schedule.Steps);
            Assert.Equal(w, schedule.WarmupSteps);
            for (int s = 0; s < n; s++)
            {
                Assert.Equal(closed(s), schedule.Rates[s], 12);
                Assert.Equal(closed(s), LearningRateSchedules.At(options, s), 12);
            }
            // Law 7's reading: S1 counts warm-up steps at the peak, S2 accumulates the annealing momentum.
            var areas = schedule.Areas(lambda: 0.999);
            double s1 = Enumerable.Range(0, n).Sum(s => s < w ? peak : closed(s));
            Assert.Equal(s1, areas.S1[^1], 9);
            double momentum = 0, s2 = 0, previous = peak;
            for (int s = 0; s < n; s++)
            {
                double rate = s < w ? peak : closed(s);
                if (s > 0) momentum = 0.999 * momentum + (previous - rate);
                s2 += momentum;
                previous = rate;
            }
            Assert.Equal(s2, areas.S2[^1], 9);
        }
    }

    [Fact]
    public void TrainedRunsUseExactlyTheScheduleLaw7Reads()
    {
        var corpus = TextCorpus.Synthetic(40_000, seed: 1);
        var config = new ProxyModelConfig { Width = 16, Depth = 1, Heads = 2, ContextLength = 16 };
        var options = new ProxyTrainingOptions { Steps = 12, BatchSize = 2, SequenceLength = 16, LearningRate = 1e-2, WarmupSteps = 3, Schedule = ScheduleShape.WarmupStableDecay, DecayFraction = 0.25, LogEvery = 1, ValidationBatches = 1 };
        var run = ProxyTrainer.Train(config, options, corpus, CPU);
        var rates = options.ToSchedule().Rates;
        Assert.Equal(rates, run.Metrics.Select(m => m.LearningRate));
        var ensemble = ProxyTrainer.Train([(config, options), (config, options with { LearningRate = 3e-3 })], corpus, CPU);
        Assert.Equal(rates, ensemble[0].Metrics.Select(m => m.LearningRate));
    }

    [Fact]
    public void DivergenceRuleIsNonFiniteOrAboveTheLargerOfFactorAndMargin()
    {
        var rule = DivergenceRule.Default;
        Assert.Equal(1.5, rule.Factor);
        Assert.Equal(2.0, rule.Margin);
        // From scratch on bytes (L0 = ln 256 = 5.55): the factor term decides, 8.32, as the proxies always had.
        Assert.Equal(1.5 * Math.Log(256), rule.Threshold(Math.Log(256)), 12);
        // Fine-tuning from a low loss (L0 = 1.2): the margin decides, 3.2, so batch noise is not a divergence.
        Assert.Equal(3.2, rule.Threshold(1.2), 12);
        Assert.Null(rule.Check(3.19, 1.2, 5));
        Assert.Contains("step 5", rule.Check(3.21, 1.2, 5));
        Assert.Contains("NaN", rule.Check(double.NaN, 1.2, 7));
        Assert.NotNull(rule.Check(double.PositiveInfinity, 1.2, 7));
        Assert.Throws<ArgumentException>(() => new DivergenceRule(1.0).Validate());
        Assert.Throws<ArgumentException>(() => new DivergenceRule(2, -1).Validate());
        // The proxies' options map onto the same rule.
        Assert.Equal(rule with { Factor = 3 }, new ProxyTrainingOptions { DivergenceFactor = 3 }.ToDivergenceRule());
    }

    [Fact]
    public void TrainerStopsAtTheFirstLoggedStepThatBreaksTheRule()
    {
        // A scalar "model" whose loss we script: 2.0 for 6 steps, then 5.0 (above max(1.5*2, 2+2) = 4).
        using var module = new ParameterHolder();
        var w = module.parameters().Single();
        var losses = new[] { 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 5.0, 5.0, 5.0, 5.0 };
        var hooks = new TrainerHooks { Loss = step => (w * 0 + losses[step.Index]).sum() };
        var outcome = Trainer.Train(new FullParametrisation(module), hooks, TrainerOptions.Single(FitSchedule.Constant(0.1, 10), logEvery: 2)).Single();
        Assert.True(outcome.Diverged);
        Assert.Equal(8, outcome.StepsCompleted); // step 7 is not logged (LogEvery 2): caught at step 8
        Assert.Equal(2.0, outcome.InitialLoss, 6);
        Assert.Equal([1, 2, 4, 6, 8], outcome.Log.Select(l => l.Step));
        var healthy = Trainer.Train(new FullParametrisation(module), new TrainerHooks { Loss = _ => (w * 0 + 2.0).sum() }, TrainerOptions.Single(FitSchedule.Constant(0.1, 10))).Single();
        Assert.False(healthy.Diverged);
        Assert.Equal(2.0, healthy.TailLoss, 6);
    }

    [Fact]
    public void StopAfterEndsTheRunWithTheWeightsOfARunWhoseScheduleEndsThere()
    {
        // Linear regression on fixed per-step batches. Run A follows a 20-step cosine schedule and StopAfter stops it
        // after step 7; run B, the independent computation, is handed a schedule of exactly the first 7 rates of A's
        // (same peak for weight decay's lr/eta factor) and runs it to the end. Their weights must agree.
        var x = randn(20, 8, 4, generator: new Generator(3));
        var y = x.matmul(tensor(new float[] { 1, -2, 0.5f, 3 })).unsqueeze(-1);
        var schedule = FitSchedule.Cosine(0.05, 20, 2, minimum: 0.005);
        var adam = new AdamWOptions { WeightDecay = 0.1, GradClip = 1.0 };
        TorchSharp.Modules.Linear NewLayer() { manual_seed(11); return nn.Linear(4, 1); }
        TrainerHooks Hooks(TorchSharp.Modules.Linear layer, Func<int, bool>? stop) => new()
        {
            Loss = step => nn.functional.mse_loss(layer.forward(x[step.Index]), y[step.Index]),
            StopAfter = stop,
        };
        using var a = NewLayer();
        var stopped = Trainer.Train(new FullParametrisation(a), Hooks(a, s => s == 7), TrainerOptions.Single(schedule, adam)).Single();
        using var b = NewLayer();
        var prefix = new FitSchedule("first 7 rates", schedule.Rates.Take(7).ToArray(), schedule.WarmupSteps);
        var reference = Trainer.Train(new FullParametrisation(b), Hooks(b, null), new TrainerOptions { Runs = [new TrainingRun(prefix) { Optimizer = adam, PeakLearningRate = schedule.Peak }] }).Single();
        Assert.True(stopped.StoppedEarly);
        Assert.False(reference.StoppedEarly);
        Assert.Equal(7, stopped.StepsCompleted);
        Assert.Equal(7, reference.StepsCompleted);
        Assert.False(stopped.Diverged); // stopped before the tail: no tail loss, and that is not divergence
        Assert.True(double.IsNaN(stopped.TailLoss));
        Assert.Equal(b.weight!.data<float>().ToArray(), a.weight!.data<float>().ToArray());
        Assert.Equal(b.bias!.data<float>().ToArray(), a.bias!.data<float>().ToArray());
        // Untouched without a stop, and never "stopped early" after the last step.
        using var c = NewLayer();
        var whole = Trainer.Train(new FullParametrisation(c), Hooks(c, s => s == 20), TrainerOptions.Single(schedule, adam)).Single();
        Assert.Equal(20, whole.StepsCompleted);
        Assert.False(whole.StoppedEarly);
        Assert.True(double.IsFinite(whole.TailLoss));
    }

    private sealed class ParameterHolder : nn.Module
    {
        public ParameterHolder() : base("holder") => register_parameter("w", new TorchSharp.Modules.Parameter(zeros(1), true));
    }

    // A tiny regression task: enough to train the subspace probes end to end in milliseconds.
    private sealed class ToyTask : IIntrinsicTask
    {
        private readonly Tensor _x = randn(64, 4, generator: new Generator(5));
        private readonly Tensor _y;
        public ToyTask() => _y = _x.sum(1).gt(0).to_type(ScalarType.Int64);
        public string Name => "toy";
        public string MetricName => "accuracy";
        public Device Device => CPU;
        public nn.Module<Tensor, Tensor> CreateModel(int seed)
        {
            manual_seed(seed);
            return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2));
        }
        public Tensor BatchLoss(nn.Module<Tensor, Tensor> model, Random random, int batchSize)
        {
            var index = tensor(Enumerable.Range(0, batchSize).Select(_ => (long)random.Next(64)).ToArray());
            return nn.functional.cross_entropy(model.forward(_x.index_select(0, index)), _y.index_select(0, index));
        }
        public double Evaluate(nn.Module<Tensor, Tensor> model)
        {
            using var _ = no_grad();
            return model.forward(_x).argmax(1).eq(_y).to_type(ScalarType.Float32).mean().item<float>();
        }
        public void Dispose() { _x.Dispose(); _y.Dispose(); }
    }

    [Fact]
    public void IntrinsicSweepRecordsDoNotDependOnTheNumberOfWorkers()
    {
        using var task = new ToyTask();
        var training = new SubspaceTrainingOptions(Steps: 30, BatchSize: 8);
        var options = new IntrinsicSweepOptions([3, 6, 12], [ProjectionKind.Dense, ProjectionKind.Fastfood], 2, training, Resamples: 10);
        string Records(int workers)
        {
            var store = RunStore.Open(Path.Combine(_dir, $"w{workers}.jsonl"), "intrinsic-dimension", IntrinsicDimensionSweep.StoreIdentity(task, training));
            var report = IntrinsicDimensionSweep.Run(task, options with { Workers = workers }, store);
            Assert.Equal(2 + 3 * 2 * 2, report.Runs.Count);
            // The report lists runs in the sweep's fixed order whatever finished first; the store holds every run once.
            Assert.Equal(report.Runs.Count, store.Count);
            return string.Join("\n", report.Runs.Select(r => $"{r.Key} {r.Metric:R} {r.FinalLoss:R} {r.Diverged}"));
        }
        string one = Records(1);
        Assert.Equal(one, Records(3));
        var error = Assert.Throws<ArgumentException>(() => IntrinsicDimensionSweep.Run(task, options with { Workers = 0 }));
        Assert.Contains("Workers", error.Message);
    }

    [Fact]
    public void RunKeyIsOneFunctionOfTheConfigFromEveryEntryPoint()
    {
        using var task = new ToyTask();
        var training = new SubspaceTrainingOptions(Steps: 5, BatchSize: 8);
        // Intrinsic dimension: the full baseline trained directly and through the sweep carry the config's key.
        var direct = SubspaceTraining.TrainFull(task, 0, training);
        Assert.Equal(SubspaceRunConfig.Full("toy", 0).Key, direct.Key);
        Assert.Equal(SubspaceTraining.Key("toy", "full", 0, false, false, 0), direct.Key); // the key earlier stores hold
        var subspace = SubspaceTraining.TrainSubspace(task, 5, new ProjectionOptions(ProjectionKind.Dense), false, 1, training);
        Assert.Equal(new SubspaceRunConfig("toy", "dense", 5, false, false, 1).Key, subspace.Key);
        var store = RunStore.Open(Path.Combine(_dir, "id.jsonl"), "intrinsic-dimension", IntrinsicDimensionSweep.StoreIdentity(task, training));
        IntrinsicDimensionSweep.Run(task, new IntrinsicSweepOptions([5], [ProjectionKind.Dense], 2, training, Resamples: 10), store);
        Assert.True(store.Contains(direct.Key));
        Assert.True(store.Contains(subspace.Key));
        Assert.Equal(4, store.Count);
        // A second sweep finds every run in the store (GetOrRun) and trains nothing.
        int before = File.ReadAllLines(store.Path).Length;
        IntrinsicDimensionSweep.Run(task, new IntrinsicSweepOptions([5], [ProjectionKind.Dense], 2, training, Resamples: 10), store);
        Assert.Equal(before, File.ReadAllLines(store.Path).Length);

        // Proxies: the spec's key is the record's key whether the sweep trains the run alone or in an ensemble.
        var corpus = TextCorpus.Synthetic(40_000, seed: 2);
        var specs = new ProxySweepSpec
        {
            Widths = [16], HeadDim = 8, LearningRates = [1e-3, 1e-2],
            Training = new ProxyTrainingOptions { Steps = 4, BatchSize = 2, SequenceLength = 16, LogEvery = 2, ValidationBatches = 1 },
        }.Runs();
        foreach (int size in new[] { 1, 16 })
        {
            var proxyStore = ProxySweep.OpenStore(Path.Combine(_dir, $"proxy{size}.jsonl"), corpus);
            var records = ProxySweep.Run(specs, corpus, CPU, proxyStore, maxEnsembleSize: size);
            Assert.Equal(specs.Select(s => s.Key), records.Select(r => r["key"]!.GetValue<string>()));
        }
    }
}
