using ScalingInteractive.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace ScalingInteractive.IntrinsicDimension;

/// <summary>The kinds of random projection from the d-dimensional subspace to the D parameters.</summary>
public enum ProjectionKind
{
    /// <summary>Dense Gaussian d x D matrix, columns normalised to unit length (Li et al. 2018, section 2).</summary>
    Dense,

    /// <summary>Sparse random matrix with about sqrt(D) non-zeros per column (density about 1/sqrt(D)), unit columns.</summary>
    Sparse,

    /// <summary>Fastfood transform S H G Pi H B (Le et al. 2013), never materialised, O(D) memory.</summary>
    Fastfood,

    /// <summary>The identity (d = D only): subspace training is then ordinary training; used to check the machinery.</summary>
    Identity,
}

/// <summary>
/// A linear map P from R^d to R^D, with P^T. All tensors live on <see cref="Device"/>; vectors are 1-D float32.
/// </summary>
public interface ISubspaceProjection : IDisposable
{
    /// <summary>Which construction this is.</summary>
    ProjectionKind Kind { get; }

    /// <summary>D: the number of parameters (output length of <see cref="Apply"/>).</summary>
    long FullDimension { get; }

    /// <summary>d: the subspace dimension (input length of <see cref="Apply"/>).</summary>
    long SubspaceDimension { get; }

    /// <summary>The device all tensors of the projection live on.</summary>
    Device Device { get; }

    /// <summary>Bytes of tensor memory the projection holds (its matrix, indices or diagonals).</summary>
    long StateBytes { get; }

    /// <summary>P z: a length-D vector from a length-d vector.</summary>
    Tensor Apply(Tensor z);

    /// <summary>P^T g: a length-d vector from a length-D vector (the chain rule for dL/dz from dL/dtheta).</summary>
    Tensor ApplyTranspose(Tensor g);
}

/// <summary>Options of a projection: its kind, seed, scope and memory budget.</summary>
/// <param name="Kind">Dense, sparse, Fastfood or identity.</param>
/// <param name="Seed">Same seed, same projection.</param>
/// <param name="PerTensor">
/// One projection per parameter tensor (the same z feeds each; each block is scaled by sqrt(D_t/D) so every column of
/// the stacked map still has unit norm) instead of one global projection over all D parameters.
/// </param>
/// <param name="MemoryBudgetBytes">The most bytes a dense matrix (4 d D) or sparse index/value table (12 d sqrt(D)) may take.</param>
public sealed record ProjectionOptions(ProjectionKind Kind = ProjectionKind.Fastfood, long Seed = 0, bool PerTensor = false,
    long MemoryBudgetBytes = 2L << 30);

/// <summary>Builds projections and holds the helpers they share.</summary>
public static class SubspaceProjection
{
    /// <summary>Creates a projection for a model whose trainable tensors have the given element counts.</summary>
    /// <param name="tensorSizes">Element count of each parameter tensor, in parameter order (their sum is D).</param>
    /// <param name="d">Subspace dimension.</param>
    /// <param name="options">Kind, seed, scope, budget.</param>
    /// <param name="device">Device of every tensor.</param>
    public static ISubspaceProjection Create(IReadOnlyList<long> tensorSizes, long d, ProjectionOptions options, Device device)
    {
        ArgumentNullException.ThrowIfNull(tensorSizes);
        ArgumentNullException.ThrowIfNull(options);
        if (tensorSizes.Count == 0 || tensorSizes.Any(s => s < 1))
            throw new ArgumentException("tensorSizes must list at least one parameter tensor, each with at least one element.", nameof(tensorSizes));
        long full = tensorSizes.Sum();
        if (!options.PerTensor || tensorSizes.Count == 1 || options.Kind == ProjectionKind.Identity)
            return Create(full, d, options.Kind, options.Seed, device, options.MemoryBudgetBytes);
        CheckDimensions(full, d, options.Kind);
        // Each block gets its own seed derived from the model seed; blocks share z.
        var parts = new List<ISubspaceProjection>();
        try
        {
            for (int t = 0; t < tensorSizes.Count; t++)
                parts.Add(CreateBlock(tensorSizes[t], d, options.Kind, options.Seed * 1_000_003L + t + 1, device,
                    options.MemoryBudgetBytes - parts.Sum(p => p.StateBytes)));
            return new StackedProjection(parts, d, device);
        }
        catch
        {
            foreach (var p in parts) p.Dispose();
            throw;
        }
    }

