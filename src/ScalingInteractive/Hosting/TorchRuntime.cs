using System.Text;
using TorchSharp;

namespace ScalingInteractive.Hosting;

/// <summary>Raised when TorchSharp's native library cannot be used; the message says why and what to do.</summary>
public sealed class TorchUnavailableException(string message, Exception? inner = null) : UserErrorException(message, inner);

/// <summary>
/// Loads TorchSharp's native backend with diagnostics and chooses the one <see cref="torch.Device"/> that all
/// tensors of an experiment are created on (CPU here, CUDA when the user's TorchSharp build has it).
/// </summary>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static bool _loaded;

    /// <summary>The libstdc++ symbol version that libLibTorchSharp.so of TorchSharp 0.107.0 requires.</summary>
    public const string RequiredGlibcxx = "GLIBCXX_3.4.32";

    /// <summary>
    /// Makes sure the native backend is loaded; throws <see cref="TorchUnavailableException"/> with a remedy otherwise.
    /// On old Linux hosts the patched private copy of libLibTorchSharp.so is already routed in when ScalingInteractive.dll
    /// loads (a module initializer); this call prepares it eagerly so that a failure is reported with its cause.
    /// </summary>
    public static void EnsureAvailable()
    {
        lock (Gate)
        {
            if (_loaded) return;
            if (TorchNativeRemedy.Installed)
            {
                try
                {
                    TorchNativeRemedy.Activate();
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    throw new TorchUnavailableException(Diagnose(e), e);
                }
            }
            try
            {
                torch.InitializeDeviceType(DeviceType.CPU);
                _loaded = true;
            }
            catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException or InvalidOperationException or EntryPointNotFoundException)
            {
                throw new TorchUnavailableException(Diagnose(e), e);
            }
        }
    }

    /// <summary>
    /// Resolves a device name: <c>auto</c> (CUDA when available, else CPU), <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.
    /// Asking for CUDA where none is present fails with a message instead of a native crash.
    /// </summary>
    public static torch.Device ResolveDevice(string? name = "auto")
    {
        EnsureAvailable();
        string spec = (name ?? "auto").Trim().ToLowerInvariant();
        if (spec is "" or "auto") return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        if (spec == "cpu") return torch.CPU;
        if (spec == "cuda" || spec.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new TorchUnavailableException(
                    $"Device '{name}' was requested but CUDA is not available: this TorchSharp build or machine has no usable GPU. " +
                    "Use --device cpu (or auto), or reference a CUDA build of TorchSharp (TorchSharp-cuda-linux / TorchSharp-cuda-windows) on a machine with an NVIDIA GPU.");
            if (spec == "cuda") return torch.CUDA;
            if (!int.TryParse(spec[5..], out int index) || index < 0 || index >= torch.cuda.device_count())
                throw new TorchUnavailableException($"Device '{name}' does not exist: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}.");
            return new torch.Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"Device '{name}' is not recognised; use auto, cpu, cuda or cuda:N.", nameof(name));
    }

    /// <summary>Explains a native loading failure: which package is missing, or why an old Linux host refuses the library.</summary>
    public static string Diagnose(Exception failure)
    {
        var sb = new StringBuilder("TorchSharp's native library could not be loaded. ");
        string all = Flatten(failure);
        bool libTorchMissing = all.Contains("is not restored", StringComparison.OrdinalIgnoreCase) ||
                               all.Contains("libtorch", StringComparison.OrdinalIgnoreCase) && all.Contains("not found", StringComparison.OrdinalIgnoreCase);
        if (OperatingSystem.IsLinux() && !HostLibStdCxxHas(RequiredGlibcxx))
        {
            if (TorchNativeRemedy.Failure is { } remedyFailure)
                sb.Append($"ScalingInteractive's patched private copy of libLibTorchSharp.so could not be used ({remedyFailure.GetType().Name}: {remedyFailure.Message}); ")
                  .Append($"check that {TorchNativeRemedy.CacheRoot()} (or SCALING_INTERACTIVE_CACHE) is writable. ");
            sb.Append($"This host's libstdc++ (GCC 12 or older, e.g. Debian 12) lacks the symbol version {RequiredGlibcxx} that TorchSharp 0.107.0's ")
              .Append("libLibTorchSharp.so declares, so the dynamic loader refuses it (TorchSharp then reports, misleadingly, that the libtorch package is not restored). ")
              .Append("What to do: (1) run the notebook with the ScalingInteractive headless runner or from a project built in this repository: ")
              .Append("their build outputs carry a copy of the library with that version need marked weak (the only symbol bound to it is never called); ")
              .Append("(2) or use a host with libstdc++ from GCC 13 or newer (Debian 13, Ubuntu 24.04); ")
              .Append("(3) or, in a notebook on this host, restart the kernel and load ScalingInteractive (#r \"nuget: ScalingInteractive\") before any cell touches TorchSharp: ")
              .Append("when it loads it routes TorchSharp to a patched private copy in your cache folder (never the NuGet cache). ")
              .Append("A failed TorchSharp initialisation cannot be retried in the same process. Projects and file-based apps that reference the ScalingInteractive package get a patched copy in their build output.");
        }
        else if (libTorchMissing || failure is DllNotFoundException)
        {
            sb.Append("No native LibTorch is present. Add the package with the native backend: ")
              .Append("#r \"nuget: TorchSharp-cpu, 0.107.0\" (CPU), or on a machine with an NVIDIA GPU the CUDA build ")
              .Append("(TorchSharp-cuda-linux or TorchSharp-cuda-windows, same version). The ScalingInteractive package references the managed TorchSharp package only.");
        }
        else
        {
            sb.Append("Underlying error: ").Append(all);
        }
        return sb.ToString();
    }

    /// <summary>
    /// Workaround for hosts whose libstdc++ lacks <see cref="RequiredGlibcxx"/>: routes TorchSharp's native loading to a
    /// patched private copy of the libLibTorchSharp.so found next to TorchSharp.dll or in its NuGet package. The copy
    /// is content-addressed (<c>&lt;cache&gt;/torchsharp-native/&lt;sha256 prefix&gt;/libLibTorchSharp.so</c>), reused
    /// as is when present, and otherwise written atomically. ScalingInteractive applies this by itself when it loads;
    /// call it only to force it. <paramref name="cacheDirectory"/> replaces the cache root (default:
    /// <c>SCALING_INTERACTIVE_CACHE</c>, else <c>$XDG_CACHE_HOME/scaling-interactive</c>, else
    /// <c>~/.cache/scaling-interactive</c>); it is used only if no copy is loaded yet. Returns the path of the copy.
    /// </summary>
    public static string UsePatchedNativeCopy(string? cacheDirectory = null)
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("The libstdc++ workaround applies to Linux only.");
        return TorchNativeRemedy.Activate(cacheDirectory);
    }

    /// <summary>True when the system libstdc++ defines the given symbol version (false when it cannot be found).</summary>
    public static bool HostLibStdCxxHas(string version) => ElfVersionNeeds.HostLibStdCxxHas(version);

    private static string Flatten(Exception e)
    {
        var parts = new List<string>();
        for (Exception? x = e; x is not null; x = x.InnerException) parts.Add(x.Message);
        return string.Join(" | ", parts);
    }
}
