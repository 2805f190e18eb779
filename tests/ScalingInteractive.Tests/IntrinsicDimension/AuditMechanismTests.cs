using ScalingInteractive.IntrinsicDimension;
using ScalingInteractive.Proxies;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.IntrinsicDimension;

/// <summary>
/// Issue 10, audit (a): the language-model subspace task (<c>lm</c>) really pre-trains before the subspace runs, theta0 of
/// a subspace run is the pre-trained model, and the "random" (pretrain-steps 0) and "pretrained" tasks differ in nothing else.
/// </summary>
public class AuditMechanismTests(ITestOutputHelper output)
{
    private const int PretrainSteps = 150;

    private static IntrinsicTaskOptions Options(int pretrainSteps) => new()
    {
        DataDirectory = RepoPaths.SharedData, Device = CPU, Width = 32, Depth = 1, PretrainSteps = pretrainSteps, SequenceLength = 32,
    };

    private static Tensor Flat(nn.Module module) => cat(module.parameters().Select(p => p.detach().flatten()).ToList(), 0);

    // Mean cross-entropy on validation windows of a corpus, computed here (not by the task).
    private static double CorpusLoss(nn.Module<Tensor, Tensor> model, TextCorpus corpus)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var random = new Random(99);
        var losses = Enumerable.Range(0, 4).Select(_ =>
        {
            var (input, target) = corpus.SampleBatch(true, 32, 32, random, CPU);
            return ProxyTransformer.CrossEntropy(model.forward(input), target).item<float>();
        }).ToList();
        return losses.Average();
    }

    [SharedDataFact]
    public void PretrainingHappensBeforeTheSubspaceRunsAndIsTheirTheta0()
    {
        using var pretrained = (LanguageModelTask)IntrinsicDimensionTasks.Create("lm", Options(PretrainSteps));
        using var random = (LanguageModelTask)IntrinsicDimensionTasks.Create("lm", Options(0));
        var grammar = TextCorpus.Synthetic(400_000, 0); // the pre-training corpus of the lm task
        var config = pretrained.Options.Model;

        // 1. The pre-trained model's loss on the pre-training corpus is far below ln 256 (uniform over bytes).
        using var pre = pretrained.CreateModel(0);
        using var init = new ProxyTransformer(config, CPU, 0); // where pre-training starts
        double preLoss = CorpusLoss(pre, grammar), initLoss = CorpusLoss(init, grammar);
        output.WriteLine($"pre-training {PretrainSteps} steps (width {config.Width}, depth {config.Depth}): loss on the grammar's validation windows {preLoss:F3} " +
                         $"(initialisation {initLoss:F3}, ln 256 = {Math.Log(256):F3}); the task's tail training loss {pretrained.PretrainLoss:F3}");
        Assert.True(preLoss < 0.6 * Math.Log(256), $"pre-trained loss {preLoss} is not far below ln 256");
        Assert.True(initLoss > 0.95 * Math.Log(256), $"the initialisation should be near ln 256: {initLoss}");
        Assert.NotNull(pretrained.PretrainLoss);
        Assert.Null(random.PretrainLoss);

        // 2. theta0 of a subspace run is that model, for every seed; pre-training moved it away from the initialisation.
        for (int seed = 0; seed < 2; seed++)
        {
            using var model = pretrained.CreateModel(seed);
            using var subspace = new SubspaceModel(model, 8, new ProjectionOptions(ProjectionKind.Dense, 5), false, CPU);
            Assert.True(subspace.Theta0.eq(Flat(pre)).all().item<bool>(), $"seed {seed}: theta0 is not the pre-trained model");
        }
        double moved = (Flat(pre) - Flat(init)).norm().item<float>() / Flat(init).norm().item<float>();
        output.WriteLine($"||theta_pretrained - theta_init|| / ||theta_init|| = {moved:F3}");
        Assert.True(moved > 0.05, $"pre-training barely moved the weights: {moved}");

        // 3. Through the sweep's own entry point: a subspace run with a vanishing rate ends where it starts, so its metric is
        //    the pre-trained model's (and differs from the random task's).
        var still = new SubspaceTrainingOptions(Steps: 1, LearningRate: 1e-12, BatchSize: 4);
        var run = SubspaceTraining.TrainSubspace(pretrained, 8, new ProjectionOptions(ProjectionKind.Dense), false, 1, still);
        var randomRun = SubspaceTraining.TrainSubspace(random, 8, new ProjectionOptions(ProjectionKind.Dense), false, 1, still);
        double preMetric = pretrained.Evaluate(pre);
        output.WriteLine($"accuracy on the fine-tuning windows: subspace run at theta0 {run.Metric:F4}, pre-trained model {preMetric:F4}, random task's run {randomRun.Metric:F4}");
        Assert.Equal(preMetric, run.Metric, 3);
        Assert.NotEqual(run.Metric, randomRun.Metric);
    }

    [SharedDataFact]
    public void RandomAndPretrainedTasksShareEverythingButThePretraining()
    {
        using var pretrained = (LanguageModelTask)IntrinsicDimensionTasks.Create("lm", Options(PretrainSteps));
        using var random = (LanguageModelTask)IntrinsicDimensionTasks.Create("lm", Options(0));
        Assert.Equal(pretrained.Options with { PretrainSteps = 0 }, random.Options);
        Assert.Equal(pretrained.MetricName, random.MetricName);
        Assert.NotEqual(pretrained.Name, random.Name);
        // The same fine-tuning batches and validation windows: one model scores the same under either task.
        using var probe = pretrained.CreateModel(0);
        Assert.Equal(pretrained.Evaluate(probe), random.Evaluate(probe));
        using (no_grad())
            Assert.Equal(pretrained.BatchLoss(probe, new Random(5), 4).item<float>(), random.BatchLoss(probe, new Random(5), 4).item<float>());
        // The random task's theta0 for seed 0 is the very initialisation pre-training starts from (ProxyTransformer seed 0);
        // other seeds draw other initialisations, while the pre-trained theta0 is one model for every seed.
        using var random0 = random.CreateModel(0);
        using var random1 = random.CreateModel(1);
        using var init = new ProxyTransformer(pretrained.Options.Model, CPU, 0);
        Assert.True(Flat(random0).eq(Flat(init)).all().item<bool>());
        Assert.False(Flat(random1).eq(Flat(init)).all().item<bool>());
        using var pre1 = pretrained.CreateModel(1);
        Assert.True(Flat(pre1).eq(Flat(probe)).all().item<bool>());
        output.WriteLine($"tasks {pretrained.Name} and {random.Name}: same model {random.Options.Model.Width}x{random.Options.Model.Depth}, sequence {random.Options.SequenceLength}, " +
                         $"validation {random.Options.ValidationBatches}x{random.Options.ValidationBatchSize}; accuracy of one model under both {random.Evaluate(probe):F4}");
    }

    // Issue 10's compute control: a target loss stops pre-training at the first check that reaches it; the stopped
    // model is the prefix of the longer run (same batches), and without a target the steps are exactly PretrainSteps.
    [SharedDataFact]
    public void PretrainingToATargetLossStopsAtTheFirstCheckThatReachesIt()
    {
        var corpus = TextCorpus.Synthetic(200_000, 0);
        var model = new ProxyModelConfig { Width = 32, Depth = 1, Heads = 2, ContextLength = 32 };
        var fixedSteps = new LanguageModelTaskOptions(model, 100, SequenceLength: 32);
        using var full = new LanguageModelTask("full", corpus, corpus, fixedSteps, CPU);
        Assert.Equal(100, full.PretrainStepsDone);
        Assert.NotNull(full.PretrainValidationLoss);
        // A target between the 20-step loss and the 100-step loss stops in between, at a multiple of the check interval.
        using var short20 = new LanguageModelTask("s20", corpus, corpus, fixedSteps with { PretrainSteps = 20 }, CPU);
        double goal = 0.5 * (short20.PretrainValidationLoss!.Value + full.PretrainValidationLoss!.Value);
        using var stopped = new LanguageModelTask("stopped", corpus, corpus, fixedSteps with { PretrainTargetLoss = goal, PretrainCheckEvery = 10 }, CPU);
        output.WriteLine($"validation loss after 20 steps {short20.PretrainValidationLoss:F3}, 100 steps {full.PretrainValidationLoss:F3}; " +
                         $"target {goal:F3} reached after {stopped.PretrainStepsDone} steps (loss {stopped.PretrainValidationLoss:F3})");
        Assert.InRange(stopped.PretrainStepsDone, 30, 100);
        Assert.Equal(0, stopped.PretrainStepsDone % 10);
        Assert.True(stopped.PretrainStepsDone == 100 || stopped.PretrainValidationLoss <= goal);
        // The same run as a fixed-step pre-training of that length: the stop changes nothing but where training ends.
        using var same = new LanguageModelTask("same", corpus, corpus, fixedSteps with { PretrainSteps = stopped.PretrainStepsDone }, CPU);
        using var a = stopped.CreateModel(0);
        using var b = same.CreateModel(0);
        Assert.True(Flat(a).allclose(Flat(b), 1e-5, 1e-6));
        // An unreachable target runs to the cap.
        using var capped = new LanguageModelTask("capped", corpus, corpus, fixedSteps with { PretrainSteps = 30, PretrainTargetLoss = 1e-6 }, CPU);
        Assert.Equal(30, capped.PretrainStepsDone);
    }
}
