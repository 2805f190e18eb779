using System.Diagnostics;
using System.Text.Json.Nodes;

namespace ScalingInteractive.Tests.Hosting;

/// <summary>
/// Issue 16: a C# file-based app (PublishAot=true by default) crashed at <c>ProxySweepCommand.ToSweepSpec</c> with
/// "Reflection-based serialization has been disabled". This test runs every JSON path of the library in a child process
/// with the switches such an app gets (no reflection-based serialisation, no dynamic code); FileBasedAppTests runs a
/// real file-based app as well.
/// </summary>
public class ReflectionFreeTests
{
    [Fact]
    public async Task Every_json_path_works_with_reflection_based_serialisation_off()
    {
        string work = Directory.CreateTempSubdirectory("si-json-probe-").FullName;
        try
        {
            string assembly = typeof(ReflectionFreeTests).Assembly.Location;
            string config = Path.ChangeExtension(assembly, ".runtimeconfig.json");
            var root = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
            var options = root["runtimeOptions"]!.AsObject();
            var properties = options["configProperties"] as JsonObject ?? new JsonObject();
            options["configProperties"] = properties;
            // What PublishAot=true puts into a file-based app's runtimeconfig.json.
            properties["System.Text.Json.JsonSerializer.IsReflectionEnabledByDefault"] = false;
            properties["System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported"] = false;
            string probeConfig = Path.Combine(work, "probe.runtimeconfig.json");
            File.WriteAllText(probeConfig, root.ToJsonString());

            var start = new ProcessStartInfo("dotnet", ["exec", "--runtimeconfig", probeConfig, assembly, "json-probe", work])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetDirectoryName(assembly)!,
                Environment = { ["OMP_NUM_THREADS"] = "1" },
            };
            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(600_000)) { process.Kill(true); Assert.Fail("the probe did not finish in 10 minutes:\n" + output); }
            string log = output + await stderr;
            Assert.Contains("reflection=False dynamic-code=False", log);
            Assert.True(process.ExitCode == 0, log);
            foreach (string step in new[] { "fit results", "scaling-fit command", "help and progress", "proxy-train command", "sweep spec, worker and store", "lora experiment and resume" })
                Assert.Contains("ok " + step, log);
            if (Directory.Exists(RepoPaths.SharedData)) Assert.Contains("ok intrinsic-dim command and resume", log);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