    /// <summary>Creates one global projection from R^d to R^D.</summary>
    public static ISubspaceProjection Create(long fullDimension, long d, ProjectionKind kind, long seed, Device device, long memoryBudgetBytes = 2L << 30) =>
        kind switch
        {
            ProjectionKind.Dense => new DenseProjection(fullDimension, d, seed, device, memoryBudgetBytes),
            ProjectionKind.Sparse => new SparseProjection(fullDimension, d, seed, device, memoryBudgetBytes),
            ProjectionKind.Fastfood => new FastfoodProjection(fullDimension, d, seed, device),
            ProjectionKind.Identity => new IdentityProjection(fullDimension, d, device),
            _ => throw new ArgumentException($"Unknown projection kind {kind}; use dense, sparse, fastfood or identity.", nameof(kind)),
        };

    // A per-tensor block may be wider than tall (d > D_t, e.g. a bias): its columns are then dependent, but the stacked map is not.
    private static ISubspaceProjection CreateBlock(long size, long d, ProjectionKind kind, long seed, Device device, long budget) => kind switch
    {
        ProjectionKind.Dense => new DenseProjection(size, d, seed, device, budget, allowWide: true),
        ProjectionKind.Sparse => new SparseProjection(size, d, seed, device, budget, allowWide: true),
        _ => Create(size, d, kind, seed, device, budget),
    };

    /// <summary>Parses dense, sparse, fastfood or identity (case-insensitive).</summary>
    public static ProjectionKind ParseKind(string name) =>
        Enum.TryParse<ProjectionKind>(name?.Trim(), ignoreCase: true, out var kind) && Enum.IsDefined(kind)
            ? kind
            : throw new ArgumentException($"Projection '{name}' is not recognised; use dense, sparse, fastfood or identity.", nameof(name));

    internal static void CheckDimensions(long full, long d, ProjectionKind kind, bool allowWide = false)
    {
        if (full < 1) throw new ArgumentException($"The full dimension D must be at least 1 (got {full}): the module has no trainable parameters.", nameof(full));
        if (d < 1) throw new ArgumentException($"The subspace dimension d must be at least 1 (got {d}).", nameof(d));
        if (kind == ProjectionKind.Identity && d != full)
            throw new ArgumentException($"The identity projection needs d = D (got d = {d}, D = {full}); use dense, sparse or fastfood for d != D.", nameof(d));
        if (kind is ProjectionKind.Dense or ProjectionKind.Sparse && d > full && !allowWide)
            throw new ArgumentException($"A {kind.ToString().ToLowerInvariant()} projection needs d <= D (got d = {d}, D = {full}): more than D directions cannot be independent. Use fastfood (stacked blocks) or a smaller d.", nameof(d));
    }

    /// <summary>A seeded CPU generator: the random draws do not depend on the device, so CPU and CUDA runs share P.</summary>
    internal static Generator SeededGenerator(long seed) => new((ulong)seed);

    /// <summary>The unnormalised Walsh-Hadamard transform (Sylvester order, H[i,j] = (-1)^popcount(i AND j)) along the last dimension.</summary>
    /// <remarks>
    /// log2(L) butterfly stages on one copy of the input: each stage views it as (..., L/2h, 2, h) and updates the halves in
    /// place (a += b, then b = a - 2b, which is the old a - b). O(L log L) work, one L-sized buffer and no allocation per
    /// stage (allocating per stage made a 2M-parameter step page-fault-bound). H H = L I. Runs without autograd (subspace training needs none: gradients go through P^T).
    /// </remarks>
    public static Tensor WalshHadamard(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        long length = x.shape[^1];
        if (length < 1 || (length & (length - 1)) != 0)
            throw new ArgumentException($"The Walsh-Hadamard transform needs a power-of-two length along the last dimension (got {length}).", nameof(x));
        long rows = x.numel() / length;
        var y = x.reshape(rows, length).clone();
        using (no_grad())
        {
            for (long h = 1; h < length; h *= 2)
            {
                using var v = y.view(rows, length / (2 * h), 2, h);
                using var a = v.select(2, 0);
                using var b = v.select(2, 1);
                a.PlusInPlace(b);
                b.TimesInPlace(-2).PlusInPlace(a);
            }
        }
        using (y) return y.view(x.shape);
    }

