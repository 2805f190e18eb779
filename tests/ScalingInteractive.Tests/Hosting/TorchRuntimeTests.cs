using System.Diagnostics;
using ScalingInteractive.Hosting;

namespace ScalingInteractive.Tests.Hosting;

public class TorchRuntimeTests
{
    [Fact]
    public void Cpu_device_resolves_and_tensors_work()
    {
        var device = TorchRuntime.ResolveDevice("cpu");
        using var x = TorchSharp.torch.arange(1, 5, device: device);
        Assert.Equal(10, x.sum().item<long>());
        Assert.Equal(TorchSharp.DeviceType.CPU, TorchRuntime.ResolveDevice("auto").type);
    }

    [SkippableFact]
    public void Cuda_requested_without_a_gpu_gets_a_clear_message()
    {
        Skip.If(TorchSharp.torch.cuda.is_available(), "checks a machine without CUDA; this one has a GPU");
        var error = Assert.Throws<TorchUnavailableException>(() => TorchRuntime.ResolveDevice("cuda"));
        Assert.Contains("CUDA is not available", error.Message);
        Assert.Contains("--device cpu", error.Message);
        Assert.Contains("not recognised", Assert.Throws<ArgumentException>(() => TorchRuntime.ResolveDevice("tpu")).Message);
    }

    [Fact]
    public void A_missing_backend_names_the_package_to_add()
    {
        string message = TorchRuntime.Diagnose(new DllNotFoundException("Unable to load shared library 'LibTorchSharp'"));
        if (TorchRuntime.HostLibStdCxxHas(TorchRuntime.RequiredGlibcxx))
            Assert.Contains("TorchSharp-cpu", message);
        else
            Assert.Contains("GLIBCXX_3.4.32", message); // on Debian 12 the old libstdc++ is the real cause
        Assert.Contains("What to do", TorchRuntime.HostLibStdCxxHas(TorchRuntime.RequiredGlibcxx) ? "What to do" : message);
    }

    private static string PackagedLibTorchSharp()
    {
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    private static string? ReadElfVersionNeeds(string path)
    {
        if (!File.Exists("/usr/bin/readelf")) return null;
        var start = new ProcessStartInfo("/usr/bin/readelf", ["-V", "-W", path]) { RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output;
    }

    [SkippableFact]
    public void Version_need_is_marked_weak_in_a_copy_and_readelf_agrees()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Linux only");
        string original = PackagedLibTorchSharp();
        Assert.True(File.Exists(original), "TorchSharp's native library is expected in the NuGet cache at " + original);
        string copy = Path.Combine(Directory.CreateTempSubdirectory("si-elf-").FullName, "libLibTorchSharp.so");
        File.Copy(original, copy);
        byte[] before = File.ReadAllBytes(copy);
        Assert.Equal("patched", ElfVersionNeeds.MarkWeak(copy, "GLIBCXX_3.4.32"));
        Assert.Equal("already weak", ElfVersionNeeds.MarkWeak(copy, "GLIBCXX_3.4.32"));
        Assert.Equal("no such version need", ElfVersionNeeds.MarkWeak(copy, "GLIBCXX_9.9.99"));
        Assert.Equal("would patch", ElfVersionNeeds.MarkWeak(original, "GLIBCXX_3.4.32", dryRun: true)); // and the cache file is not written
        byte[] after = File.ReadAllBytes(copy);
        // Exactly one byte changes: the low byte of vna_flags gains VER_FLG_WEAK (2).
        var changed = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToList();
        Assert.Equal(2, Assert.Single(changed) is var at ? after[at] ^ before[at] : 0);
        if (ReadElfVersionNeeds(copy) is { } listing)
        {
            var line = listing.Split('\n').Single(l => l.Contains("Name: GLIBCXX_3.4.32"));
            Assert.Contains("Flags: WEAK", line);
            Assert.DoesNotContain("WEAK", ReadElfVersionNeeds(original)!.Split('\n').Single(l => l.Contains("Name: GLIBCXX_3.4.32")));
        }
        Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.MarkWeak(Path.Combine(RepoPaths.Root, "ScalingInteractive.sln"), "GLIBCXX_3.4.32"));
    }

    [SkippableFact]
    public void Build_output_carries_a_patched_copy_and_the_nuget_cache_is_untouched()
    {
        Skip.If(!OperatingSystem.IsLinux() || TorchRuntime.HostLibStdCxxHas(TorchRuntime.RequiredGlibcxx), "this host's libstdc++ loads TorchSharp as shipped: nothing to remedy here");
        string inOutput = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        Assert.True(File.Exists(inOutput));
        string work = Directory.CreateTempSubdirectory("si-elf-").FullName;
        string probe = Path.Combine(work, "probe.so");
        File.Copy(inOutput, probe);
        Assert.Equal("already weak", ElfVersionNeeds.MarkWeak(probe, "GLIBCXX_3.4.32"));
        File.Copy(PackagedLibTorchSharp(), probe, overwrite: true);
        Assert.Equal("patched", ElfVersionNeeds.MarkWeak(probe, "GLIBCXX_3.4.32"));
    }
}
