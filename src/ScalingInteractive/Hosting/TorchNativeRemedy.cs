using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TorchSharp;

namespace ScalingInteractive.Hosting;

/// <summary>
/// Makes TorchSharp 0.107.0 loadable on Linux hosts whose libstdc++ lacks <see cref="TorchRuntime.RequiredGlibcxx"/>
/// (Debian 12) when the libLibTorchSharp.so that TorchSharp would load is unpatched (packages loaded from the NuGet
/// cache: notebooks, file-based apps). Installed when ScalingInteractive.dll is first touched, before any TorchSharp
/// use: a failed TorchSharp initialisation cannot be retried in the same process. See README "Platform notes".
/// </summary>
internal static class TorchNativeRemedy
{
    private static readonly object Gate = new();
    private static string? _original;
    private static string? _cacheRootOverride;
    private static IntPtr _handle;

    /// <summary>True when this host needs the remedy and the resolver is installed.</summary>
    public static bool Installed { get; private set; }

    /// <summary>The first failure while deciding, installing or preparing the remedy; explained by TorchRuntime.Diagnose.</summary>
    public static Exception? Failure { get; private set; }

    /// <summary>The patched private copy in use, once prepared.</summary>
    public static string? PatchedCopy { get; private set; }

    /// <summary>
    /// Runs when ScalingInteractive.dll is first touched. Cheap (reads two small files on Linux, nothing elsewhere),
    /// never throws, never initialises TorchSharp: it only decides and installs a DllImport resolver; the private copy
    /// is written and loaded when TorchSharp first asks for a native library.
    /// </summary>
    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "The remedy must be in place before any TorchSharp use, whatever the entry point.")]
    internal static void OnModuleLoad()
    {
        try
        {
            if (!OperatingSystem.IsLinux()) return;
            InstallIfNeeded();
        }
        catch (Exception e)
        {
            Failure ??= e; // e.g. TorchSharp.dll not resolvable in this host: nothing to fix, TorchRuntime explains
        }
    }

    // Kept out of OnModuleLoad so that a missing TorchSharp.dll surfaces as a catchable exception, not a module
    // initializer failure (the JIT resolves typeof(torch) when compiling the method that mentions it).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void InstallIfNeeded()
    {
        if (ElfVersionNeeds.HostLibStdCxxHas(TorchRuntime.RequiredGlibcxx)) return;
        Assembly torchSharp = typeof(torch).Assembly; // loads TorchSharp.dll; runs no TorchSharp static constructor
        string? original = FindLibTorchSharp(torchSharp);
        // Build outputs patched at build time (this repository, projects referencing the package) need nothing.
        if (original is null || ElfVersionNeeds.MarkWeak(original, TorchRuntime.RequiredGlibcxx, dryRun: true) != "would patch") return;
        lock (Gate)
        {
            _original = original;
            NativeLibrary.SetDllImportResolver(torchSharp, Resolve);
            Installed = true;
            // Load the copy now, not on TorchSharp's first DllImport: TorchSharp's static constructor first loads
            // "LibTorchSharp" with NativeLibrary.TryLoad(name, assembly), which does not consult the resolver (measured in
            // the kernel: a cell calling torch.set_num_threads first failed with the resolver alone). dlopen then finds
            // the already-loaded library by its soname.
            LoadPatchedCopy();
        }
    }

    /// <summary>
    /// Prepares and loads the patched copy now (instead of at TorchSharp's first native request) and returns its path;
    /// throws with the reason when that fails. <paramref name="cacheRoot"/> replaces the cache folder for this call.
    /// </summary>
    public static string Activate(string? cacheRoot = null)
    {
        lock (Gate)
        {
            if (cacheRoot is not null && PatchedCopy is null) _cacheRootOverride = cacheRoot;
            if (!Installed)
            {
                if (Failure is not null) throw new TorchUnavailableException("The libstdc++ remedy could not be installed: " + Failure.Message, Failure);
                Assembly torchSharp = typeof(torch).Assembly;
                _original ??= FindLibTorchSharp(torchSharp)
                    ?? throw new TorchUnavailableException("libLibTorchSharp.so was not found next to TorchSharp.dll or in its NuGet package folder.");
                NativeLibrary.SetDllImportResolver(torchSharp, Resolve);
                Installed = true;
            }
            LoadPatchedCopy();
            return PatchedCopy!;
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (!name.Contains("LibTorchSharp", StringComparison.Ordinal)) return IntPtr.Zero; // default probing
        try
        {
            lock (Gate) return LoadPatchedCopy();
        }
        catch (Exception e)
        {
            // A resolver must not throw: TorchSharp then reports its own error, which TorchRuntime.Diagnose explains.
            Failure ??= e;
            return IntPtr.Zero;
        }
    }

    private static IntPtr LoadPatchedCopy()
    {
        if (_handle != IntPtr.Zero) return _handle;
        string original = _original!;
        string copy = PreparePatchedCopy(original, _cacheRootOverride ?? CacheRoot());
        // The copy lives away from libtorch.so and friends: load them by full path first so that its DT_NEEDED
        // entries resolve to the already-loaded libraries.
        string nativeDir = Path.GetDirectoryName(original)!;
        foreach (string dependency in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
            foreach (string candidate in LibTorchCandidates(nativeDir, dependency))
                if (File.Exists(candidate)) { NativeLibrary.TryLoad(candidate, out _); break; }
        _handle = NativeLibrary.Load(copy);
        PatchedCopy = copy;
        // Silent on success: it runs in every notebook's first cell (TorchRuntime.Diagnose names the copy on failure).
        return _handle;
    }

    /// <summary>
    /// Returns the path of the patched copy of <paramref name="original"/> under
    /// <c>&lt;cacheRoot&gt;/torchsharp-native/&lt;sha256 prefix of the original&gt;/libLibTorchSharp.so</c>. An existing
    /// copy with the right content is used as is, never rewritten: another process may have it mapped, and rewriting
    /// a mapped library in place kills that process (SIGBUS/SIGSEGV). Otherwise the copy is written to a unique
    /// temporary file in the same folder, flushed to disk and renamed over the final name (atomic; processes that
    /// mapped an older file keep its inode).
    /// </summary>
    internal static string PreparePatchedCopy(string original, string cacheRoot)
    {
        byte[] image = File.ReadAllBytes(original);
        string key = Convert.ToHexStringLower(SHA256.HashData(image))[..16];
        string outcome = ElfVersionNeeds.MarkWeak(image, TorchRuntime.RequiredGlibcxx);
        if (outcome == "no such version need") throw new InvalidDataException($"{original} declares no {TorchRuntime.RequiredGlibcxx} need: nothing to patch.");
        string folder = Path.Combine(cacheRoot, "torchsharp-native", key);
        string final = Path.Combine(folder, "libLibTorchSharp.so");
        if (HasContent(final, image)) return final;
        Directory.CreateDirectory(folder);
        string temp = Path.Combine(folder, $".libLibTorchSharp.so.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(image);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, final, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        return final;
    }

    /// <summary>The cache root: <c>SCALING_INTERACTIVE_CACHE</c>, else <c>$XDG_CACHE_HOME/scaling-interactive</c>, else <c>~/.cache/scaling-interactive</c>.</summary>
    internal static string CacheRoot()
    {
        string? own = Environment.GetEnvironmentVariable("SCALING_INTERACTIVE_CACHE");
        if (!string.IsNullOrWhiteSpace(own)) return own;
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "scaling-interactive");
    }

    private static bool HasContent(string path, byte[] expected)
    {
        try
        {
            var info = new FileInfo(path);
            return info.Exists && info.Length == expected.Length && File.ReadAllBytes(path).AsSpan().SequenceEqual(expected);
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static IEnumerable<string> LibTorchCandidates(string torchSharpNativeDir, string file)
    {
        yield return Path.Combine(torchSharpNativeDir, file);
        // NuGet layout: .../torchsharp/0.107.0/runtimes/linux-x64/native -> .../libtorch-cpu-linux-x64/<v>/runtimes/linux-x64/native
        var packages = Directory.GetParent(torchSharpNativeDir)?.Parent?.Parent?.Parent?.Parent;
        if (packages is null || !packages.Exists) yield break;
        foreach (var package in packages.EnumerateDirectories("libtorch-*linux-x64*"))
            foreach (var version in package.EnumerateDirectories())
                yield return Path.Combine(version.FullName, "runtimes", "linux-x64", "native", file);
    }

    /// <summary>The libLibTorchSharp.so that TorchSharp would load: next to TorchSharp.dll (build outputs) or in its package.</summary>
    internal static string? FindLibTorchSharp(Assembly torchSharp)
    {
        string? assemblyDir = Path.GetDirectoryName(torchSharp.Location);
        if (string.IsNullOrEmpty(assemblyDir)) return null;
        string[] candidates =
        [
            Path.Combine(assemblyDir, "libLibTorchSharp.so"),
            Path.Combine(assemblyDir, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
            Path.GetFullPath(Path.Combine(assemblyDir, "..", "..", "runtimes", "linux-x64", "native", "libLibTorchSharp.so")),
        ];
        return candidates.FirstOrDefault(File.Exists);
    }
}
