using ScalingInteractive.Checkpoints;
using System.Diagnostics;
using System.Text;
using ScalingInteractive.Hosting;
using ScalingInteractive.LoraSpectra;

namespace ScalingInteractive.Tests.Hosting;

/// <summary>
/// C# file-based apps (<c>dotnet run app.cs</c>) that reference the PACKED ScalingInteractive and TorchSharp-cpu, as a
/// user would. Slow (pack, restore, a 1 GB output copy per app): filter with <c>Category=FileBasedApp</c>.
/// </summary>
[Trait("Category", "FileBasedApp")]
public class FileBasedAppTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(10);

    [Fact]
    public void Apps_touching_TorchSharp_first_or_ScalingInteractive_first_both_work()
    {
        // A unique prerelease version: the NuGet cache keeps the first extracted copy of a version forever.
        string version = "0.1.0-torchfix." + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff");
        string work = Directory.CreateTempSubdirectory("si-fileapp-").FullName;
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var outputs = new List<string>();
        try
        {
            string feed = Directory.CreateDirectory(Path.Combine(work, "feed")).FullName;
            Run("dotnet", ["pack", Path.Combine(RepoPaths.Library, "ScalingInteractive.csproj"), "-c", "Release", "-o", feed, "-nologo", "--no-restore", "-p:PackageVersion=" + version], RepoPaths.Root);
            File.WriteAllText(Path.Combine(work, "NuGet.Config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="scalinginteractive-under-test" value="{feed}" />
                    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
                  </packageSources>
                </configuration>
                """);
            // No "#:property PublishAot=false": a file-based app's default (PublishAot=true) turns reflection-based JSON and
            // dynamic code off, and the library must work there (issue 16: it crashed in ProxySweepCommand.ToSweepSpec).
            string header = $"""
                #:package ScalingInteractive@{version}
                #:package TorchSharp-cpu@0.107.0

                """;
            // 1. The first statement touches TorchSharp directly: only a patched output copy can make that work on an old host.
            File.WriteAllText(Path.Combine(work, "torchfirst.cs"), header + """
                using ScalingInteractive.Checkpoints;
                using TorchSharp;
                TorchSharp.torch.set_num_threads(1);
                var t = TorchSharp.torch.ones(3);
                Console.WriteLine("ones-sum=" + t.sum().item<float>());
                string path = Path.Combine(args[0], "written.safetensors");
                SafetensorsWriter.Write(path, new Dictionary<string, torch.Tensor> { ["w"] = torch.arange(6, dtype: torch.ScalarType.Float32).reshape(2, 3) });
                using var file = SafetensorsFile.Open(path);
                var back = file.ToTensor("w");
                Console.WriteLine("read-sum=" + back.sum().item<float>() + " shape=" + string.Join("x", back.shape));
                Console.WriteLine("base=" + AppContext.BaseDirectory);
                """);
            // 2. The first call goes through ScalingInteractive (a file written here, without TorchSharp).
            float[] values = [1.5f, 2f, 3f, 4f];
            byte[] data = values.SelectMany(BitConverter.GetBytes).ToArray();
            SafetensorsWriter.Write(Path.Combine(work, "given.safetensors"), [new SafetensorEntry("w", SafetensorDType.F32, [2, 2], data)]);
            // ... then fits a law, trains a sweep from a spec it writes and reads the run store back: every JSON path.
            File.WriteAllText(Path.Combine(work, "safetensorsfirst.cs"), header + """
                using ScalingInteractive.Commands;
                using ScalingInteractive.Checkpoints;
                using ScalingInteractive.Fitting;
                using ScalingInteractive.LoraSpectra;
                using ScalingInteractive.Proxies;
                using ScalingInteractive.Sweeps;
                var w = SafetensorsFile.Open(Path.Combine(args[0], "given.safetensors")).ToTensor("w");
                Console.WriteLine("read-sum=" + w.sum().item<float>() + " shape=" + string.Join("x", w.shape));
                Console.WriteLine("base=" + AppContext.BaseDirectory);
                Console.WriteLine("reflection-json=" + System.Text.Json.JsonSerializer.IsReflectionEnabledByDefault);
                var fit = ScalingFit.Fit(ScalingLaws.Power, FitData.FromArrays([1e6, 1e7, 1e8, 1e9], [4.1, 3.5, 3.1, 2.8]));
                Console.WriteLine("fit-json=" + System.Text.Json.JsonDocument.Parse(fit.ToJson()).RootElement.ValueKind);
                var spec = ProxySweepCommand.ToSweepSpec("#!proxy-sweep --widths [16] --head-dim 8 --learning-rates [1e-3,1e-2] --steps 4 --batch-size 2 --seq-len 16");
                string specPath = spec.Save(Path.Combine(args[0], "spec.json"));
                string storeFolder = Path.Combine(args[0], "store");
                SweepWorker.RunShard(SweepSpec.Load(specPath), 0, 1, storeFolder);
                var result = ProxySweepResult.FromStore(SweepSpec.Load(specPath).OpenStore(storeFolder));
                Console.WriteLine("store-rows=" + result.Rows.Count + " finite=" + result.Rows.Count(r => double.IsFinite(r.FinalLoss)));
                Console.WriteLine("sweep-json=" + System.Text.Json.JsonDocument.Parse(result.ToJson()).RootElement.ValueKind);
                """);

            string first = Run("dotnet", ["run", "torchfirst.cs", "--", work], work);
            Assert.Contains("ones-sum=3", first);
            Assert.Contains("read-sum=15 shape=2x3", first);
            string second = Run("dotnet", ["run", "safetensorsfirst.cs", "--", work], work);
            Assert.Contains("read-sum=10.5 shape=2x2", second);
            Assert.Contains("reflection-json=False", second); // the app ran as file-based apps do by default
            Assert.Contains("fit-json=Object", second);
            Assert.Contains("store-rows=2 finite=2", second);
            Assert.Contains("sweep-json=Object", second);

            foreach (string log in new[] { first, second })
            {
                string output = log.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("base=", StringComparison.Ordinal))["base=".Length..];
                outputs.Add(output);
                if (!OperatingSystem.IsLinux()) continue;
                // The package's buildTransitive step patched the output copy on an old host (left alone on a new one).
                string library = Assert.Single(Directory.GetFiles(output, "libLibTorchSharp.so", SearchOption.AllDirectories));
                string expected = TorchRuntime.HostLibStdCxxHas(TorchRuntime.RequiredGlibcxx) ? "would patch" : "already weak";
                Assert.Equal(expected, ElfVersionNeeds.MarkWeak(library, TorchRuntime.RequiredGlibcxx, dryRun: true));
            }
            // Patched at build time, so the runtime remedy had nothing to do: no private copy was written.
            Assert.False(Directory.Exists(Path.Combine(work, "cache", "torchsharp-native")));
        }
        finally
        {
            // Each app's build output (bin/debug under the SDK's runfile folder) holds ~1 GB of native libraries.
            foreach (string output in outputs)
            {
                var appFolder = new DirectoryInfo(output.TrimEnd('/')).Parent?.Parent;
                if (appFolder is not null && appFolder.Parent?.Name == "runfile" && appFolder.Exists) appFolder.Delete(recursive: true);
            }
            string extracted = Path.Combine(packages, "scalinginteractive", version);
            if (Directory.Exists(extracted)) Directory.Delete(extracted, recursive: true);
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Runs a command to completion and returns stdout + stderr; fails the test on a non-zero exit.</summary>
    private static string Run(string file, string[] arguments, string workingDirectory)
    {
        var start = new ProcessStartInfo(file, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment =
            {
                ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1", ["OMP_NUM_THREADS"] = "1",
                // Any private copy would land here, not in the user's cache.
                ["SCALING_INTERACTIVE_CACHE"] = Path.Combine(workingDirectory, "cache"),
            },
        };
        using var process = new Process { StartInfo = start };
        var log = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(Patience)) { process.Kill(entireProcessTree: true); Assert.Fail($"{file} {string.Join(' ', arguments)} timed out:\n{log}"); }
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', arguments)} exited {process.ExitCode}:\n{log}");
        lock (log) return log.ToString();
    }
}
