using System.Reflection;

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

/// <summary>
/// A NuGet packages folder and feed private to one kernel (or one Jupyter run). Every package id of the shared packages
/// folder (NUGET_PACKAGES, else ~/.nuget/packages) is linked in, except ScalingInteractive, which the kernel extracts
/// afresh from a private copy of the feed. NuGet keeps the first extracted copy of a version forever, and the kernel's
/// <c>#r "nuget:"</c> resolver caches resolved paths per package list and source (~/.packagemanagement/nuget/Cache), so a
/// shared folder handed one build's package to another: two runners deleted and re-extracted the shared
/// <c>scalinginteractive/0.1.0</c> under each other, and a kernel failed with CS0103 or loaded the other build. Here each
/// kernel loads exactly the package in its feed (a source path of its own gives the resolver a key of its own), and the
/// shared copy is never touched. Packages the kernel downloads that the shared folder lacks are moved there on
/// <see cref="Dispose"/>, so nothing is fetched twice; the resolver's cache entries for this folder are removed.
/// </summary>
public sealed class IsolatedPackagesFolder : IDisposable
{
    /// <summary>Package ids (lower case, as NuGet names their folders) that are never linked from the shared folder.</summary>
    public static readonly IReadOnlyList<string> PrivateIds = ["scalinginteractive"];

    private readonly string _shared;

    private IsolatedPackagesFolder(string root, string shared, string? feed)
    {
        Root = root;
        _shared = shared;
        PackagesPath = System.IO.Path.Combine(root, "packages");
        FeedPath = feed;
    }

    /// <summary>The folder holding everything of this kernel's (deleted on <see cref="Dispose"/>).</summary>
    public string Root { get; }

    /// <summary>The folder to hand the kernel as NUGET_PACKAGES.</summary>
    public string PackagesPath { get; }

    /// <summary>The private copy of the feed to inject (<c>#i "nuget: FEED"</c>), or null when none was given.</summary>
    public string? FeedPath { get; }

    /// <summary>
    /// Creates the folder under <paramref name="parent"/> (default: the temp folder): packages linked from
    /// <paramref name="sharedFolder"/> (default: <see cref="PackageFeed.GlobalPackagesFolder"/>) but <see cref="PrivateIds"/>,
    /// and a copy of the ScalingInteractive packages of <paramref name="feed"/> when given.
    /// </summary>
    public static IsolatedPackagesFolder Create(string? feed = null, string? sharedFolder = null, string? parent = null)
    {
        string shared = System.IO.Path.GetFullPath(sharedFolder ?? PackageFeed.GlobalPackagesFolder);
        Directory.CreateDirectory(shared);
        string root = parent is null
            ? Directory.CreateTempSubdirectory("si-kernel-").FullName
            : Directory.CreateDirectory(System.IO.Path.Combine(parent, "si-kernel-" + Guid.NewGuid().ToString("N")[..12])).FullName;
        string? feedCopy = null;
        if (feed is not null)
        {
            feedCopy = Directory.CreateDirectory(System.IO.Path.Combine(root, "feed")).FullName;
            foreach (string nupkg in Directory.GetFiles(feed, "*.nupkg"))
                File.Copy(nupkg, System.IO.Path.Combine(feedCopy, System.IO.Path.GetFileName(nupkg)));
        }
        var folder = new IsolatedPackagesFolder(root, shared, feedCopy);
        Directory.CreateDirectory(folder.PackagesPath);
        foreach (string id in Directory.EnumerateDirectories(shared))
        {
            string name = System.IO.Path.GetFileName(id);
            if (PrivateIds.Contains(name, StringComparer.OrdinalIgnoreCase)) continue;
            Directory.CreateSymbolicLink(System.IO.Path.Combine(folder.PackagesPath, name), id);
        }
        return folder;
    }

    /// <summary>
    /// Moves packages new to the shared folder there (not the private ids), removes the resolver's cache entries that
    /// point here, then deletes this folder (links only, never their targets).
    /// </summary>
    public void Dispose()
    {
        if (!Directory.Exists(Root)) return;
        foreach (var id in new DirectoryInfo(PackagesPath).EnumerateDirectories())
        {
            if (id.LinkTarget is not null || PrivateIds.Contains(id.Name, StringComparer.OrdinalIgnoreCase)) continue;
            string target = System.IO.Path.Combine(_shared, id.Name);
            try
            {
                if (!Directory.Exists(target)) id.MoveTo(target);
            }
            catch (IOException) { } // another process put it there first, or another file system: it stays a private copy
        }
        RemoveResolverCacheEntries();
        foreach (var entry in new DirectoryInfo(PackagesPath).EnumerateFileSystemInfos())
        {
            if (entry.LinkTarget is not null) entry.Delete(); // the link, not the shared package behind it
            else if (entry is DirectoryInfo folder) folder.Delete(recursive: true);
            else entry.Delete();
        }
        Directory.Delete(Root, recursive: true);
    }

    // The #r "nuget:" resolver's cache: HASH.resolvedReferences.paths (and HASH.csx) per resolution; ours are dead now.
    private void RemoveResolverCacheEntries()
    {
        string cache = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".packagemanagement", "nuget", "Cache");
        if (!Directory.Exists(cache)) return;
        foreach (string paths in Directory.GetFiles(cache, "*.resolvedReferences.paths"))
        {
            try
            {
                if (!File.ReadAllText(paths).Contains(Root, StringComparison.Ordinal)) continue;
                string hash = System.IO.Path.GetFileName(paths)[..^".resolvedReferences.paths".Length];
                foreach (string file in Directory.GetFiles(cache, hash + ".*")) File.Delete(file);
            }
            catch (IOException) { }
        }
    }
}
