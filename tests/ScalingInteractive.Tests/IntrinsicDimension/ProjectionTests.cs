using System.Numerics;
using ScalingInteractive.IntrinsicDimension;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.Tests.IntrinsicDimension;

public class ProjectionTests
{
    // Sylvester Hadamard entry, computed independently of the butterfly code.
    private static double Hadamard(long i, long j) => BitOperations.PopCount((ulong)(i & j)) % 2 == 0 ? 1 : -1;

    private static double[] ToArray(Tensor t) => t.to(ScalarType.Float64).data<double>().ToArray();

    private static double[,] Materialise(ISubspaceProjection p)
    {
        // Column j of P is P e_j: only used to check ApplyTranspose against the transpose of what Apply does.
        var m = new double[p.FullDimension, p.SubspaceDimension];
        for (long j = 0; j < p.SubspaceDimension; j++)
        {
            using var e = zeros(p.SubspaceDimension);
            e[j] = 1f;
            var col = ToArray(p.Apply(e));
            for (long i = 0; i < p.FullDimension; i++) m[i, j] = col[i];
        }
        return m;
    }

    private static void AssertMatches(ISubspaceProjection p, double[,] m, double tolerance, int seed = 3)
    {
        var rng = new Random(seed);
        var z = Enumerable.Range(0, (int)p.SubspaceDimension).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        var g = Enumerable.Range(0, (int)p.FullDimension).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        var pz = ToArray(p.Apply(tensor(z.Select(x => (float)x).ToArray())));
        var ptg = ToArray(p.ApplyTranspose(tensor(g.Select(x => (float)x).ToArray())));
        for (int i = 0; i < p.FullDimension; i++)
        {
            double expected = 0;
            for (int j = 0; j < p.SubspaceDimension; j++) expected += m[i, j] * z[j];
            Assert.True(Math.Abs(expected - pz[i]) < tolerance, $"(P z)[{i}] = {pz[i]}, matrix gives {expected}");
        }
        for (int j = 0; j < p.SubspaceDimension; j++)
        {
            double expected = 0;
            for (int i = 0; i < p.FullDimension; i++) expected += m[i, j] * g[i];
            Assert.True(Math.Abs(expected - ptg[j]) < tolerance, $"(P^T g)[{j}] = {ptg[j]}, matrix gives {expected}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(16)]
    [InlineData(64)]
    public void Walsh_Hadamard_matches_the_direct_matrix_product(int length)
    {
        var rng = new Random(length);
        var x = new double[2, length];
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < length; i++) x[r, i] = rng.NextDouble() - 0.5;
        var flat = new float[2 * length];
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < length; i++) flat[r * length + i] = (float)x[r, i];
        var y = ToArray(SubspaceProjection.WalshHadamard(tensor(flat, [2, length])));
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < length; i++)
            {
                double expected = 0;
                for (int j = 0; j < length; j++) expected += Hadamard(i, j) * x[r, j];
                Assert.Equal(expected, y[r * length + i], 4);
            }
    }

    [Fact]
    public void Walsh_Hadamard_refuses_a_length_that_is_not_a_power_of_two()
    {
        var e = Assert.Throws<ArgumentException>(() => SubspaceProjection.WalshHadamard(zeros(12)));
        Assert.Contains("power-of-two", e.Message);
    }

    [Theory]
    [InlineData(20, 5)]   // one block, L = 32
    [InlineData(20, 70)]  // d > L: three stacked blocks
    [InlineData(32, 32)]  // D a power of two
    public void Fastfood_matches_its_explicit_matrix(int full, int d)
    {
        using var p = new FastfoodProjection(full, d, seed: 11, CPU);
        long length = p.Length;
        Assert.Equal(SubspaceProjection.NextPowerOfTwo(full), length);
        Assert.Equal((int)Math.Ceiling(d / (double)length), p.BlockCount);
        // M = c S H G Pi H B per block, built from the drawn diagonals and permutation with plain loops.
        var m = new double[full, d];
        for (int b = 0; b < p.BlockCount; b++)
        {
            var (signsT, permT, gaussT, scale, offset, width) = p.BlockParts(b);
            var signs = ToArray(signsT);
            var perm = permT.data<long>().ToArray();
            var gauss = ToArray(gaussT);
            for (int i = 0; i < full; i++)
                for (int j = 0; j < width; j++)
                {
                    // (H G Pi H B)[i, j] = sum_k H[i,k] G[k] (H B)[perm[k], j] = sum_k H[i,k] G[k] H[perm[k], j] B[j]
                    double s = 0;
                    for (int k = 0; k < length; k++) s += Hadamard(i, k) * gauss[k] * Hadamard(perm[k], j) * signs[j];
                    m[i, offset + j] = scale * s;
                }
        }
        AssertMatches(p, m, 1e-4);
    }

    [Fact]
    public void Sparse_matches_its_explicit_matrix_with_the_expected_density()
    {
        const int full = 50, d = 8;
        using var p = new SparseProjection(full, d, seed: 5, CPU);
        Assert.Equal((long)Math.Ceiling(Math.Sqrt(full)), p.NonZerosPerColumn);
        var rows = p.Rows.data<long>().ToArray();
        var values = ToArray(p.Values);
        var m = new double[full, d];
        long k = p.NonZerosPerColumn;
        for (int j = 0; j < d; j++)
        {
            var columnRows = rows.Skip((int)(j * k)).Take((int)k).ToArray();
            Assert.Equal(k, columnRows.Distinct().Count()); // distinct rows, so density is exactly k / D
            for (int t = 0; t < k; t++) m[columnRows[t], j] += values[j * k + t];
        }
        AssertMatches(p, m, 1e-5);
    }

