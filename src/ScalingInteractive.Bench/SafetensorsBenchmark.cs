using ScalingInteractive.Checkpoints;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using ScalingInteractive.LoraSpectra;
using static TorchSharp.torch;

namespace ScalingInteractive.Bench;

/// <summary>
/// Safetensors read throughput beside a plain FileStream on one file of more than 1 GiB that the bench writes to
/// /tmp and deletes: every path is measured under the same page-cache state, first cold (the file's pages dropped
/// with posix_fadvise(DONTNEED) before each path, Linux only) and then warm (each path run once before timing).
/// </summary>
public sealed class SafetensorsBenchmark : IBenchmark
{
    public string Name => "safetensors";
    public string Description => "safetensors read GB/s (views, views + touch, pread copies) beside a plain FileStream, cold and warm; lazy single-tensor open";

    private const int PosixFadvDontNeed = 4;

    [DllImport("libc", EntryPoint = "posix_fadvise", SetLastError = true)]
    private static extern int PosixFadvise(int fd, long offset, long length, int advice);

    public Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        long fileMiB = ArgValue(args, "--file-mib", 2176); // 34 tensors of 64 MiB: 2.28 GB
        int threads = (int)ArgValue(args, "--threads", 1);
        set_num_threads(threads);
        const int rows = 4096, cols = 4096; // 64 MiB per float32 tensor
        int count = (int)Math.Max(2, fileMiB / 64);
        string path = Path.Combine(Path.GetTempPath(), $"si-bench-st-{Environment.ProcessId}.safetensors");
        try
        {
            // One random 64 MiB block written under every name: the writer streams it, nothing large is held.
            var block = new byte[rows * cols * 4];
            using (var r = rand(rows, cols)) r.bytes.CopyTo(block);
            var clock = Stopwatch.StartNew();
            SafetensorsWriter.Write(path, Enumerable.Range(0, count).Select(i => new SafetensorEntry($"layers.{i}.weight", SafetensorDType.F32, [rows, cols], block)));
            using (var sync = new FileStream(path, FileMode.Open, FileAccess.ReadWrite)) sync.Flush(flushToDisk: true); // dirty pages cannot be dropped
            double writeSeconds = clock.Elapsed.TotalSeconds;
            long bytes = new FileInfo(path).Length;
            double gb = bytes / 1e9;
            output.WriteLine($"file: {bytes / 1048576.0:F0} MiB = {gb:F2} GB ({count} float32 tensors {rows}x{cols}); write + fsync {gb / writeSeconds:F2} GB/s; torch threads {get_num_threads()}");
            output.WriteLine("GB/s = file bytes / seconds; 'touch' sums every tensor (every page read once); ratio = path GB/s / plain stream GB/s");

            var paths = new (string Label, Func<double> Run)[]
            {
                ("plain FileStream -> one reused 64 MiB buffer (no tensors)", () => Time(() => PlainStream(path))),
                ("ToTensors (views of the mapping, untouched)", () => Time(() => { using var f = SafetensorsFile.Open(path); Consume(f.ToTensors(), touch: false); })),
                ("ToTensors + touch (views, every value summed)", () => Time(() => { using var f = SafetensorsFile.Open(path); Consume(f.ToTensors(), touch: true); })),
                ("ToTensor(positionalRead) copies + touch", () => Time(() =>
                {
                    using var f = SafetensorsFile.Open(path);
                    foreach (var name in f.Names) { using var t = f.ToTensor(name, positionalRead: true); using var s = t.sum(); _ = s.item<float>(); }
                })),
            };

            bool cold = TryDropCache(path, out string why);
            output.WriteLine(cold ? "\ncold (file pages dropped before each path):" : $"\ncold: not measured ({why})");
            if (cold)
            {
                double stream = 0;
                foreach (var (label, run) in paths)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    TryDropCache(path, out _);
                    double seconds = run();
                    if (stream == 0) stream = gb / seconds;
                    output.WriteLine($"  {label,-58} {gb / seconds,7:F2} GB/s  {seconds,7:F3} s  ratio {gb / seconds / stream,5:F2}");
                }
                TryDropCache(path, out _);
                output.WriteLine($"  lazy: open + ToTensor of 1 of {count} tensors [{rows}x{cols}] + touch: {LazyOne(path, count / 2)} ms");
            }

            output.WriteLine("\nwarm (each path run once untimed, then timed; best of 2):");
            {
                double stream = 0;
                foreach (var (label, run) in paths)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    run();
                    double seconds = Math.Min(run(), run());
                    if (stream == 0) stream = gb / seconds;
                    output.WriteLine($"  {label,-58} {gb / seconds,7:F2} GB/s  {seconds,7:F3} s  ratio {gb / seconds / stream,5:F2}");
                }
                output.WriteLine($"  lazy: open + ToTensor of 1 of {count} tensors [{rows}x{cols}] + touch: {LazyOne(path, count / 2)} ms");
            }
        }
        finally
        {
            File.Delete(path);
        }
        return Task.FromResult(0);
    }

    private static double Time(Action action)
    {
        var clock = Stopwatch.StartNew();
        action();
        return clock.Elapsed.TotalSeconds;
    }

    private static void PlainStream(string path)
    {
        var buffer = new byte[64 << 20];
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        while (stream.Read(buffer) > 0) { }
    }

    private static void Consume(Dictionary<string, Tensor> tensors, bool touch)
    {
        foreach (var t in tensors.Values)
        {
            if (touch) { using var s = t.sum(); _ = s.item<float>(); }
            t.Dispose();
        }
    }

    /// <summary>Milliseconds to open the file, view one tensor in the middle and read all its values.</summary>
    private static string LazyOne(string path, int index)
    {
        var clock = Stopwatch.StartNew();
        using (var file = SafetensorsFile.Open(path))
        using (var t = file.ToTensor($"layers.{index}.weight"))
        using (var s = t.sum())
            _ = s.item<float>();
        double touched = clock.Elapsed.TotalMilliseconds;
        clock.Restart();
        using (var file = SafetensorsFile.Open(path))
        using (var t = file.ToTensor($"layers.{index + 1}.weight")) { }
        double untouched = clock.Elapsed.TotalMilliseconds;
        return $"{touched:F1} (open + view without touching another tensor: {untouched:F2} ms)";
    }

    /// <summary>Drops the file's clean pages from the page cache (Linux posix_fadvise; no root needed).</summary>
    private static bool TryDropCache(string path, out string why)
    {
        why = "";
        if (!OperatingSystem.IsLinux()) { why = "posix_fadvise is Linux-only here"; return false; }
        try
        {
            using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
            int rc = PosixFadvise((int)handle.DangerousGetHandle(), 0, 0, PosixFadvDontNeed);
            if (rc != 0) { why = $"posix_fadvise returned {rc}"; return false; }
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            why = e.Message;
            return false;
        }
    }

    private static long ArgValue(string[] args, string name, long fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && long.TryParse(args[i + 1], out long v) ? v : fallback;
    }
}
