using System.Reflection;
using System.Security.Cryptography;

namespace ScalingInteractive.Runner;

/// <summary>
/// The local package feed the runner hands to each kernel, and the tool manifest that pins the kernel. The feed is
/// filled at build time (the runner's build packs src/ScalingInteractive into artifacts/feed/CONFIGURATION), so a run
/// always loads the package built with it.
/// </summary>
public static class PackageFeed
{
    /// <summary>The feed this runner's build packed the library into (null when built outside the repository).</summary>
    public static string? BuiltFeed => Metadata("ScalingInteractiveFeed") is { } dir && Directory.Exists(dir) ? dir : null;

    /// <summary>The repository this runner was built from.</summary>
    public static string? RepositoryRoot => Metadata("RepositoryRoot");

    private static string? Metadata(string key) =>
        typeof(PackageFeed).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value;

    /// <summary>NuGet's global packages folder (NUGET_PACKAGES, else ~/.nuget/packages).</summary>
    public static string GlobalPackagesFolder =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } folder
            ? folder
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>
    /// NuGet keeps the first extracted copy of a package version and never replaces it when the same version is packed
    /// again. For every ScalingInteractive package in <paramref name="feed"/> whose extracted copy differs (by NuGet's own
    /// SHA-512 of the .nupkg), removes that copy so the kernel extracts the package just built. Returns the versions refreshed.
    /// </summary>
    public static IReadOnlyList<string> RefreshExtractedCopies(string feed, string? globalPackagesFolder = null)
    {
        var refreshed = new List<string>();
        string packages = globalPackagesFolder ?? GlobalPackagesFolder;
        foreach (string nupkg in Directory.GetFiles(feed, "ScalingInteractive.*.nupkg"))
        {
            string version = Path.GetFileNameWithoutExtension(nupkg)["ScalingInteractive.".Length..];
            if (version.Length == 0 || !char.IsDigit(version[0])) continue;
            string extracted = Path.Combine(packages, "scalinginteractive", version.ToLowerInvariant());
            if (!Directory.Exists(extracted)) continue;
            string hashFile = Path.Combine(extracted, $"scalinginteractive.{version.ToLowerInvariant()}.nupkg.sha512");
            string expected;
            using (var stream = File.OpenRead(nupkg)) expected = Convert.ToBase64String(SHA512.HashData(stream));
            if (File.Exists(hashFile) && File.ReadAllText(hashFile).Trim() == expected) continue;
            Directory.Delete(extracted, recursive: true);
            refreshed.Add(version);
        }
        return refreshed;
    }

    /// <summary>The folder above <paramref name="start"/> (or the repository) whose .config/dotnet-tools.json pins dotnet-interactive.</summary>
    public static string? FindToolManifestDirectory(string? start = null)
    {
        foreach (string? origin in new[] { start ?? Directory.GetCurrentDirectory(), RepositoryRoot, AppContext.BaseDirectory })
        {
            for (var dir = origin is null ? null : new DirectoryInfo(origin); dir is not null; dir = dir.Parent)
            {
                string manifest = Path.Combine(dir.FullName, ".config", "dotnet-tools.json");
                if (File.Exists(manifest) && File.ReadAllText(manifest).Contains("microsoft.dotnet-interactive", StringComparison.OrdinalIgnoreCase))
                    return dir.FullName;
            }
        }
        return null;
    }
}
