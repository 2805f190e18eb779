using ScalingInteractive.Commands;
using ScalingInteractive.LoraSpectra;
using Xunit;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.LoraSpectra;

/// <summary>
/// The paper-named defaults of the LoRA capability: Shuttleworth et al. 2024 ("LoRA vs full fine-tuning: an illusion
/// of equivalence") for intruder dimensions, Hu et al. 2021 for LoRA's alpha/r and Kalajdzievski 2023 for rsLoRA's
/// alpha/sqrt(r). Each default is checked as a value and, where it decides a count, by a matrix built to sit between
/// the default and its neighbours.
/// </summary>
public sealed class PaperDefaultsTests
{
    private const int M = 32;

    private static Tensor Orthogonal(int n, long seed)
    {
        var (q, _) = linalg.qr(randn(new long[] { n, n }, dtype: ScalarType.Float64, generator: new Generator((ulong)seed)));
        return q;
    }

    /// <summary>
    /// W0 = U diag(32..1) V^T and W = U R diag(32..1) (V R)^T, where R rotates singular direction <paramref name="index"/>
    /// towards the even mix of directions 16..31: the tuned vector <paramref name="index"/> then has |cos| =
    /// <paramref name="cosine"/> with its own base vector and sqrt(1 - cosine^2)/4 with each of the 16 others, so its
    /// largest |cos| with any base singular vector is <paramref name="cosine"/> (for cosine above about 0.25).
    /// </summary>
    private static (Tensor W0, Tensor W) Rotated(int index, double cosine)
    {
        var u = Orthogonal(M, 11);
        var v = Orthogonal(M, 12);
        var s = diag(arange(M, 0, -1, dtype: ScalarType.Float64));
        var e = zeros(M, dtype: ScalarType.Float64);
        e[index] = 1;
        var w = zeros(M, dtype: ScalarType.Float64);
        for (int j = 16; j < M; j++) w[j] = 0.25;
        double sine = Math.Sqrt(1 - cosine * cosine);
        var r = eye(M, dtype: ScalarType.Float64) + (cosine - 1) * (outer(e, e) + outer(w, w)) + sine * (outer(w, e) - outer(e, w));
        var w0 = u.matmul(s).matmul(v.mT);
        var tuned = u.matmul(r).matmul(s).matmul(v.matmul(r).mT);
        return (w0, tuned);
    }

    /// <summary>Shuttleworth et al. 2024, section 3 (definition 1) and section 4: k = 10 top singular vectors, epsilon = 0.5.</summary>
    [Fact]
    public void Intruder_defaults_are_k_10_and_epsilon_0_5_in_the_api_and_the_commands()
    {
        var options = new IntruderOptions();
        Assert.Equal(10, options.TopK);
        Assert.Equal(0.5, options.Epsilon);
        Assert.Equal(SingularSide.Left, options.Side);
        Assert.Contains(0.5, options.EpsilonSweep);
        Assert.Equal(10, ScalingInteractive.Commands.SharedParameters.TopK.Default);
        Assert.Equal(0.5, ScalingInteractive.Commands.SharedParameters.Epsilon.Default);
        var experiment = new LoraExperimentOptions();
        Assert.Equal(10, experiment.Intruders.TopK);
        Assert.Equal(0.5, experiment.Intruders.Epsilon);
    }

    /// <summary>Shuttleworth et al. 2024, definition 1: an intruder has max |cos| below epsilon = 0.5; 0.55 is not one, 0.45 is.</summary>
    [Fact]
    public void At_the_default_epsilon_a_top_vector_at_cosine_0_55_is_no_intruder_and_one_at_0_45_is()
    {
        var (w0, w) = Rotated(0, 0.55);
        var near = Spectra.CompareLayer("near", w0, w);
        Assert.Equal(0.55, near.MaxSimilarity[0], 3);
        Assert.Empty(near.Intruders);

        var (b0, b) = Rotated(0, 0.45);
        var far = Spectra.CompareLayer("far", b0, b);
        Assert.Equal(0.45, far.MaxSimilarity[0], 3);
        Assert.Equal(new[] { 0 }, far.Intruders);
    }

    /// <summary>Shuttleworth et al. 2024, definition 1: only the top k = 10 singular vectors are examined; an intruder at index 10 (the 11th) is not counted.</summary>
    [Fact]
    public void At_the_default_k_only_the_ten_largest_singular_vectors_are_examined()
    {
        var (w0, w) = Rotated(10, 0.3);
        var layer = Spectra.CompareLayer("eleventh", w0, w);
        Assert.Equal(10, layer.MaxSimilarity.Length);
        Assert.Empty(layer.Intruders);
        // The same matrices with k = 11 do show it: the construction is an intruder.
        var wider = Spectra.CompareLayer("eleventh", w0, w, new IntruderOptions { TopK = 11 });
        Assert.Equal(new[] { 10 }, wider.Intruders);
    }

    /// <summary>
    /// Shuttleworth et al. 2024, section 6 (mitigation): each intruder direction keeps lambda = 0.75 of its singular
    /// value; the default of the experiment and its command, and the singular value after scaling, computed by hand.
    /// </summary>
    [Fact]
    public void Mitigation_lambda_is_0_75_and_scales_the_intruders_singular_value()
    {
        Assert.Equal(0.75, new LoraExperimentOptions().MitigationLambda);
        Assert.Equal(0.75, new LoraExperimentCommand().FindParameter("--lambda")!.Default);
        var (_, w) = Rotated(0, 0.45);
        using var svd = Spectra.Svd(w.to_type(ScalarType.Float32));
        using var scaled = Spectra.ScaleDirections(w, svd, [0], new LoraExperimentOptions().MitigationLambda);
        var s = linalg.svdvals(scaled.to_type(ScalarType.Float64)).data<double>().ToArray();
        // Singular values were 32, 31, ...; direction 0 now has 0.75 * 32 = 24 and sorts after 31..25.
        Assert.Contains(s, x => Math.Abs(x - 24) < 1e-3);
        Assert.DoesNotContain(s, x => Math.Abs(x - 32) < 1e-3);
    }

    /// <summary>
    /// Hu et al. 2021, section 4.1: the update B A is scaled by alpha / r. Kalajdzievski 2023 (rsLoRA), theorem 3.2 /
    /// eq. (4): by alpha / sqrt(r). Shuttleworth et al. 2024, section 4: alpha = 2r.
    /// </summary>
    [Fact]
    public void Lora_scale_is_alpha_over_r_and_rslora_alpha_over_sqrt_r_with_alpha_2r()
    {
        var lora = new LoraOptions { Rank = 16 };
        Assert.Equal(32, lora.EffectiveAlpha);
        Assert.Equal(2.0, lora.Scaling, 12);
        Assert.Equal(32 / Math.Sqrt(16), (lora with { RankStabilized = true }).Scaling, 12);
        Assert.Equal(8.0, new LoraOptions { Rank = 64, Alpha = 16, RankStabilized = false }.Scaling * 32, 12);
        Assert.Equal(2.0, new LoraOptions { Rank = 64, Alpha = 16, RankStabilized = true }.Scaling, 12);
    }
}