    /// <summary>The smallest power of two at least <paramref name="n"/>.</summary>
    public static long NextPowerOfTwo(long n)
    {
        if (n < 1) throw new ArgumentException($"n must be at least 1 (got {n}).", nameof(n));
        long p = 1;
        while (p < n) p <<= 1;
        return p;
    }

    internal static void CheckVector(Tensor v, long length, string what, string parameter)
    {
        ArgumentNullException.ThrowIfNull(v, parameter);
        if (v.dim() != 1 || v.shape[0] != length)
            throw new ArgumentException($"{what} must be a 1-D tensor of length {length} (got shape [{string.Join(", ", v.shape)}]).", parameter);
    }
}

/// <summary>Dense Gaussian projection: a d x D matrix whose rows (the basis vectors, columns of P) have unit length.</summary>
public sealed class DenseProjection : ISubspaceProjection
{
    private readonly Tensor _basis; // [d, D]: row j is column j of P

    /// <summary>Draws the matrix; refuses when d x D x 4 bytes exceeds <paramref name="memoryBudgetBytes"/>.</summary>
    public DenseProjection(long fullDimension, long d, long seed, Device device, long memoryBudgetBytes = 2L << 30)
        : this(fullDimension, d, seed, device, memoryBudgetBytes, allowWide: false)
    {
    }

    internal DenseProjection(long fullDimension, long d, long seed, Device device, long memoryBudgetBytes, bool allowWide)
    {
        SubspaceProjection.CheckDimensions(fullDimension, d, ProjectionKind.Dense, allowWide);
        long bytes = MatrixBytes(fullDimension, d);
        if (bytes > memoryBudgetBytes)
            throw new ArgumentException(
                $"A dense projection with d = {d} and D = {fullDimension} needs a {d} x {fullDimension} float32 matrix of {bytes / 1048576.0:F1} MiB, " +
                $"above the memory budget of {memoryBudgetBytes / 1048576.0:F1} MiB. Use --projection fastfood (O(D) memory) or sparse, or a smaller d.", nameof(d));
        FullDimension = fullDimension;
        SubspaceDimension = d;
        Device = device;
        using var scope = NewDisposeScope();
        using var generator = SubspaceProjection.SeededGenerator(seed);
        var m = randn([d, fullDimension], generator: generator);
        m.div_(m.norm(1, keepdim: true));
        _basis = m.to(device).MoveToOuterDisposeScope();
    }

    /// <summary>Bytes of a d x D float32 matrix.</summary>
    public static long MatrixBytes(long fullDimension, long d) => checked(fullDimension * d * sizeof(float));

    /// <inheritdoc />
    public ProjectionKind Kind => ProjectionKind.Dense;
    /// <inheritdoc />
    public long FullDimension { get; }
    /// <inheritdoc />
    public long SubspaceDimension { get; }
    /// <inheritdoc />
    public Device Device { get; }
    /// <inheritdoc />
    public long StateBytes => MatrixBytes(FullDimension, SubspaceDimension);

    /// <summary>The d x D matrix P^T (row j is basis vector j).</summary>
    internal Tensor Basis => _basis;

    /// <inheritdoc />
    public Tensor Apply(Tensor z)
    {
        SubspaceProjection.CheckVector(z, SubspaceDimension, "z", nameof(z));
        return matmul(z, _basis);
    }

    /// <inheritdoc />
    public Tensor ApplyTranspose(Tensor g)
    {
        SubspaceProjection.CheckVector(g, FullDimension, "g", nameof(g));
        return mv(_basis, g);
    }

    /// <inheritdoc />
    public void Dispose() => _basis.Dispose();
}

/// <summary>
/// Sparse random projection: each column holds k = ceil(sqrt(D)) Gaussian non-zeros in distinct rows (one in each of k
/// equal strata of the D rows, so density is about 1/sqrt(D)), normalised to unit length. Stored as k row indices and
/// values per column and applied by gather / scatter-add: memory 12 d k bytes, no dense matrix.
/// </summary>
public sealed class SparseProjection : ISubspaceProjection
{
    private readonly Tensor _rows;   // [d, k] int64
    private readonly Tensor _values; // [d, k] float32

