using ScalingInteractive.LoraSpectra;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.LoraSpectra;

public sealed class SpectraTests
{
    private const int M = 32;

    /// <summary>Random orthogonal matrix (QR of a seeded Gaussian), float64 for exact constructions.</summary>
    private static Tensor Orthogonal(int n, long seed)
    {
        var g = new Generator((ulong)seed);
        var (q, _) = linalg.qr(randn(new long[] { n, n }, dtype: ScalarType.Float64, generator: g));
        return q;
    }

    /// <summary>W0 = U diag(s) Vᵀ with s = 32, 31, ..., 1: its singular vectors are the columns of U and V.</summary>
    private static (Tensor W0, Tensor U, Tensor V, Tensor S) Base()
    {
        var u = Orthogonal(M, 1);
        var v = Orthogonal(M, 2);
        var s = arange(M, 0, -1, dtype: ScalarType.Float64);
        return (u.matmul(diag(s)).matmul(v.mT), u, v, s);
    }

    [Fact]
    public void A_top_vector_rotated_out_of_the_base_directions_is_an_intruder()
    {
        var (w0, u, v, _) = Base();
        // x mixes every left singular vector of W0 equally: |cos(x, u_i)| = 1/sqrt(32) = 0.177 for all i.
        var x = u.sum(1) / Math.Sqrt(M);
        var y = v.sum(1) / Math.Sqrt(M);
        var w = w0 + 1000 * x.outer(y); // the new direction dominates the spectrum: top-1 of W
        var result = Spectra.CompareLayer("layer", w0, w);
        Assert.Contains(0, result.Intruders);
        Assert.Single(result.Intruders);
        Assert.True(result.MaxSimilarity[0] < 0.3, $"max similarity {result.MaxSimilarity[0]}");
        // Independent check of the similarity: the top left singular vector of W versus U, computed directly.
        var (uw, _, _) = linalg.svd(w, fullMatrices: false);
        double expected = uw[.., 0].matmul(u).abs().max().item<double>();
        Assert.Equal(expected, result.MaxSimilarity[0], 4);
    }

    [Fact]
    public void Orthogonal_changes_within_the_base_span_are_not_intruders()
    {
        var (w0, u, v, s) = Base();
        // Rescale and reorder singular values: the singular vectors stay base vectors, cosines are exactly 1.
        var w = u.matmul(diag(s.flip(0) * 3)).matmul(v.mT);
        var result = Spectra.CompareLayer("reorder", w0, w);
        Assert.Empty(result.Intruders);
        Assert.All(result.MaxSimilarity, c => Assert.Equal(1.0, c, 4));

        // Rotate the top two left vectors by 45 degrees inside their plane and make them dominant: each new top vector has
        // |cos| = 1/sqrt(2) with u0 and u1: not an intruder at 0.5, an intruder at 0.8 (closed form).
        var r = u.clone();
        r[.., 0] = (u[.., 0] + u[.., 1]) / Math.Sqrt(2);
        r[.., 1] = (u[.., 0] - u[.., 1]) / Math.Sqrt(2);
        var s2 = s.clone();
        s2[0] = 100; s2[1] = 90;
        var rotated = r.matmul(diag(s2)).matmul(v.mT);
        var sweep = Spectra.CompareLayer("rotated", w0, rotated, new IntruderOptions { EpsilonSweep = [0.5, 0.8] });
        Assert.Equal(1 / Math.Sqrt(2), sweep.MaxSimilarity[0], 4);
        Assert.Equal(1 / Math.Sqrt(2), sweep.MaxSimilarity[1], 4);
        Assert.Equal([0, 2], sweep.IntruderCounts);
    }

    [Fact]
    public void Effective_rank_matches_closed_forms()
    {
        Assert.Equal(5.0, Spectra.EffectiveRank([2, 2, 2, 2, 2]), 10);
        Assert.Equal(1.0, Spectra.EffectiveRank([3, 0, 0]), 10);
        // p = (3/4, 1/4): exp(-(0.75 ln 0.75 + 0.25 ln 0.25)) = 1.7548
        Assert.Equal(Math.Exp(-(0.75 * Math.Log(0.75) + 0.25 * Math.Log(0.25))), Spectra.EffectiveRank([3, 1]), 10);
        Assert.Equal(0.0, Spectra.EffectiveRank([0, 0]));
        // A rank-1 update has effective rank ~1 (float32 SVD noise aside).
        var (w0, u, v, _) = Base();
        var result = Spectra.CompareLayer("r1", w0, w0 + 5 * u[.., 3].outer(v[.., 7]));
        Assert.InRange(result.UpdateEffectiveRank, 1.0, 1.01);
        Assert.Equal(5.0, result.UpdateSingularValues[0], 3);
    }

    [Fact]
    public void Scaling_an_intruder_direction_by_lambda_scales_its_singular_value()
    {
        var (w0, u, v, _) = Base();
        var x = u.sum(1) / Math.Sqrt(M);
        var w = (w0 + 100 * x.outer(v[.., 0])).to_type(ScalarType.Float32);
        using var svd = Spectra.Svd(w);
        float top = svd.S[0].item<float>();
        var mitigated = Spectra.ScaleDirections(w, svd, [0], 0.75);
        var (_, s2, _) = linalg.svd(mitigated, fullMatrices: false);
        Assert.Equal(0.75 * top, s2[0].item<float>(), 0.75 * top * 1e-4);
        // The other singular values are untouched.
        Assert.Equal(svd.S[1].item<float>(), s2[1].item<float>(), 1e-3);
        Assert.Throws<ArgumentException>(() => Spectra.ScaleDirections(w, svd, [0], -1));
    }

    [Fact]
    public void Model_comparison_rejects_missing_tensors_and_shape_mismatches()
    {
        var a = new Dictionary<string, Tensor> { ["x.weight"] = randn(4, 4), ["y.weight"] = randn(4, 4) };
        var b = new Dictionary<string, Tensor> { ["x.weight"] = randn(4, 3), ["y.weight"] = randn(4, 4), ["z.weight"] = randn(4, 4) };
        Assert.Contains("no tensor named 'z.weight'", Assert.Throws<ArgumentException>(() => SpectrumAnalysis.Compare("m", a, b)).Message);
        Assert.Contains("'x.weight' is [4, 4] in the base model but [4, 3]", Assert.Throws<ArgumentException>(() => SpectrumAnalysis.Compare("m", a, b, layerFilter: "^x")).Message);
        Assert.Contains("No 2-D weight matches", Assert.Throws<ArgumentException>(() => SpectrumAnalysis.Compare("m", a, b, layerFilter: "nothing")).Message);
        Assert.Contains("not a valid regular expression", Assert.Throws<ArgumentException>(() => SpectrumAnalysis.Compare("m", a, b, layerFilter: "(")).Message);
        Assert.Throws<ArgumentException>(() => Spectra.CompareLayer("l", randn(3, 3), randn(3, 3), new IntruderOptions { Epsilon = 1.5 }));
        var same = SpectrumAnalysis.Compare("same", a, a, layerFilter: "^y");
        Assert.Equal(0, same.TotalIntruders);
        Assert.Single(same.Layers);
    }
}
