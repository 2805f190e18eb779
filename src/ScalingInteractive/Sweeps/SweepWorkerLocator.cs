using System.Diagnostics;
using System.Reflection;

namespace ScalingInteractive.Sweeps;

/// <summary>
/// Finds (or publishes once) the worker that array tasks start. In order: an explicit path; the environment variable
/// <c>SCALING_INTERACTIVE_WORKER</c>; <c>ScalingInteractive.Worker.dll</c> next to the running app or this library (apps
/// and tests that reference the worker project); else a worker published once from the ScalingInteractive package this
/// notebook already loaded (same version, restored from the local NuGet cache, TorchSharp-cpu for linux-x64) into
/// <c>&lt;cache&gt;/sweep-worker/&lt;version&gt;-&lt;build id&gt;</c>, where the cache is <c>SCALING_INTERACTIVE_CACHE</c>,
/// else <c>~/.cache/scaling-interactive</c>. On a cluster the cache (or the explicit path) must be on a file system
/// the compute nodes see; publishing happens on the login node, where the notebook runs.
/// </summary>
public static class SweepWorkerLocator
{
    /// <summary>The worker's assembly file name.</summary>
    public const string WorkerAssembly = "ScalingInteractive.Worker.dll";

    /// <summary>The shell command that starts the worker (e.g. <c>dotnet '/path/ScalingInteractive.Worker.dll'</c>).</summary>
    public static string Resolve(string? explicitPath = null)
    {
        string? path = explicitPath ?? Environment.GetEnvironmentVariable("SCALING_INTERACTIVE_WORKER");
        if (string.IsNullOrWhiteSpace(path))
        {
            path = new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(SweepWorkerLocator).Assembly.Location) ?? "" }
                .Where(d => d.Length > 0).Select(d => Path.Combine(d, WorkerAssembly)).FirstOrDefault(File.Exists)
                ?? Publish();
        }
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"The sweep worker '{path}' was not found. Give the path of {WorkerAssembly} (SlurmOptions.Worker, --worker) or unset SCALING_INTERACTIVE_WORKER to publish one.", path);
        return path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? "dotnet '" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'" : "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }

    /// <summary>
    /// Publishes the worker from the ScalingInteractive package of this library's version (once per build of the
    /// library) and returns the path of its dll. Takes about a minute and ~0.5 GB (TorchSharp's native libraries).
    /// </summary>
    public static string Publish(string? cacheRoot = null, TextWriter? log = null)
    {
        var assembly = typeof(SweepWorkerLocator).Assembly;
        string version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.1.0";
        string? configured = Environment.GetEnvironmentVariable("SCALING_INTERACTIVE_CACHE");
        string root = cacheRoot ?? (!string.IsNullOrEmpty(configured) ? configured : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "scaling-interactive"));
        string folder = Path.Combine(root, "sweep-worker", version + "-" + assembly.ManifestModule.ModuleVersionId.ToString("N")[..8]);
        string dll = Path.Combine(folder, "out", WorkerAssembly);
        if (File.Exists(dll)) return dll;
        string project = Directory.CreateDirectory(Path.Combine(folder, "src")).FullName;
        File.WriteAllText(Path.Combine(project, "ScalingInteractive.Worker.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <AssemblyName>ScalingInteractive.Worker</AssemblyName>
                <RuntimeIdentifier>linux-x64</RuntimeIdentifier>
                <SelfContained>false</SelfContained>
                <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ScalingInteractive" Version="{version}" />
                <PackageReference Include="TorchSharp-cpu" Version="0.107.0" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(project, "Program.cs"), "return ScalingInteractive.Sweeps.SweepWorker.Main(args);\n");
        // An empty Directory.Build.props stops MSBuild from picking up a repository's settings above the cache folder.
        File.WriteAllText(Path.Combine(project, "Directory.Build.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(project, "Directory.Build.targets"), "<Project />\n");
        File.WriteAllText(Path.Combine(project, "Directory.Packages.props"), "<Project />\n");
        var start = new ProcessStartInfo("dotnet", ["publish", project, "-c", "Release", "-o", Path.Combine(folder, "out.partial"), "-nologo"])
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        log?.WriteLine($"Publishing the sweep worker once into {folder} (about a minute) ...");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidDataException($"Publishing the sweep worker failed (dotnet publish exit {process.ExitCode}): {string.Join("\n", (stdout.Result + stderr).Split('\n').Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase)).Take(5))}. " +
                                           $"Build src/ScalingInteractive.Worker yourself and give its dll as SlurmOptions.Worker (--worker).");
        if (Directory.Exists(Path.Combine(folder, "out"))) Directory.Delete(Path.Combine(folder, "out"), recursive: true);
        Directory.Move(Path.Combine(folder, "out.partial"), Path.Combine(folder, "out"));
        return dll;
    }
}