    /// <summary>Draws the non-zeros; refuses when the index and value tables would exceed <paramref name="memoryBudgetBytes"/>.</summary>
    public SparseProjection(long fullDimension, long d, long seed, Device device, long memoryBudgetBytes = 2L << 30)
        : this(fullDimension, d, seed, device, memoryBudgetBytes, allowWide: false)
    {
    }

    internal SparseProjection(long fullDimension, long d, long seed, Device device, long memoryBudgetBytes, bool allowWide)
    {
        SubspaceProjection.CheckDimensions(fullDimension, d, ProjectionKind.Sparse, allowWide);
        FullDimension = fullDimension;
        SubspaceDimension = d;
        Device = device;
        NonZerosPerColumn = Math.Min(fullDimension, (long)Math.Ceiling(Math.Sqrt(fullDimension)));
        long k = NonZerosPerColumn;
        if (StateBytes > memoryBudgetBytes)
            throw new ArgumentException(
                $"A sparse projection with d = {d} and D = {fullDimension} holds {d} x {k} non-zeros ({StateBytes / 1048576.0:F1} MiB of indices and values), " +
                $"above the memory budget of {memoryBudgetBytes / 1048576.0:F1} MiB. Use --projection fastfood (O(D) memory) or a smaller d.", nameof(d));
        using var generator = SubspaceProjection.SeededGenerator(seed);
        var rowChunks = new List<Tensor>();
        var valueChunks = new List<Tensor>();
        using (var scope = NewDisposeScope())
        {
            // Stratum i covers rows [floor(i D / k), floor((i+1) D / k)): one uniform row in each keeps rows distinct.
            var edges = floor(TorchScalars.Arange(0, k + 1, dtype: ScalarType.Float64).Times(fullDimension).DividedBy(k)).to(ScalarType.Int64);
            var starts = edges[TensorIndex.Slice(0, k)].unsqueeze(0);
            var widths = (edges[TensorIndex.Slice(1, k + 1)] - edges[TensorIndex.Slice(0, k)]).to(ScalarType.Float64).unsqueeze(0);
            // Columns are drawn in chunks so the float64 temporaries stay small next to the stored tables.
            const long chunk = 4096;
            for (long first = 0; first < d; first += chunk)
            {
                using var inner = NewDisposeScope();
                long n = Math.Min(chunk, d - first);
                var u = rand([n, k], dtype: ScalarType.Float64, generator: generator);
                var rows = starts.Plus(floor(u * widths).to(ScalarType.Int64)).Clamp(0, fullDimension - 1);
                var values = randn([n, k], generator: generator);
                values.div_(values.norm(1, keepdim: true));
                rowChunks.Add(rows.to(device).MoveToOuterDisposeScope());
                valueChunks.Add(values.to(device).MoveToOuterDisposeScope());
            }
            _rows = (rowChunks.Count == 1 ? rowChunks[0] : cat(rowChunks, 0)).MoveToOuterDisposeScope();
            _values = (valueChunks.Count == 1 ? valueChunks[0] : cat(valueChunks, 0)).MoveToOuterDisposeScope();
        }
    }

    /// <summary>Non-zeros in each column.</summary>
    public long NonZerosPerColumn { get; }

    /// <inheritdoc />
    public ProjectionKind Kind => ProjectionKind.Sparse;
    /// <inheritdoc />
    public long FullDimension { get; }
    /// <inheritdoc />
    public long SubspaceDimension { get; }
    /// <inheritdoc />
    public Device Device { get; }
    /// <inheritdoc />
    public long StateBytes => SubspaceDimension * NonZerosPerColumn * (sizeof(long) + sizeof(float));

    internal Tensor Rows => _rows;
    internal Tensor Values => _values;

