using ScalingInteractive.Checkpoints;
using System.Diagnostics;
using System.Runtime.InteropServices;
using ScalingInteractive.LoraSpectra;
using static TorchSharp.torch;

namespace ScalingInteractive.Bench;

/// <summary>
/// Intruder analysis (full SVD of W0 and W plus the top-k similarity) with TorchSharp next to LAPACK's sgesdd from
/// Debian's OpenBLAS (through LAPACKE) and, for the smallest size, Math.NET's managed SVD; then safetensors read
/// throughput on a file of at least 512 MiB that the bench writes to /tmp and deletes.
/// </summary>
public sealed unsafe class LoraBenchmark : IBenchmark
{
    public string Name => "lora";
    public string Description => "intruder analysis (2 full SVDs + similarity) torch vs OpenBLAS LAPACKE vs Math.NET; safetensors read GB/s";

    [DllImport("liblapacke.so.3", EntryPoint = "LAPACKE_sgesdd")]
    private static extern int LapackeSgesdd(int layout, byte jobz, int m, int n, float* a, int lda, float* s, float* u, int ldu, float* vt, int ldvt);

    [DllImport("libblas.so.3", EntryPoint = "cblas_sgemm")]
    private static extern void CblasSgemm(int order, int transA, int transB, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [DllImport("libblas.so.3", EntryPoint = "openblas_set_num_threads")]
    private static extern void OpenBlasSetNumThreads(int threads);

    public Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        int threads = ArgValue(args, "--threads", 2);
        var sizes = ArgList(args, "--sizes", [1024, 2048, 4096]);
        long fileMiB = ArgValue(args, "--file-mib", 512);
        int mathNetMax = ArgValue(args, "--mathnet-max", 1024);
        set_num_threads(threads);
        bool lapacke = TryLapacke(threads, output);
        output.WriteLine($"threads: torch {get_num_threads()}, OpenBLAS {(lapacke ? threads.ToString() : "n/a")}; k = 10");
        output.WriteLine("size   torch svd x2 + sim   LAPACKE sgesdd x2 + sgemm   ratio   Math.NET x2 + sim   ratio   max|cos| agree");
        foreach (int n in sizes)
        {
            cancellationToken.ThrowIfCancellationRequested();
            manual_seed(n);
            using var w0 = randn(n, n) / Math.Sqrt(n);
            using var w = w0 + 3 * randn(n, 4).matmul(randn(4, n)) / n; // a rank-4 update
            // warm-up of the torch path on a small matrix
            using (var small = randn(64, 64)) { using var s0 = Spectra.Svd(small); }
            var clock = Stopwatch.StartNew();
            double[] torchMax;
            using (var a = Spectra.Svd(w0))
            using (var b = Spectra.Svd(w))
            using (var sim = Spectra.TopKSimilarity(b.U, a.U, 10))
                torchMax = Spectra.MaxSimilarity(sim);
            double torchSeconds = clock.Elapsed.TotalSeconds;

            string lapackText = "n/a", ratioText = "-", agree = "-";
            if (lapacke)
            {
                var w0Data = w0.contiguous().data<float>().ToArray();
                var wData = w.contiguous().data<float>().ToArray();
                clock.Restart();
                var lapackMax = LapackIntruders(w0Data, wData, n, 10);
                double lapackSeconds = clock.Elapsed.TotalSeconds;
                lapackText = $"{lapackSeconds,8:F2} s";
                ratioText = $"{lapackSeconds / torchSeconds:F2}x";
                agree = $"{torchMax.Zip(lapackMax).Max(p => Math.Abs(p.First - p.Second)):E1}";
            }
            string mathNetText = "skipped", mathNetRatio = "-";
            if (n <= mathNetMax)
            {
                var m0 = MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.Dense(n, n, w0.contiguous().data<float>().ToArray()).Transpose();
                var m1 = MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.Dense(n, n, w.contiguous().data<float>().ToArray()).Transpose();
                clock.Restart();
                var u0 = m0.Svd(computeVectors: true).U;
                var u1 = m1.Svd(computeVectors: true).U;
                var simM = u1.SubMatrix(0, n, 0, 10).TransposeThisAndMultiply(u0);
                _ = Enumerable.Range(0, 10).Select(i => simM.Row(i).AbsoluteMaximum()).ToArray();
                double mathNetSeconds = clock.Elapsed.TotalSeconds;
                mathNetText = $"{mathNetSeconds,8:F2} s";
                mathNetRatio = $"{mathNetSeconds / torchSeconds:F1}x";
            }
            output.WriteLine($"{n,-6} {torchSeconds,12:F2} s        {lapackText,16}             {ratioText,6}  {mathNetText,14}    {mathNetRatio,6}   {agree}");
        }
        SafetensorsThroughput(fileMiB, output, cancellationToken);
        return Task.FromResult(0);
    }

