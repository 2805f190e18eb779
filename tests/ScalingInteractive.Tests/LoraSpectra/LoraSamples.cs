using ScalingInteractive.LoraSpectra;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.LoraSpectra;

/// <summary>One instance of each LoraSpectra result type, for the display tests.</summary>
internal static class LoraSamples
{
    public static IEnumerable<object> Results()
    {
        manual_seed(2);
        var w0 = randn(12, 8);
        var layer = Spectra.CompareLayer("blocks.0.attn.qkv.weight", w0, w0 + 3 * randn(12, 1).matmul(randn(1, 8)), new IntruderOptions { TopK = 4 });
        var spectrum = new ModelSpectrum("LoRA r=1 <script>", 4, 0.5, [layer]);
        yield return spectrum;
        var full = new LoraRunRecord { Key = "a", Method = "full", TargetLoss = 1.9, PretrainLossBefore = 1.2, PretrainLossAfter = 1.5, LearningRate = 1e-3, Spectrum = spectrum with { Name = "full" } };
        var lora = new LoraRunRecord { Key = "b", Method = "LoRA r=1", Rank = 1, TargetLoss = 2.0, PretrainLossBefore = 1.2, PretrainLossAfter = 1.7, LearningRate = 1e-2, Spectrum = spectrum };
        var sequence = new LoraSequenceRecord { Key = "c", Method = "full", Tasks = ["A", "B", "C"], Losses = [[1.2, 3.0, 3.1], [1.5, 1.9, 3.0], [1.8, 2.4, 2.0]], Intruders = [0, 0, 1] };
        yield return new LoraExperimentResult(new LoraExperimentOptions(), "A", ["B", "C"], 1.2, [full, lora], [sequence]);
    }
}
