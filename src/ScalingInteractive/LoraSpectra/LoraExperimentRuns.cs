using ScalingInteractive.Checkpoints;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScalingInteractive.Proxies;
using ScalingInteractive.Runs;
using ScalingInteractive.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;

// The experiment's building blocks: evaluation batches, pre-training, models, the one trainer's settings, and each kind
// of run (one target run, a trajectory to loss levels, a task sequence); LoraExperiment.cs holds the entry points and stages.
public static partial class LoraExperiment
{
    /// <summary>Fixed validation batches per corpus (A, then the tasks): every loss of every run is measured on the same tokens.</summary>
    private static List<List<(Tensor, Tensor)>> EvaluationBatches(LoraExperimentOptions options, LoraExperimentCorpora corpora, Device device)
    {
        var evalRandom = new Random(unchecked((int)options.Seed) ^ 0x0e7a1);
        var allCorpora = new[] { corpora.Pretrain }.Concat(corpora.Tasks).ToList();
        return allCorpora.Select(c => Enumerable.Range(0, options.EvaluationBatches)
            .Select(_ => c.SampleBatch(true, options.BatchSize, options.SequenceLength, evalRandom, device)).ToList()).ToList();
    }

    /// <summary>Pre-trains the base on A (no checkpoint: <see cref="RunPretrainStage"/> keeps it).</summary>
    private static Dictionary<string, Tensor> PretrainWeights(LoraExperimentOptions options, TextCorpus corpus, Device device, CancellationToken ct, out TrainingOutcome? outcome)
    {
        using var model = new ProxyTransformer(options.Model, device, options.Seed);
        var random = new Random(unchecked((int)options.Seed) ^ 0x9e7);
        outcome = TrainUntil(model, new FullParametrisation(model), options.PretrainSteps, options.PretrainLearningRate, corpus, options, random, device, null, ct);
        return SpectrumAnalysis.Snapshot(model);
    }