    private static bool TryLapacke(int threads, TextWriter output)
    {
        try
        {
            OpenBlasSetNumThreads(threads);
            float[] a = [2, 0, 0, 1], s = new float[2], u = new float[4], vt = new float[4];
            fixed (float* pa = a, ps = s, pu = u, pvt = vt)
                if (LapackeSgesdd(101, (byte)'S', 2, 2, pa, 2, ps, pu, 2, pvt, 2) != 0 || Math.Abs(s[0] - 2) > 1e-6) return false;
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            output.WriteLine($"LAPACKE/OpenBLAS not available ({e.Message.Split('\n')[0]}); on Debian: apt-get install liblapacke libopenblas0-pthread");
            return false;
        }
    }

    /// <summary>The same analysis through LAPACK: sgesdd (divide and conquer, as torch uses) for both matrices, then cblas_sgemm.</summary>
    private static double[] LapackIntruders(float[] w0, float[] w, int n, int k)
    {
        var u0 = Svd(w0, n);
        var u1 = Svd(w, n);
        var sim = new float[k * n];
        fixed (float* pu1 = u1, pu0 = u0, ps = sim)
            CblasSgemm(101, 112, 111, k, n, n, 1f, pu1, n, pu0, n, 0f, ps, n); // (U1[:, :k])ᵀ U0
        return Enumerable.Range(0, k).Select(i => (double)sim.AsSpan(i * n, n).ToArray().Max(Math.Abs)).ToArray();
    }

    private static float[] Svd(float[] matrix, int n)
    {
        var a = (float[])matrix.Clone(); // sgesdd overwrites its input
        var s = new float[n];
        var u = new float[n * n];
        var vt = new float[n * n];
        fixed (float* pa = a, ps = s, pu = u, pvt = vt)
        {
            int info = LapackeSgesdd(101, (byte)'S', n, n, pa, n, ps, pu, n, pvt, n);
            if (info != 0) throw new InvalidOperationException($"sgesdd failed with info {info}.");
        }
        return u;
    }

    private static void SafetensorsThroughput(long fileMiB, TextWriter output, CancellationToken ct)
    {
        string path = Path.Combine(Path.GetTempPath(), $"si-bench-{Environment.ProcessId}.safetensors");
        try
        {
            const int rows = 4096, cols = 4096; // 64 MiB per float32 tensor
            int count = (int)Math.Max(1, fileMiB / 64);
            var tensors = new Dictionary<string, Tensor>();
            for (int i = 0; i < count; i++) tensors[$"layers.{i}.weight"] = rand(rows, cols);
            var clock = Stopwatch.StartNew();
            SafetensorsWriter.Write(path, tensors);
            double writeSeconds = clock.Elapsed.TotalSeconds;
            foreach (var t in tensors.Values) t.Dispose();
            long bytes = new FileInfo(path).Length;
            double gb = bytes / 1e9;
            output.WriteLine($"\n(cold/warm and a >1 GiB file: run '-- safetensors')\nsafetensors file: {bytes / 1048576.0:F0} MiB ({count} float32 tensors {rows}x{cols}); write {gb / writeSeconds:F2} GB/s");

            for (int repeat = 0; repeat < 2; repeat++)
            {
                ct.ThrowIfCancellationRequested();
                clock.Restart();
                using (var file = SafetensorsFile.Open(path))
                    foreach (var name in file.Names)
                    {
                        // ToTensor returns a view of the mapping: summing reads every page, as a copy would.
                        using var t = file.ToTensor(name);
                        using var s = t.sum();
                        _ = s.item<float>();
                    }
                double mmapSeconds = clock.Elapsed.TotalSeconds;
                clock.Restart();
                using (var file = SafetensorsFile.Open(path))
                    foreach (var name in file.Names)
                    {
                        using var t = file.ToTensor(name, positionalRead: true);
                    }
                double preadSeconds = clock.Elapsed.TotalSeconds;
                clock.Restart();
                using (var file = SafetensorsFile.Open(path))
                    foreach (var name in file.Names) _ = file.ReadFloats(name);
                double floatsSeconds = clock.Elapsed.TotalSeconds;
                clock.Restart();
                var buffer = new byte[64 << 20];
                using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan))
                    while (stream.Read(buffer) > 0) { }
                double streamSeconds = clock.Elapsed.TotalSeconds;
                output.WriteLine($"read {repeat + 1} (page cache warm): mmap views -> torch tensors + sum {gb / mmapSeconds:F2} GB/s, pread -> torch tensors {gb / preadSeconds:F2} GB/s, mmap -> float[] {gb / floatsSeconds:F2} GB/s, " +
                                 $"plain FileStream reads into one buffer (no tensors) {gb / streamSeconds:F2} GB/s; ratio mmap/stream {streamSeconds / mmapSeconds:F2}");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static int ArgValue(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int v) ? v : fallback;
    }

    private static int[] ArgList(string[] args, string name, int[] fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1].Split(',').Select(int.Parse).ToArray() : fallback;
    }
}
