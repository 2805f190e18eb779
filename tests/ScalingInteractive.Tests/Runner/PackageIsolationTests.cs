using System.IO.Compression;
using ScalingInteractive.Runner;
using ScalingInteractive.Tests.Kernel;

namespace ScalingInteractive.Tests.Runner;

/// <summary>
/// Two runners with different builds of the same package version, at once (issue 16: two worktrees running notebooks
/// deleted and re-extracted the shared <c>scalinginteractive/0.1.0</c> under each other, and a kernel failed with CS0103
/// or loaded the other build). Build B is build A's package with one marker file added; each kernel must load its own.
/// </summary>
public class PackageIsolationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("si-isolation-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Probe = """
        var root = System.IO.Path.GetFullPath(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(typeof(ScalingInteractive.Hosting.NotebookSession).Assembly.Location)!, "..", ".."));
        var marker = System.IO.Path.Combine(root, "content", "si-build-marker.txt");
        Console.WriteLine("package=" + root);
        Console.WriteLine("marker=" + (System.IO.File.Exists(marker) ? System.IO.File.ReadAllText(marker).Trim() : "none"));
        """;

    [Fact]
    public async Task Concurrent_runners_with_different_builds_each_load_their_own_and_leave_the_shared_cache_alone()
    {
        string feedA = RealKernel.Feed;
        string feedB = Directory.CreateDirectory(Path.Combine(_dir, "feed-b")).FullName;
        string nupkg = Assert.Single(Directory.GetFiles(feedA, "ScalingInteractive.0.1.0.nupkg"));
        string copy = Path.Combine(feedB, Path.GetFileName(nupkg));
        File.Copy(nupkg, copy);
        using (var zip = ZipFile.Open(copy, ZipArchiveMode.Update))
        using (var writer = new StreamWriter(zip.CreateEntry("content/si-build-marker.txt").Open()))
            writer.Write("B");

        string shared = Path.Combine(PackageFeed.GlobalPackagesFolder, "scalinginteractive", "0.1.0");
        string? sharedHashBefore = HashOf(shared);
        string notebook = Path.Combine(_dir, "probe.dib");
        File.WriteAllText(notebook, $"#!csharp\n\n{RealKernel.LoadPackages}\n\n#!csharp\n\n{Probe}\n");

        var runA = new NotebookRunner(RealKernel.Settings() with { PackageFeed = feedA }, new RealKernel.TestLog()).RunAsync(notebook, CancellationToken.None);
        var runB = new NotebookRunner(RealKernel.Settings() with { PackageFeed = feedB }, new RealKernel.TestLog()).RunAsync(notebook, CancellationToken.None);
        var results = await Task.WhenAll(runA, runB);

        foreach (var run in results) Assert.True(run.Succeeded, RealKernel.Describe(run));
        string OutputOf(NotebookRun run) => string.Join("\n", run.Cells.SelectMany(c => c.Outputs).SelectMany(o => o.Values.Values));
        string a = OutputOf(results[0]), b = OutputOf(results[1]);
        Assert.Contains("marker=none", a);
        Assert.Contains("marker=B", b);
        // Each loaded its package from a folder of its own, not from the shared cache.
        foreach (string output in new[] { a, b })
            Assert.DoesNotContain("package=" + Path.GetFullPath(shared), output);
        Assert.Equal(sharedHashBefore, HashOf(shared));
        // The private folders are gone; the shared packages behind their links are not.
        Assert.True(Directory.Exists(Path.Combine(PackageFeed.GlobalPackagesFolder, "torchsharp")));
    }

    [Fact]
    public void The_isolated_folder_links_every_package_but_ours_and_keeps_new_downloads()
    {
        string shared = Directory.CreateDirectory(Path.Combine(_dir, "shared")).FullName;
        Directory.CreateDirectory(Path.Combine(shared, "torchsharp", "0.107.0"));
        File.WriteAllText(Path.Combine(shared, "torchsharp", "0.107.0", "torchsharp.nuspec"), "x");
        Directory.CreateDirectory(Path.Combine(shared, "scalinginteractive", "0.1.0"));
        string path;
        using (var folder = IsolatedPackagesFolder.Create(sharedFolder: shared, parent: _dir))
        {
            path = folder.PackagesPath;
            Assert.Null(folder.FeedPath);
            Assert.True(File.Exists(Path.Combine(path, "torchsharp", "0.107.0", "torchsharp.nuspec")));
            Assert.False(Directory.Exists(Path.Combine(path, "scalinginteractive")));
            Directory.CreateDirectory(Path.Combine(path, "scalinginteractive", "0.1.0")); // what the kernel extracts from its feed
            Directory.CreateDirectory(Path.Combine(path, "mathnet.numerics", "5.0.0"));   // a download the shared folder lacked
        }
        Assert.False(Directory.Exists(path));
        Assert.True(File.Exists(Path.Combine(shared, "torchsharp", "0.107.0", "torchsharp.nuspec")), "deleting the link must not delete the package");
        Assert.True(Directory.Exists(Path.Combine(shared, "mathnet.numerics", "5.0.0")), "a new download is kept in the shared folder");
        Assert.Empty(Directory.GetDirectories(Path.Combine(shared, "scalinginteractive", "0.1.0")));
    }

    private static string? HashOf(string extracted) =>
        Directory.Exists(extracted) ? Directory.GetFiles(extracted, "*.sha512").Select(File.ReadAllText).FirstOrDefault() ?? "no hash file" : null;
}