    [Fact]
    public void Dense_matches_its_matrix()
    {
        using var p = new DenseProjection(30, 7, seed: 2, CPU);
        var basis = ToArray(p.Basis);
        var m = new double[30, 7];
        for (int j = 0; j < 7; j++)
            for (int i = 0; i < 30; i++) m[i, j] = basis[j * 30 + i];
        AssertMatches(p, m, 1e-5);
    }

    public static TheoryData<ProjectionKind, bool> Kinds => new()
    {
        { ProjectionKind.Dense, false }, { ProjectionKind.Sparse, false }, { ProjectionKind.Fastfood, false },
        { ProjectionKind.Dense, true }, { ProjectionKind.Sparse, true }, { ProjectionKind.Fastfood, true },
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Projections_are_linear_and_their_transpose_is_the_adjoint(ProjectionKind kind, bool perTensor)
    {
        using var p = SubspaceProjection.Create([300, 40, 7], 25, new ProjectionOptions(kind, Seed: 9, PerTensor: perTensor), CPU);
        manual_seed(1);
        var z1 = randn(25);
        var z2 = randn(25);
        var g = randn(347);
        var lhs = p.Apply(z1 * 2 - z2 * 3);
        var rhs = p.Apply(z1) * 2 - p.Apply(z2) * 3;
        Assert.True(lhs.allclose(rhs, rtol: 1e-4, atol: 1e-5));
        // <P z, g> = <z, P^T g> checks ApplyTranspose against Apply for every kind, stacked or not.
        double a = p.Apply(z1).dot(g).item<float>(), b = z1.dot(p.ApplyTranspose(g)).item<float>();
        Assert.Equal(a, b, 3);
        Assert.Equal(347, p.FullDimension);
    }

    [Theory]
    [InlineData(ProjectionKind.Dense, 0.0001)]
    [InlineData(ProjectionKind.Sparse, 0.0001)]
    [InlineData(ProjectionKind.Fastfood, 0.2)]
    public void Columns_have_unit_norm(ProjectionKind kind, double tolerance)
    {
        const int full = 600, d = 40;
        using var p = SubspaceProjection.Create(full, d, kind, seed: 4, CPU);
        var m = Materialise(p);
        var norms = Enumerable.Range(0, d).Select(j => Math.Sqrt(Enumerable.Range(0, full).Sum(i => m[i, j] * m[i, j]))).ToArray();
        Assert.All(norms, n => Assert.InRange(n, 1 - tolerance, 1 + tolerance));
        // Fastfood: each column has norm exactly sqrt(L / D) over all L rows, so about 1 over the kept D; the mean is close.
        Assert.InRange(norms.Average(n => n * n), 0.95, 1.05);
    }

    [Fact]
    public void Per_tensor_columns_have_unit_norm_over_all_parameters()
    {
        using var p = SubspaceProjection.Create([500, 60, 9], 12, new ProjectionOptions(ProjectionKind.Dense, Seed: 1, PerTensor: true), CPU);
        var m = Materialise(p);
        for (int j = 0; j < 12; j++) Assert.Equal(1.0, Math.Sqrt(Enumerable.Range(0, 569).Sum(i => m[i, j] * m[i, j])), 4);
    }

    [Theory]
    [InlineData(ProjectionKind.Dense)]
    [InlineData(ProjectionKind.Sparse)]
    [InlineData(ProjectionKind.Fastfood)]
    public void Same_seed_gives_the_same_projection_and_another_seed_another(ProjectionKind kind)
    {
        using var a = SubspaceProjection.Create(1000, 30, kind, seed: 42, CPU);
        using var b = SubspaceProjection.Create(1000, 30, kind, seed: 42, CPU);
        using var c = SubspaceProjection.Create(1000, 30, kind, seed: 43, CPU);
        var z = ones(30);
        Assert.True(a.Apply(z).eq(b.Apply(z)).all().item<bool>());
        Assert.False(a.Apply(z).allclose(c.Apply(z)));
    }

    [Fact]
    public void Bad_dimensions_get_clear_messages()
    {
        Assert.Contains("at least 1", Assert.Throws<ArgumentException>(() => new FastfoodProjection(100, 0, 0, CPU)).Message);
        Assert.Contains("d <= D", Assert.Throws<ArgumentException>(() => new DenseProjection(10, 11, 0, CPU)).Message);
        Assert.Contains("d <= D", Assert.Throws<ArgumentException>(() => new SparseProjection(10, 11, 0, CPU)).Message);
        Assert.Contains("d = D", Assert.Throws<ArgumentException>(() => new IdentityProjection(10, 9, CPU)).Message);
        // Fastfood supports d > D with stacked blocks.
        using (var f = new FastfoodProjection(10, 40, 0, CPU)) Assert.Equal(40, f.ApplyTranspose(ones(10)).shape[0]);
        var budget = Assert.Throws<ArgumentException>(() => new DenseProjection(1_000_000, 1000, 0, CPU, memoryBudgetBytes: 1L << 30));
        Assert.Contains("3814.7 MiB", budget.Message);
        Assert.Contains("fastfood", budget.Message);
        Assert.Contains("length 5", Assert.Throws<ArgumentException>(() => new DenseProjection(10, 5, 0, CPU).Apply(ones(4))).Message);
        Assert.Throws<ArgumentException>(() => SubspaceProjection.ParseKind("gaussian"));
    }
}
