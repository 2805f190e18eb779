using ScalingInteractive.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.LoraSpectra;

/// <summary>Which singular vectors are compared: left (columns of U, the output space) or right (rows of Vh, the input space).</summary>
public enum SingularSide
{
    /// <summary>Left singular vectors, as in Shuttleworth et al. (2024) and PEFT's intruder tools.</summary>
    Left,
    /// <summary>Right singular vectors.</summary>
    Right,
}

/// <summary>Settings of the intruder-dimension analysis; defaults as in Shuttleworth et al. (2024).</summary>
public sealed record IntruderOptions
{
    /// <summary>Number of top singular vectors of the fine-tuned matrix examined (paper: k = 10).</summary>
    public int TopK { get; init; } = 10;

    /// <summary>A top vector whose largest |cosine| with every pre-trained singular vector is below this is an intruder (paper: 0.5).</summary>
    public double Epsilon { get; init; } = 0.5;

    /// <summary>Epsilons of the sweep reported next to the headline <see cref="Epsilon"/>.</summary>
    public IReadOnlyList<double> EpsilonSweep { get; init; } = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

    /// <summary>Singular vectors compared (default left).</summary>
    public SingularSide Side { get; init; } = SingularSide.Left;

    /// <summary>How many pre-trained singular vectors the stored heat map keeps per row (the max is taken over all of them).</summary>
    public int HeatmapColumns { get; init; } = 64;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (TopK < 1) throw new ArgumentException($"TopK is {TopK}; it must be at least 1 (paper default 10).", nameof(TopK));
        if (!(Epsilon is > 0 and <= 1)) throw new ArgumentException($"Epsilon is {Epsilon}; it must lie in (0, 1] (a cosine bound; paper default 0.5).", nameof(Epsilon));
        if (EpsilonSweep.Count == 0 || EpsilonSweep.Any(e => !(e is > 0 and <= 1)))
            throw new ArgumentException($"EpsilonSweep [{string.Join(", ", EpsilonSweep)}] must be a non-empty list of numbers in (0, 1].", nameof(EpsilonSweep));
        if (HeatmapColumns < 1) throw new ArgumentException($"HeatmapColumns is {HeatmapColumns}; it must be at least 1.", nameof(HeatmapColumns));
    }
}

/// <summary>A thin SVD W = U diag(S) Vh held as tensors (dispose when done).</summary>
/// <param name="U">Left singular vectors as columns, [m, min(m,n)].</param>
/// <param name="S">Singular values, descending.</param>
/// <param name="Vh">Right singular vectors as rows, [min(m,n), n].</param>
public sealed record SvdFactors(Tensor U, Tensor S, Tensor Vh) : IDisposable
{
    /// <summary>The singular vectors of one side as columns.</summary>
    public Tensor Vectors(SingularSide side) => side == SingularSide.Left ? U : Vh.mT;

    /// <summary>Disposes the three tensors.</summary>
    public void Dispose()
    {
        U.Dispose();
        S.Dispose();
        Vh.Dispose();
    }
}

