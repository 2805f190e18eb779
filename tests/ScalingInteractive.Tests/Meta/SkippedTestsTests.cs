using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace ScalingInteractive.Tests.Meta;

/// <summary>
/// A test that cannot run here must say so: issue 16 found a fresh clone reporting "357 passed, 0 skipped" with the
/// Slurm, Jupyter and Chromium tests never run. These run this very test assembly's Slurm test in a child test run
/// against a cluster that does not answer and read the runner's own summary.
/// </summary>
public class SkippedTestsTests
{
    private const string SlurmTest = "FullyQualifiedName~SlurmSweepTests.Twelve_runs_as_a_three_task_array";

    [Fact]
    public void Outside_CI_a_test_whose_tool_is_missing_is_reported_as_skipped_with_the_reason()
    {
        var (code, log) = RunChildTests(SlurmTest, ci: false);
        Assert.True(code == 0, log);
        Assert.Matches(new Regex(@"Skipped:\s+1\b"), log);
        Assert.DoesNotMatch(new Regex(@"(Passed|Failed):\s+[1-9]"), log);
        Assert.Contains("Slurm is not available here", log);
    }

    [Fact]
    public void In_CI_the_same_test_fails_because_CI_must_provide_the_tool()
    {
        var (code, log) = RunChildTests(SlurmTest, ci: true);
        Assert.NotEqual(0, code);
        Assert.Matches(new Regex(@"Failed:\s+1\b"), log);
        Assert.DoesNotMatch(new Regex(@"(Passed|Skipped):\s+[1-9]"), log);
        Assert.Contains("Slurm is required in CI", log);
    }

    // `dotnet test` on this assembly with one filter; Slurm made unreachable (no sbatch on PATH).
    private static (int Code, string Log) RunChildTests(string filter, bool ci)
    {
        string assembly = typeof(SkippedTestsTests).Assembly.Location;
        var start = new ProcessStartInfo("dotnet", ["test", assembly, "--filter", filter, "--logger", "console;verbosity=normal"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(assembly)!,
        };
        string dotnetFolder = Path.GetDirectoryName(Environment.ProcessPath ?? "/usr/bin/dotnet")!;
        start.Environment["PATH"] = dotnetFolder; // dotnet, and nothing of Slurm's
        start.Environment["SLURM_CONF"] = "/nonexistent/slurm.conf";
        start.Environment["CI"] = ci ? "true" : "";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)!;
        var log = new StringBuilder();
        var stderr = process.StandardError.ReadToEndAsync();
        log.Append(process.StandardOutput.ReadToEnd());
        if (!process.WaitForExit(300_000)) { process.Kill(true); Assert.Fail("the child test run did not finish in 5 minutes:\n" + log); }
        log.Append(stderr.Result);
        return (process.ExitCode, log.ToString());
    }
}
