using System.Diagnostics;
using System.Text.Json;
using ScalingInteractive.Runner;

namespace ScalingInteractive.Tests.Kernel;

/// <summary>
/// The bundled notebooks in Jupyter with the .NET kernel, as a Jupyter user runs them: Debian's
/// <c>jupyter nbconvert --execute</c> (nbclient) starts the kernelspec that <c>dotnet interactive jupyter install</c>
/// registers, and the package comes from a NuGet source registered as README says (a user-level NuGet.Config in a
/// scratch HOME). .ci/run installs Debian's jupyter-nbconvert; outside CI the test is reported as skipped where it is absent.
/// </summary>
public class JupyterTests
{
    private const string Jupyter = "/usr/bin/jupyter";

    [SharedDataSkippableFact]
    public async Task Notebooks_00_and_01_execute_in_jupyter_nbconvert_with_no_error()
    {
        Needs.Tool("Jupyter", !File.Exists(Jupyter) || !File.Exists("/usr/bin/jupyter-nbconvert") ? "Debian's jupyter-nbconvert is not installed" : null,
            "apt-get install jupyter-nbconvert python3-jupyter-client python3-nbformat python3-ipykernel");
        string home = Directory.CreateTempSubdirectory("si-jupyter-home-").FullName;
        using var packages = IsolatedPackagesFolder.Create();
        string output = Path.Combine(home, "executed");
        try
        {
            // README's way: the packed folder registered as a NuGet source (here the feed built with these tests).
            Directory.CreateDirectory(Path.Combine(home, ".nuget", "NuGet"));
            File.WriteAllText(Path.Combine(home, ".nuget", "NuGet", "NuGet.Config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
                    <add key="scaling-interactive-local" value="{RealKernel.Feed}" />
                  </packageSources>
                </configuration>
                """);
            Directory.CreateDirectory(Path.Combine(home, ".local", "share", "jupyter", "kernels"));
            var environment = new Dictionary<string, string>
            {
                ["HOME"] = home,
                ["NUGET_PACKAGES"] = packages.PackagesPath, // packages already restored, linked; ScalingInteractive extracted here alone
                ["PATH"] = "/usr/bin:" + Environment.GetEnvironmentVariable("PATH"), // Debian's python3 before any other
                ["SCALING_INTERACTIVE_QUICK"] = "1",
                ["SCALING_INTERACTIVE_DATA"] = RepoPaths.SharedData,
                ["DOTNET_INTERACTIVE_CLI_TELEMETRY_OPTOUT"] = "1",
            };
            await RunAsync("dotnet", ["tool", "restore"], RepoPaths.Root, environment);
            await RunAsync("dotnet", ["dotnet-interactive", "jupyter", "install"], RepoPaths.Root, environment);
            Assert.True(File.Exists(Path.Combine(home, ".local", "share", "jupyter", "kernels", ".net-csharp", "kernel.json")));
            string[] notebooks = ["00-getting-started.ipynb", "01-fitting-scaling-laws.ipynb"];
            await RunAsync(Jupyter, ["nbconvert", "--to", "notebook", "--execute", .. notebooks, "--output-dir", output, "--ExecutePreprocessor.timeout=900"],
                RepoPaths.Notebooks, environment);
            foreach (string notebook in notebooks)
            {
                using var executed = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, notebook)));
                var outputs = executed.RootElement.GetProperty("cells").EnumerateArray()
                    .Where(c => c.TryGetProperty("outputs", out _)).SelectMany(c => c.GetProperty("outputs").EnumerateArray()).ToList();
                var errors = outputs.Where(o => o.GetProperty("output_type").GetString() == "error").Select(o => o.GetRawText()).ToList();
                Assert.True(errors.Count == 0, $"{notebook}: {string.Join("\n", errors)}");
                Assert.Contains(outputs, o => o.TryGetProperty("data", out var data) && data.TryGetProperty("text/plain", out _));
                Assert.Contains(outputs, o => o.TryGetProperty("data", out var data) && data.TryGetProperty("text/html", out var html) && html.ToString().Contains("si-chart-"));
            }
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    private static async Task RunAsync(string file, string[] arguments, string workingDirectory, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment) info.Environment[k] = v;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(20));
        string text = await stdout + await stderr;
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', arguments)} exited with {process.ExitCode}:\n{(text.Length > 6000 ? text[^6000..] : text)}");
    }
}