/// <summary>
/// Spectral comparison of a pre-trained matrix W0 with a fine-tuned W (Shuttleworth et al. 2024, "LoRA vs Full
/// Fine-tuning: An Illusion of Equivalence"). One function per idea; all linear algebra runs in TorchSharp on the
/// device the tensors live on.
/// </summary>
public static class Spectra
{
    /// <summary>Thin SVD (<c>torch.linalg.svd</c>, full_matrices = false) of a 2-D matrix, computed in float32 on its device.</summary>
    public static SvdFactors Svd(Tensor matrix)
    {
        if (matrix.dim() != 2) throw new ArgumentException($"SVD needs a 2-D matrix; got shape [{string.Join(", ", matrix.shape)}].", nameof(matrix));
        using var scope = NewDisposeScope();
        var m = matrix.detach().to_type(ScalarType.Float32);
        var (u, s, vh) = linalg.svd(m, fullMatrices: false);
        return new SvdFactors(u.MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope(), vh.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// |cosine similarity| between each of the top <paramref name="topK"/> columns of <paramref name="tunedVectors"/>
    /// and every column of <paramref name="baseVectors"/>: a [k, n] tensor. Singular vectors have unit norm, so the
    /// cosine is the dot product.
    /// </summary>
    public static Tensor TopKSimilarity(Tensor tunedVectors, Tensor baseVectors, int topK)
    {
        if (tunedVectors.shape[0] != baseVectors.shape[0])
            throw new ArgumentException($"Singular vectors of different lengths ({tunedVectors.shape[0]} and {baseVectors.shape[0]}): the matrices do not have the same shape.", nameof(baseVectors));
        long k = Math.Min(topK, tunedVectors.shape[1]);
        return tunedVectors.narrow(1, 0, k).mT.matmul(baseVectors).abs();
    }

    /// <summary>For each row of a similarity matrix, the largest |cosine| with any pre-trained singular vector.</summary>
    public static double[] MaxSimilarity(Tensor similarity) =>
        similarity.max(1).values.to_type(ScalarType.Float64).cpu().data<double>().ToArray();

    /// <summary>Indices of the top vectors whose largest |cosine| is below <paramref name="epsilon"/>: the intruder dimensions.</summary>
    public static int[] IntruderIndices(IReadOnlyList<double> maxSimilarity, double epsilon) =>
        Enumerable.Range(0, maxSimilarity.Count).Where(i => maxSimilarity[i] < epsilon).ToArray();

    /// <summary>Number of intruder dimensions at <paramref name="epsilon"/>.</summary>
    public static int CountIntruders(IReadOnlyList<double> maxSimilarity, double epsilon) => maxSimilarity.Count(s => s < epsilon);

    /// <summary>Singular values divided by their sum (the distribution used by the effective rank and the "normalised" spectra).</summary>
    public static double[] Normalised(IReadOnlyList<double> singularValues)
    {
        double sum = singularValues.Sum();
        return sum > 0 ? singularValues.Select(s => s / sum).ToArray() : singularValues.Select(_ => 0.0).ToArray();
    }

    /// <summary>
    /// Effective rank of Roy and Vetterli (2007): exp of the Shannon entropy of the singular values normalised to sum 1.
    /// Ranges from 1 (one direction) to the number of non-zero singular values (flat spectrum); 0 for a zero matrix.
    /// </summary>
    public static double EffectiveRank(IReadOnlyList<double> singularValues)
    {
        var p = Normalised(singularValues);
        if (p.All(x => x == 0)) return 0;
        double entropy = -p.Where(x => x > 0).Sum(x => x * Math.Log(x));
        return Math.Exp(entropy);
    }

    /// <summary>
    /// Mitigation of Shuttleworth et al.: W' = W + (lambda - 1) sum_i s_i u_i v_iᵀ over the intruder indices, i.e. each
    /// intruder direction of W keeps a fraction <paramref name="lambda"/> of its singular value.
    /// </summary>
    public static Tensor ScaleDirections(Tensor w, SvdFactors tuned, IReadOnlyList<int> indices, double lambda)
    {
        if (!(lambda >= 0)) throw new ArgumentException($"lambda is {lambda}; it must be a non-negative scale (paper example 0.75).", nameof(lambda));
        var result = w.detach().to_type(ScalarType.Float32).clone();
        if (indices.Count == 0) return result;
        using var scope = NewDisposeScope();
        var idx = tensor(indices.Select(i => (long)i).ToArray(), device: w.device);
        var u = tuned.U.index_select(1, idx);
        var s = tuned.S.index_select(0, idx);
        var vh = tuned.Vh.index_select(0, idx);
        var part = (u * s.unsqueeze(0)).matmul(vh);
        result.PlusScaledInPlace(part, lambda - 1);
        return result;
    }

    /// <summary>Full comparison of one matrix pair (see <see cref="LayerSpectrum"/>).</summary>
    public static LayerSpectrum CompareLayer(string name, Tensor w0, Tensor w, IntruderOptions? options = null)
    {
        options ??= new IntruderOptions();
        options.Validate();
        if (w0.dim() != 2 || w.dim() != 2)
            throw new ArgumentException($"Layer '{name}': both matrices must be 2-D; got [{string.Join(", ", w0.shape)}] and [{string.Join(", ", w.shape)}].", nameof(w));
        if (!w0.shape.SequenceEqual(w.shape))
            throw new ArgumentException($"Layer '{name}': the base matrix is [{string.Join(", ", w0.shape)}] but the tuned one is [{string.Join(", ", w.shape)}]; they must have the same shape.", nameof(w));
        using var scope = NewDisposeScope();
        var base0 = w0.detach().to_type(ScalarType.Float32);
        var tuned = w.detach().to_type(ScalarType.Float32).to(base0.device);
        using var svd0 = Svd(base0);
        using var svd = Svd(tuned);
        using var svdDelta = Svd(tuned - base0);
        var similarity = TopKSimilarity(svd.Vectors(options.Side), svd0.Vectors(options.Side), options.TopK);
        var maxSim = MaxSimilarity(similarity);
        long columns = Math.Min(options.HeatmapColumns, similarity.shape[1]);
        var heat = similarity.narrow(1, 0, columns).to_type(ScalarType.Float64).cpu();
        var heatRows = Enumerable.Range(0, (int)heat.shape[0]).Select(r => heat[r].data<double>().ToArray()).ToArray();
        double[] s0 = ToArray(svd0.S), s1 = ToArray(svd.S), sd = ToArray(svdDelta.S);
        double[] n0 = Normalised(s0), n1 = Normalised(s1);
        int k = maxSim.Length;
        return new LayerSpectrum(
            Name: name,
            Rows: w0.shape[0],
            Columns: w0.shape[1],
            MaxSimilarity: maxSim,
            Intruders: IntruderIndices(maxSim, options.Epsilon),
            EpsilonSweep: options.EpsilonSweep.ToArray(),
            IntruderCounts: options.EpsilonSweep.Select(e => CountIntruders(maxSim, e)).ToArray(),
            BaseSingularValues: s0,
            TunedSingularValues: s1,
            UpdateSingularValues: sd,
            UpdateEffectiveRank: EffectiveRank(sd),
            NormalisedChange: Enumerable.Range(0, k).Select(i => n1[i] - n0[i]).ToArray(),
            Similarity: heatRows,
            RelativeUpdateNorm: sd.Sum(x => x * x) is var d2 && s0.Sum(x => x * x) is var b2 && b2 > 0 ? Math.Sqrt(d2 / b2) : double.NaN);
    }

    private static double[] ToArray(Tensor t) => t.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
}

/// <summary>The spectral comparison of one pre-trained / fine-tuned matrix pair.</summary>
/// <param name="Name">Layer (tensor) name.</param>
/// <param name="Rows">Rows of the matrix.</param>
/// <param name="Columns">Columns of the matrix.</param>
/// <param name="MaxSimilarity">For each top-k singular vector of W, its largest |cosine| with any singular vector of W0.</param>
/// <param name="Intruders">Indices (0 = largest singular value) of the intruder dimensions at the headline epsilon.</param>
/// <param name="EpsilonSweep">Epsilons of the sweep.</param>
/// <param name="IntruderCounts">Intruder count at each epsilon of the sweep.</param>
/// <param name="BaseSingularValues">Singular values of W0.</param>
/// <param name="TunedSingularValues">Singular values of W.</param>
/// <param name="UpdateSingularValues">Singular values of W - W0.</param>
/// <param name="UpdateEffectiveRank">Roy-Vetterli effective rank of W - W0.</param>
/// <param name="NormalisedChange">For the top k: normalised singular value of W minus that of W0 (values divided by their sum).</param>
/// <param name="Similarity">|cosine| heat map: top-k vectors of W (rows) against the leading singular vectors of W0 (columns).</param>
/// <param name="RelativeUpdateNorm">||W - W0||_F / ||W0||_F.</param>
public sealed record LayerSpectrum(
    string Name, long Rows, long Columns, double[] MaxSimilarity, int[] Intruders, double[] EpsilonSweep, int[] IntruderCounts,
    double[] BaseSingularValues, double[] TunedSingularValues, double[] UpdateSingularValues, double UpdateEffectiveRank,
    double[] NormalisedChange, double[][] Similarity, double RelativeUpdateNorm);
