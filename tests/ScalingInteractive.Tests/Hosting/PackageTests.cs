using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;

namespace ScalingInteractive.Tests.Hosting;

/// <summary>Packs the library with <c>dotnet pack</c> and inspects the .nupkg layout and its dependencies.</summary>
public class PackageTests
{
    [Fact]
    public void Pack_yields_the_library_the_extension_and_the_declared_dependencies()
    {
        string output = Directory.CreateTempSubdirectory("si-pack-").FullName;
        try
        {
            var start = new ProcessStartInfo("dotnet")
            {
                ArgumentList = { "pack", Path.Combine(RepoPaths.Library, "ScalingInteractive.csproj"), "-c", "Release", "-o", output, "-nologo", "--no-restore",
                    // A unique prerelease: the shared NuGet cache keeps the first copy of a version it extracts.
                    "-p:PackageVersion=0.1.0-packtest." + DateTime.UtcNow.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using (var process = Process.Start(start)!)
            {
                string log = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
                Assert.True(process.WaitForExit(300_000), "dotnet pack timed out");
                Assert.True(process.ExitCode == 0, "dotnet pack failed:\n" + log);
            }
            string package = Assert.Single(Directory.GetFiles(output, "ScalingInteractive.*.nupkg"));
            using var zip = ZipFile.OpenRead(package);
            var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
            Assert.Contains("lib/net10.0/ScalingInteractive.dll", entries);
            Assert.Contains("lib/net10.0/ScalingInteractive.xml", entries);
            Assert.Contains("interactive-extensions/dotnet/extension.dib", entries);
            using (var reader = new StreamReader(zip.GetEntry("interactive-extensions/dotnet/extension.dib")!.Open()))
                Assert.Equal(File.ReadAllText(RepoPaths.ExtensionDib), reader.ReadToEnd());
            Assert.DoesNotContain(entries, e => e.EndsWith(".so", StringComparison.Ordinal) || e.Contains("runtimes/"));
            // The build-time patch of libLibTorchSharp.so for projects referencing the package, with its task source.
            Assert.Contains("buildTransitive/ScalingInteractive.targets", entries);
            Assert.Contains("buildTransitive/MarkGlibcxxVersionNeedWeak.cs", entries);
            using (var reader = new StreamReader(zip.GetEntry("buildTransitive/ScalingInteractive.targets")!.Open()))
            {
                string targets = reader.ReadToEnd();
                Assert.Equal(File.ReadAllText(Path.Combine(RepoPaths.Root, "build", "ScalingInteractive.targets")), targets);
                Assert.Contains("$(MSBuildThisFileDirectory)MarkGlibcxxVersionNeedWeak.cs", targets);
                Assert.Contains("AfterTargets=\"CopyFilesToOutputDirectory\"", targets);
                Assert.Contains("AfterTargets=\"Publish\"", targets);
            }
            using (var reader = new StreamReader(zip.GetEntry("buildTransitive/MarkGlibcxxVersionNeedWeak.cs")!.Open()))
                Assert.Equal(File.ReadAllText(Path.Combine(RepoPaths.Root, "build", "MarkGlibcxxVersionNeedWeak.cs")), reader.ReadToEnd());
            Assert.DoesNotContain(entries, e => e.StartsWith("build/", StringComparison.Ordinal)); // buildTransitive covers direct references too

            var nuspec = XDocument.Load(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open());
            var dependencies = nuspec.Descendants().Where(e => e.Name.LocalName == "dependency")
                .ToDictionary(e => (string)e.Attribute("id")!, e => (string)e.Attribute("version")!);
            Assert.Equal("0.107.0", dependencies["TorchSharp"]);
            Assert.Equal("5.0.0", dependencies["MathNet.Numerics"]);
            // Plotly.NET and its FSharp.Core travel embedded in ScalingInteractive.dll (a private load context), never
            // as dependencies: the kernel's own FSharp.Core 10.0 would win over a package's 10.1.
            Assert.DoesNotContain(dependencies.Keys, id => id.StartsWith("Plotly", StringComparison.OrdinalIgnoreCase) || id is "FSharp.Core" or "ScalingInteractive.Plotting");
            Assert.DoesNotContain(entries, e => e.Contains("Plotly.NET", StringComparison.Ordinal) || e.Contains("FSharp.Core", StringComparison.Ordinal));
            using (var library = new MemoryStream())
            {
                zip.GetEntry("lib/net10.0/ScalingInteractive.dll")!.Open().CopyTo(library);
                // Manifest resource names sit in the metadata string heap as UTF-8.
                string image = System.Text.Encoding.Latin1.GetString(library.ToArray());
                foreach (var bundled in new[] { "ScalingInteractive.Plotting", "Plotly.NET", "Plotly.NET.CSharp", "FSharp.Core", "DynamicObj", "Fable.Core", "Giraffe.ViewEngine", "Newtonsoft.Json" })
                    Assert.Contains("ScalingInteractive.Plotting.Bundle/" + bundled + ".dll", image);
            }
            // The version the kernel tool 1.0.712001 ships (its copy is the one loaded in the kernel).
            Assert.Equal("1.0.0-beta.26120.1", dependencies["Microsoft.DotNet.Interactive.Formatting"]);
            Assert.DoesNotContain("TorchSharp-cpu", dependencies.Keys);
            Assert.DoesNotContain("Microsoft.DotNet.Interactive", dependencies.Keys);
            Assert.Equal("ScalingInteractive", nuspec.Descendants().First(e => e.Name.LocalName == "id").Value);
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }
}