    /// <inheritdoc />
    public Tensor Apply(Tensor z)
    {
        SubspaceProjection.CheckVector(z, SubspaceDimension, "z", nameof(z));
        using var scope = NewDisposeScope();
        var contributions = (_values * z.unsqueeze(1)).view(-1);
        return zeros(FullDimension, dtype: z.dtype, device: Device).IndexAddInPlace(0, _rows.view(-1), contributions).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public Tensor ApplyTranspose(Tensor g)
    {
        SubspaceProjection.CheckVector(g, FullDimension, "g", nameof(g));
        using var scope = NewDisposeScope();
        return (g.index_select(0, _rows.view(-1)).view(SubspaceDimension, NonZerosPerColumn) * _values).sum(1).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _rows.Dispose();
        _values.Dispose();
    }
}

/// <summary>
/// Fastfood projection (Le, Sarlos and Smola 2013; used by Li et al. 2018 and Aghajanyan et al. 2020):
/// P z = c S H G Pi H B z, with L the next power of two at least D, B random signs, H the Walsh-Hadamard transform,
/// Pi a random permutation, G Gaussian, S the first D of the L rows and c = 1 / (|G| sqrt(D)), so each column has norm
/// sqrt(L) |G| c over all L rows and about 1 over the D kept rows. When d > L, ceil(d / L) independent blocks each take a
/// slice of z and their outputs add up. Memory O(L) per block; nothing of size d x D exists.
/// </summary>
public sealed class FastfoodProjection : ISubspaceProjection
{
    private readonly List<Block> _blocks = new();

    private sealed record Block(long Offset, long Width, Tensor Signs, Tensor Permutation, Tensor InversePermutation, Tensor Gaussian, double Scale);

    /// <summary>Draws B, Pi and G for each block.</summary>
    public FastfoodProjection(long fullDimension, long d, long seed, Device device)
    {
        SubspaceProjection.CheckDimensions(fullDimension, d, ProjectionKind.Fastfood);
        FullDimension = fullDimension;
        SubspaceDimension = d;
        Device = device;
        Length = SubspaceProjection.NextPowerOfTwo(fullDimension);
        using var generator = SubspaceProjection.SeededGenerator(seed);
        for (long offset = 0; offset < d; offset += Length)
        {
            using var scope = NewDisposeScope();
            var signs = randint(0, 2, [Length], generator: generator).Times(2).Minus(1).to(ScalarType.Float32);
            var permutation = randperm(Length, generator: generator);
            var inverse = argsort(permutation);
            var gaussian = randn([Length], generator: generator);
            double scale = 1.0 / (gaussian.norm().item<float>() * Math.Sqrt(fullDimension));
            _blocks.Add(new Block(offset, Math.Min(Length, d - offset),
                signs.to(device).MoveToOuterDisposeScope(), permutation.to(device).MoveToOuterDisposeScope(),
                inverse.to(device).MoveToOuterDisposeScope(), gaussian.to(device).MoveToOuterDisposeScope(), scale));
        }
    }

    /// <summary>L: the power of two the transform works over.</summary>
    public long Length { get; }

    /// <summary>Number of stacked blocks, ceil(d / L).</summary>
    public int BlockCount => _blocks.Count;

    /// <inheritdoc />
    public ProjectionKind Kind => ProjectionKind.Fastfood;
    /// <inheritdoc />
    public long FullDimension { get; }
    /// <inheritdoc />
    public long SubspaceDimension { get; }
    /// <inheritdoc />
    public Device Device { get; }
    /// <inheritdoc />
    public long StateBytes => _blocks.Count * Length * (sizeof(float) * 2 + sizeof(long) * 2);

    /// <summary>The diagonals, permutation and scale of block <paramref name="index"/> (for tests that build the matrix).</summary>
    internal (Tensor Signs, Tensor Permutation, Tensor Gaussian, double Scale, long Offset, long Width) BlockParts(int index)
    {
        var b = _blocks[index];
        return (b.Signs, b.Permutation, b.Gaussian, b.Scale, b.Offset, b.Width);
    }

