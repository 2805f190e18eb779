using ScalingInteractive.LoraSpectra;
using ScalingInteractive.Proxies;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.LoraSpectra;

public sealed class LoraExperimentTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-lora-exp-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static LoraExperimentCorpora TinyCorpora()
    {
        string a = string.Concat(Enumerable.Repeat("the cat sat on the mat. ", 200));
        string b = string.Concat(Enumerable.Repeat("To be, or not to be: that is the question. ", 120));
        return new LoraExperimentCorpora(TextCorpus.FromText("A", a),
            [TextCorpus.FromText("B", b), TextCorpus.FromText("C", new string(b.Reverse().ToArray())), TextCorpus.FromText("D", b.ToUpperInvariant())]);
    }

    private static LoraExperimentOptions Tiny => new()
    {
        Model = new ProxyModelConfig { Width = 32, Depth = 1, Heads = 2, ContextLength = 16 },
        PretrainSteps = 20, FineTuneSteps = 10, SequentialSteps = 5, BatchSize = 4, SequenceLength = 16,
        FullLearningRates = [1e-3], LoraLearningRates = [1e-2, 3e-2], Ranks = [1, 4], SequentialRanks = [2], EvaluationBatches = 2,
        Intruders = new IntruderOptions { TopK = 4 },
    };

    [Fact]
    public void Experiment_runs_every_method_selects_matched_rates_and_resumes_from_its_store()
    {
        string store = Path.Combine(_dir, "lora.jsonl");
        var counter = new CountingSink();
        var result = LoraExperiment.Run(Tiny, TinyCorpora(), CPU, store, counter);
        int reports = counter.Reports;
        // 1 full rate + 2 ranks x (LoRA, rsLoRA) x 2 rates.
        Assert.Equal(9, result.Runs.Count);
        Assert.Equal(5, result.Selected.Count);
        Assert.Equal(["full", "LoRA r=1", "rsLoRA r=1", "LoRA r=4", "rsLoRA r=4"], result.Selected.Select(r => r.Method));
        // LoRA parameters: r (in + out) for qkv 32->96, proj 32->32, fc 32->128, proj 128->32.
        int perRank = (32 + 96) + (32 + 32) + (32 + 128) + (128 + 32);
        Assert.Equal(4 * perRank, result.Selected.Single(r => r.Method == "LoRA r=4").TrainableParameters);
        var full = result.Full!;
        foreach (var lora in result.Selected.Where(r => r.Rank > 0))
        {
            // The selected rate is the one whose target loss is closest to full fine-tuning's.
            var alternatives = result.Runs.Where(r => r.Rank == lora.Rank && r.RsLora == lora.RsLora);
            Assert.Equal(alternatives.Min(r => Math.Abs(r.TargetLoss - full.TargetLoss)), Math.Abs(lora.TargetLoss - full.TargetLoss));
            Assert.Equal(4, lora.Spectrum!.Layers.Count);
            Assert.True(lora.TargetLoss < result.PretrainLoss + 5);
        }
        Assert.Equal(2, result.Sequences.Count);
        Assert.All(result.Sequences, s => Assert.Equal(4, s.Losses.Length));
        Assert.Equal(["A", "B", "C", "D"], result.Sequences[0].Tasks);
        Assert.True(File.Exists(store + ".pretrained.safetensors"));
        Assert.True(reports > 0);
        Assert.Contains("intruders", result.ToText());
        Assert.Contains("si-chart", result.ToHtml());

        // Resume: nothing is retrained, the numbers come back from the store.
        var again = LoraExperiment.Run(Tiny, TinyCorpora(), CPU, store);
        Assert.Equal(result.Selected.Select(r => r.TargetLoss), again.Selected.Select(r => r.TargetLoss));
        Assert.Equal(result.Sequences[1].Losses[3], again.Sequences[1].Losses[3]);
        Assert.Equal(1 + 9 + 2, File.ReadAllLines(store).Count(l => l.Length > 0)); // header + runs, none appended twice
    }

    private sealed class CountingSink : ScalingInteractive.Commands.IProgressSink
    {
        public int Reports;
        public void Report(int done, string? status = null, string? best = null) => Reports++;
        public void Complete(string? status = null) { }
    }
}