    private static ProxyTransformer NewModel(LoraExperimentOptions options, Device device, IReadOnlyDictionary<string, Tensor> weights)
    {
        var model = new ProxyTransformer(options.Model, device, options.Seed);
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters()) p.copy_(weights[name]);
        return model;
    }

    /// <summary>
    /// Training through the package's one trainer: AdamW (0.9, 0.95, no weight decay), clipping at 1, linear warm-up
    /// (5% of the steps) then cosine decay to 10% of the peak at the last step (law 7's schedule type). The
    /// parametrisation is the full model or the LoRA attachment. Returns false when the run broke the divergence rule.
    /// </summary>
    private static bool Train(ProxyTransformer model, IParametrisation parametrisation, int steps, double peak, TextCorpus corpus,
        LoraExperimentOptions options, Random random, Device device, CancellationToken ct) =>
        !TrainUntil(model, parametrisation, steps, peak, corpus, options, random, device, null, ct).Diverged;

    /// <summary><see cref="Train"/> with an early stop (<see cref="TrainerHooks.StopAfter"/>); returns the trainer's outcome.</summary>
    private static TrainingOutcome TrainUntil(ProxyTransformer model, IParametrisation parametrisation, int steps, double peak, TextCorpus corpus,
        LoraExperimentOptions options, Random random, Device device, Func<int, bool>? stopAfter, CancellationToken ct)
    {
        var hooks = new TrainerHooks
        {
            Loss = _ =>
            {
                var (input, target) = corpus.SampleBatch(false, options.BatchSize, options.SequenceLength, random, device);
                return ProxyTransformer.CrossEntropy(model.forward(input), target);
            },
            StopAfter = stopAfter,
        };
        return Trainer.Train(parametrisation, hooks, TrainerOptionsFor(steps, peak), null, ct).Single();
    }

    /// <summary>The experiment's optimiser and schedule for a run of <paramref name="steps"/> steps at peak rate <paramref name="peak"/>.</summary>
    private static TrainerOptions TrainerOptionsFor(int steps, double peak) => TrainerOptions.Single(
        LearningRateSchedule.Cosine(peak, steps, Math.Min(steps, Math.Max(1, steps / 20)), minimum: 0.1 * peak),
        new AdamWOptions { Beta1 = 0.9, Beta2 = 0.95, WeightDecay = 0, GradClip = 1.0 }, logEvery: 50);

    private static double Evaluate(ProxyTransformer model, IReadOnlyList<(Tensor Input, Tensor Target)> batches) =>
        ProxyTransformer.MeanCrossEntropy(model, batches);

    // The weights LoRA adapts (the spectra compare exactly these).
    private static List<string> TargetNames(LoraExperimentOptions options, ProxyTransformer model) =>
        LoraAttachment.Matrices(model).Where(m => Lora(options, 1, false).Targets(m.Name)).Select(m => m.Name + ".weight").ToList();

    private static LoraOptions Lora(LoraExperimentOptions options, int rank, bool rs) =>
        new() { Rank = rank, Alpha = options.Alpha, RankStabilized = rs, TargetPatterns = options.TargetPatterns };

    private static readonly object GlobalGeneratorGate = new();

    private static LoraRunRecord FineTuneOnce(LoraExperimentOptions options, LoraExperimentCorpora corpora, List<List<(Tensor, Tensor)>> evaluation,
        Device device, IReadOnlyDictionary<string, Tensor> pretrained, int rank, bool rs, double lr, double lossABefore, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        ProxyTransformer created;
        LoraAttachment? attachment = null;
        List<string> targetNames;
        // The model's and the adapters' default initialisations draw from LibTorch's one global generator: seeding it,
        // building the model and attaching the adapters is one step no other worker may interleave with.
        lock (GlobalGeneratorGate)
        {
            manual_seed(options.Seed + 17 * rank + (rs ? 1 : 0));
            created = NewModel(options, device, pretrained);
            targetNames = TargetNames(options, created);
            if (rank != 0) attachment = LoraAttachment.Attach(created, Lora(options, rank, rs));
        }
        using var model = created;
        var random = new Random(unchecked((int)options.Seed) ^ 0x7a26e7);
        bool finite;
        long trainable;
        if (attachment is null)
        {
            trainable = model.parameters().Sum(p => p.numel());
            finite = Train(model, new FullParametrisation(model), options.FineTuneSteps, lr, corpora.Tasks[0], options, random, device, ct);
        }
        else
        {
            trainable = attachment.TrainableParameterCount;
            finite = Train(model, new LoraParametrisation(attachment), options.FineTuneSteps, lr, corpora.Tasks[0], options, random, device, ct);
            attachment.Detach(keepMerged: true);
        }
        double target = Evaluate(model, evaluation[1]);
        double lossA = Evaluate(model, evaluation[0]);
        // The trainer applied the package's divergence rule to the training losses; a non-finite evaluation also counts.
        bool diverged = !finite || !double.IsFinite(target) || !double.IsFinite(lossA);
        ModelSpectrum? spectrum = null;
        int mitigated = 0;
        double mitigatedTarget = double.NaN, mitigatedA = double.NaN;
        if (!diverged)
        {
            var weights = SpectrumAnalysis.Weights(model);
            var baseSubset = targetNames.ToDictionary(n => n, n => pretrained[n]);
            var tunedSubset = targetNames.ToDictionary(n => n, n => weights[n]);
            spectrum = SpectrumAnalysis.Compare(MethodName(rank, rs), baseSubset, tunedSubset, options.Intruders, cancellationToken: ct);
            // Mitigation: scale each layer's intruder directions by lambda, then re-evaluate.
            using (no_grad())
                foreach (var layer in spectrum.Layers.Where(l => l.Intruders.Length > 0))
                {
                    var p = model.named_parameters().First(x => x.name == layer.Name).parameter;
                    using var svd = Spectra.Svd(p);
                    using var scaled = Spectra.ScaleDirections(p, svd, layer.Intruders, options.MitigationLambda);
                    p.copy_(scaled);
                    mitigated += layer.Intruders.Length;
                }
            mitigatedTarget = mitigated == 0 ? target : Evaluate(model, evaluation[1]);
            mitigatedA = mitigated == 0 ? lossA : Evaluate(model, evaluation[0]);
        }
        return new LoraRunRecord
        {
            Rank = rank, RsLora = rs, LearningRate = lr, TrainableParameters = trainable, TargetLoss = target, PretrainLossBefore = lossABefore,
            PretrainLossAfter = lossA, Diverged = diverged, Spectrum = spectrum, MitigatedDirections = mitigated,
            MitigatedTargetLoss = mitigatedTarget, MitigatedPretrainLoss = mitigatedA, Seconds = clock.Elapsed.TotalSeconds,
        };
    }

    private static LoraTrajectoryRecord Trajectory(LoraExperimentOptions options, LoraExperimentCorpora corpora, List<List<(Tensor, Tensor)>> evaluation,
        Device device, IReadOnlyDictionary<string, Tensor> pretrained, int rank, bool rs, double lr, double[] levels, int evaluateEvery, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        double lossABefore;
        using (var before = NewModel(options, device, pretrained)) lossABefore = Evaluate(before, evaluation[0]);
        // The same seeds as FineTuneOnce: without levels this is exactly that run.
        manual_seed(options.Seed + 17 * rank + (rs ? 1 : 0));
        using var model = NewModel(options, device, pretrained);
        var random = new Random(unchecked((int)options.Seed) ^ 0x7a26e7);
        var targetNames = TargetNames(options, model);
        var baseSubset = targetNames.ToDictionary(n => n, n => pretrained[n]);
        LoraAttachment? attachment = rank == 0 ? null : LoraAttachment.Attach(model, Lora(options, rank, rs));
        IParametrisation parametrisation = attachment is null ? new FullParametrisation(model) : new LoraParametrisation(attachment);
        var steps = new List<int>();
        var losses = new List<double>();
        var snapshots = new List<LoraLossSnapshot>();
        bool nonFinite = false;
        void Measure(int step)
        {
            parametrisation.Finish(); // the module holds the weights after this step (LoRA: merged)
            double target = Evaluate(model, evaluation[1]);
            steps.Add(step);
            losses.Add(target);
            if (!double.IsFinite(target)) { nonFinite = true; return; }
            var reached = levels.Where(l => target <= l && snapshots.All(x => x.Level != l)).ToList();
            if (reached.Count == 0) return;
            double lossA = Evaluate(model, evaluation[0]);
            var weights = SpectrumAnalysis.Weights(model);
            var spectrum = SpectrumAnalysis.Compare(MethodName(rank, rs), baseSubset, targetNames.ToDictionary(n => n, n => weights[n]), options.Intruders, cancellationToken: ct);
            foreach (double level in reached)
                snapshots.Add(new LoraLossSnapshot { Level = level, Step = step, TargetLoss = target, PretrainLossBefore = lossABefore, PretrainLossAfter = lossA, Spectrum = spectrum });
        }
        var hooks = new TrainerHooks
        {
            Loss = _ =>
            {
                var (input, target) = corpora.Tasks[0].SampleBatch(false, options.BatchSize, options.SequenceLength, random, device);
                return ProxyTransformer.CrossEntropy(model.forward(input), target);
            },
            AfterStep = (step, _) => { if (step % evaluateEvery == 0 || step == options.FineTuneSteps) Measure(step); },
            StopAfter = _ => nonFinite || (levels.Length > 0 && snapshots.Count == levels.Length),
        };
        var outcome = Trainer.Train(parametrisation, hooks, TrainerOptionsFor(options.FineTuneSteps, lr), null, ct).Single();
        attachment?.Detach(keepMerged: true);
        return new LoraTrajectoryRecord
        {
            Rank = rank, RsLora = rs, LearningRate = lr, Levels = levels, EvaluateEvery = evaluateEvery, Steps = steps.ToArray(), TargetLosses = losses.ToArray(),
            Snapshots = snapshots.ToArray(), StepsCompleted = outcome.StepsCompleted, Diverged = outcome.Diverged || nonFinite, Seconds = clock.Elapsed.TotalSeconds,
        };
    }

    private static LoraSequenceRecord Sequence(LoraExperimentOptions options, LoraExperimentCorpora corpora, List<List<(Tensor, Tensor)>> evaluation,
        Device device, IReadOnlyDictionary<string, Tensor> pretrained, int rank, double lr, CancellationToken ct, double[]? levels = null, int evaluateEvery = 1)
    {
        manual_seed(options.Seed + 1000 + rank);
        using var model = NewModel(options, device, pretrained);
        var targetNames = TargetNames(options, model);
        var random = new Random(unchecked((int)options.Seed) ^ 0x5e9);
        var losses = new List<double[]> { evaluation.Select(e => Evaluate(model, e)).ToArray() };
        var intruders = new List<int> { 0 };
        var stepsPerTask = new List<int>();
        bool diverged = false;
        for (int t = 0; t < corpora.Tasks.Count; t++)
        {
            var task = corpora.Tasks[t];
            LoraAttachment? attachment = rank == 0 ? null : LoraAttachment.Attach(model, Lora(options, rank, false)); // LoRA: a fresh adapter per task, merged at its end
            IParametrisation parametrisation = attachment is null ? new FullParametrisation(model) : new LoraParametrisation(attachment);
            // With levels: stop the task at the first evaluation whose loss on it is at or below its level.
            Func<int, bool>? stop = levels is null ? null : step =>
            {
                if (step % evaluateEvery != 0) return false;
                parametrisation.Finish();
                double loss = Evaluate(model, evaluation[t + 1]);
                return !double.IsFinite(loss) || loss <= levels[t];
            };
            var outcome = TrainUntil(model, parametrisation, options.SequentialSteps, lr, task, options, random, device, stop, ct);
            attachment?.Detach(keepMerged: true);
            stepsPerTask.Add(outcome.StepsCompleted);
            var row = evaluation.Select(e => Evaluate(model, e)).ToArray();
            losses.Add(row);
            diverged |= outcome.Diverged || row.Any(x => !double.IsFinite(x));
            if (diverged) { intruders.Add(0); break; }
            var weights = SpectrumAnalysis.Weights(model);
            var spectrum = SpectrumAnalysis.Compare("stage", targetNames.ToDictionary(n => n, n => pretrained[n]), targetNames.ToDictionary(n => n, n => weights[n]), options.Intruders, cancellationToken: ct);
            intruders.Add(spectrum.TotalIntruders);
        }
        return new LoraSequenceRecord
        {
            Rank = rank, LearningRate = lr, Tasks = new[] { corpora.Pretrain.Name }.Concat(corpora.Tasks.Select(t => t.Name)).ToArray(),
            Losses = losses.ToArray(), Intruders = intruders.ToArray(), Diverged = diverged, Levels = levels, StepsPerTask = stepsPerTask.ToArray(),
        };
    }
}