    /// <inheritdoc />
    public Tensor Apply(Tensor z)
    {
        SubspaceProjection.CheckVector(z, SubspaceDimension, "z", nameof(z));
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        foreach (var b in _blocks)
        {
            var slice = z.narrow(0, b.Offset, b.Width);
            var padded = b.Width == Length ? slice : nn.functional.pad(slice, [0, Length - b.Width]);
            var x = SubspaceProjection.WalshHadamard(padded * b.Signs);       // H B z
            x = x.index_select(0, b.Permutation) * b.Gaussian;               // G Pi H B z
            x = SubspaceProjection.WalshHadamard(x);                           // H G Pi H B z
            var part = x.narrow(0, 0, FullDimension).Times(b.Scale);
            sum = sum is null ? part : sum.Plus(part);
        }
        return sum!.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public Tensor ApplyTranspose(Tensor g)
    {
        SubspaceProjection.CheckVector(g, FullDimension, "g", nameof(g));
        using var scope = NewDisposeScope();
        var padded = FullDimension == Length ? g : nn.functional.pad(g, [0, Length - FullDimension]); // S^T g
        var hg = SubspaceProjection.WalshHadamard(padded);                                             // shared by every block
        var parts = new List<Tensor>();
        foreach (var b in _blocks)
        {
            var x = (hg * b.Gaussian).index_select(0, b.InversePermutation);   // Pi^T G H S^T g
            x = (SubspaceProjection.WalshHadamard(x) * b.Signs).Times(b.Scale);      // c B H Pi^T G H S^T g
            parts.Add(x.narrow(0, 0, b.Width));
        }
        return (parts.Count == 1 ? parts[0] : cat(parts, 0)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var b in _blocks)
        {
            b.Signs.Dispose();
            b.Permutation.Dispose();
            b.InversePermutation.Dispose();
            b.Gaussian.Dispose();
        }
    }
}

/// <summary>The identity map (d = D): training z is training theta; checks that subspace training reproduces full training.</summary>
public sealed class IdentityProjection : ISubspaceProjection
{
    /// <summary>Creates the identity on R^D; <paramref name="d"/> must equal <paramref name="fullDimension"/>.</summary>
    public IdentityProjection(long fullDimension, long d, Device device)
    {
        SubspaceProjection.CheckDimensions(fullDimension, d, ProjectionKind.Identity);
        FullDimension = fullDimension;
        SubspaceDimension = d;
        Device = device;
    }

    /// <inheritdoc />
    public ProjectionKind Kind => ProjectionKind.Identity;
    /// <inheritdoc />
    public long FullDimension { get; }
    /// <inheritdoc />
    public long SubspaceDimension { get; }
    /// <inheritdoc />
    public Device Device { get; }
    /// <inheritdoc />
    public long StateBytes => 0;

    /// <inheritdoc />
    public Tensor Apply(Tensor z)
    {
        SubspaceProjection.CheckVector(z, SubspaceDimension, "z", nameof(z));
        return z.clone();
    }

    /// <inheritdoc />
    public Tensor ApplyTranspose(Tensor g)
    {
        SubspaceProjection.CheckVector(g, FullDimension, "g", nameof(g));
        return g.clone();
    }

    /// <inheritdoc />
    public void Dispose() { }
}

/// <summary>Per-tensor projections stacked into one map: the same z feeds every block, block t scaled by sqrt(D_t / D).</summary>
internal sealed class StackedProjection : ISubspaceProjection
{
    private readonly IReadOnlyList<ISubspaceProjection> _parts;
    private readonly double[] _scales;

    public StackedProjection(IReadOnlyList<ISubspaceProjection> parts, long d, Device device)
    {
        _parts = parts;
        FullDimension = parts.Sum(p => p.FullDimension);
        SubspaceDimension = d;
        Device = device;
        _scales = parts.Select(p => Math.Sqrt((double)p.FullDimension / FullDimension)).ToArray();
    }

    public ProjectionKind Kind => _parts[0].Kind;
    public long FullDimension { get; }
    public long SubspaceDimension { get; }
    public Device Device { get; }
    public long StateBytes => _parts.Sum(p => p.StateBytes);
    internal IReadOnlyList<ISubspaceProjection> Parts => _parts;

    public Tensor Apply(Tensor z)
    {
        SubspaceProjection.CheckVector(z, SubspaceDimension, "z", nameof(z));
        using var scope = NewDisposeScope();
        return cat(_parts.Select((p, t) => p.Apply(z).Times(_scales[t])).ToList(), 0).MoveToOuterDisposeScope();
    }

    public Tensor ApplyTranspose(Tensor g)
    {
        SubspaceProjection.CheckVector(g, FullDimension, "g", nameof(g));
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        long offset = 0;
        for (int t = 0; t < _parts.Count; t++)
        {
            var part = _parts[t].ApplyTranspose(g.narrow(0, offset, _parts[t].FullDimension)).Times(_scales[t]);
            sum = sum is null ? part : sum.Plus(part);
            offset += _parts[t].FullDimension;
        }
        return sum!.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var p in _parts) p.Dispose();
    }
}
