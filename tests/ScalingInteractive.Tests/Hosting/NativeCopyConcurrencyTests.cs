using System.Collections.Concurrent;
using System.Diagnostics;
using ScalingInteractive.Hosting;

namespace ScalingInteractive.Tests.Hosting;

/// <summary>
/// Several processes loading TorchSharp through ScalingInteractive's patched private copy of libLibTorchSharp.so at
/// once (two notebooks open together). Each child runs this test assembly (<see cref="TorchProbe"/>) from a folder that
/// links to the test output but holds the UNPATCHED library from the NuGet cache, as a notebook kernel sees it, so
/// the module initializer takes the private-copy path; the cache root is a fresh folder given by SCALING_INTERACTIVE_CACHE.
/// </summary>
[Trait("Category", "TorchNative")]
public class NativeCopyConcurrencyTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    [SkippableFact]
    public void Concurrent_kernels_share_the_private_copy_without_rewriting_a_mapped_library()
    {
        Skip.If(!OperatingSystem.IsLinux() || TorchRuntime.HostLibStdCxxHas(TorchRuntime.RequiredGlibcxx), "this host's libstdc++ loads TorchSharp as shipped: nothing to remedy here");
        string work = Directory.CreateTempSubdirectory("si-native-").FullName;
        try
        {
            string probeDir = MakeProbeFolder(Path.Combine(work, "app"));
            string cacheX = Directory.CreateDirectory(Path.Combine(work, "cache-x")).FullName;
            string cacheY = Directory.CreateDirectory(Path.Combine(work, "cache-y")).FullName;

            // A: a kernel already running; it writes the copy into the empty cache X and keeps it mapped.
            using var a = Probe.Start(probeDir, cacheX, "hold");
            a.WaitFor("ready");
            string copy = Assert.Single(Directory.GetFiles(Path.Combine(cacheX, "torchsharp-native"), "*", SearchOption.AllDirectories));
            Assert.Equal("libLibTorchSharp.so", Path.GetFileName(copy));
            Assert.Equal("patched-copy=" + copy, a.Lines.First(l => l.StartsWith("patched-copy=", StringComparison.Ordinal)));
            Assert.Equal("already weak", ElfVersionNeeds.MarkWeak(copy, TorchRuntime.RequiredGlibcxx, dryRun: true));
            string inodeBefore = Inode(copy);
            DateTime writtenBefore = File.GetLastWriteTimeUtc(copy);
            a.Send("go"); // A does tensor work from now until told to stop

            // B and C open "notebooks" on the same cache while A runs; D and E race from an empty cache Y.
            var others = new[] { Probe.Start(probeDir, cacheX, "once"), Probe.Start(probeDir, cacheX, "once"),
                                 Probe.Start(probeDir, cacheY, "once"), Probe.Start(probeDir, cacheY, "once") };
            foreach (var p in others)
            {
                using (p)
                {
                    int exit = p.Exit();
                    Assert.True(exit == 0, $"a concurrent probe failed (exit {exit}):\n" + p.Log);
                    Assert.Contains("work=262144", p.Lines);
                }
            }

            a.Send("stop");
            int exitA = a.Exit();
            Assert.True(exitA == 0, $"the already-running probe did not survive (exit {exitA}; 135 = SIGBUS, 139 = SIGSEGV):\n" + a.Log);
            Assert.Contains(a.Lines, l => l.StartsWith("iterations=", StringComparison.Ordinal) && int.Parse(l["iterations=".Length..]) > 0);
            Assert.Equal("work=262144", a.Lines.Last());

            // The mapped file was used as is by B and C: same inode, not written again.
            Assert.Equal(inodeBefore, Inode(copy));
            Assert.Equal(writtenBefore, File.GetLastWriteTimeUtc(copy));
            // The race on Y left one complete patched copy (same content address) and no temporary files.
            string raced = Assert.Single(Directory.GetFiles(Path.Combine(cacheY, "torchsharp-native"), "*", SearchOption.AllDirectories));
            Assert.Equal(Path.GetRelativePath(cacheX, copy), Path.GetRelativePath(cacheY, raced));
            Assert.Equal(File.ReadAllBytes(copy), File.ReadAllBytes(raced));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>
    /// A folder that runs this test assembly like its output folder, except that libLibTorchSharp.so is the unpatched
    /// original from the NuGet cache. Small files the host resolves by real path are copied; the rest are symlinks.
    /// </summary>
    private static string MakeProbeFolder(string folder)
    {
        Directory.CreateDirectory(folder);
        string output = AppContext.BaseDirectory;
        string self = Path.GetFileNameWithoutExtension(typeof(TorchProbe).Assembly.Location);
        string[] copied = [self + ".dll", self + ".deps.json", self + ".runtimeconfig.json"];
        foreach (string entry in Directory.EnumerateFileSystemEntries(output))
        {
            string name = Path.GetFileName(entry), target = Path.Combine(folder, name);
            if (name == "libLibTorchSharp.so") File.Copy(PackagedLibTorchSharp(), target);
            else if (copied.Contains(name)) File.Copy(entry, target);
            else if (Directory.Exists(entry)) Directory.CreateSymbolicLink(target, entry);
            else File.CreateSymbolicLink(target, entry);
        }
        Assert.Equal("would patch", ElfVersionNeeds.MarkWeak(Path.Combine(folder, "libLibTorchSharp.so"), TorchRuntime.RequiredGlibcxx, dryRun: true));
        return folder;
    }

    internal static string PackagedLibTorchSharp()
    {
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    private static string Inode(string path)
    {
        using var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%i", path]) { RedirectStandardOutput = true })!;
        string inode = stat.StandardOutput.ReadToEnd().Trim();
        stat.WaitForExit();
        return inode;
    }

    /// <summary>A child <c>dotnet ScalingInteractive.Tests.dll torch-probe MODE</c> with its output collected line by line.</summary>
    private sealed class Probe : IDisposable
    {
        private readonly Process _process;
        private readonly BlockingCollection<string> _incoming = new();
        private readonly ConcurrentQueue<string> _errors = new();
        public List<string> Lines { get; } = new();

        private Probe(Process process) => _process = process;

        public static Probe Start(string folder, string cacheRoot, string mode)
        {
            var start = new ProcessStartInfo("dotnet")
            {
                ArgumentList = { Path.Combine(folder, Path.GetFileName(typeof(TorchProbe).Assembly.Location)), "torch-probe", mode },
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                Environment = { ["SCALING_INTERACTIVE_CACHE"] = cacheRoot, ["OMP_NUM_THREADS"] = "1", ["MKL_NUM_THREADS"] = "1" },
            };
            var probe = new Probe(new Process { StartInfo = start });
            probe._process.OutputDataReceived += (_, e) => { if (e.Data is null) probe._incoming.CompleteAdding(); else probe._incoming.Add(e.Data); };
            probe._process.ErrorDataReceived += (_, e) => { if (e.Data is not null) probe._errors.Enqueue(e.Data); };
            probe._process.Start();
            probe._process.BeginOutputReadLine();
            probe._process.BeginErrorReadLine();
            return probe;
        }

        public string Log => string.Join('\n', Lines.Concat(_incoming).Concat(["--- stderr ---"]).Concat(_errors));

        public void WaitFor(string line)
        {
            var deadline = DateTime.UtcNow + Patience;
            while (DateTime.UtcNow < deadline)
            {
                if (!_incoming.TryTake(out string? next, TimeSpan.FromSeconds(1)))
                {
                    if (_incoming.IsCompleted) break;
                    continue;
                }
                Lines.Add(next);
                if (next == line) return;
            }
            Assert.Fail($"'{line}' not seen:\n{Log}");
        }

        public void Send(string line)
        {
            try
            {
                _process.StandardInput.WriteLine(line);
                _process.StandardInput.Flush();
            }
            catch (IOException)
            {
                // The probe died (e.g. SIGBUS after its library was rewritten in place): Exit() reports how.
            }
        }

        public int Exit()
        {
            if (!_process.WaitForExit(Patience)) { _process.Kill(entireProcessTree: true); return -1; }
            _process.WaitForExit(); // drains the asynchronous readers
            while (_incoming.TryTake(out string? rest)) Lines.Add(rest);
            return _process.ExitCode;
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }
}
