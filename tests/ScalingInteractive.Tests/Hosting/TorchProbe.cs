using ScalingInteractive.Hosting;
using TorchSharp;

namespace ScalingInteractive.Tests.Hosting;

/// <summary>
/// Entry point of this assembly when a test starts it as a child process (<c>dotnet ScalingInteractive.Tests.dll
/// torch-probe once|hold</c>); the test host never calls it. TestSetup's module initializer has already loaded
/// TorchSharp through ScalingInteractive (the private patched copy when the probe folder holds an unpatched library).
/// </summary>
internal static class TorchProbe
{
    public static int Main(string[] args)
    {
        if (args.Length == 2 && args[0] == "json-probe") return ReflectionFreeProbe.Run(args[1]);
        if (args.Length < 2 || args[0] != "torch-probe") return 2;
        Console.WriteLine("patched-copy=" + (TorchNativeRemedy.PatchedCopy ?? "none"));
        Console.WriteLine("work=" + Work());
        if (args[1] == "once") return 0;
        // hold: say ready, then on "go" keep doing tensor work until "stop" (the library must stay usable meanwhile).
        Console.WriteLine("ready");
        if (Console.ReadLine() != "go") return 3;
        var stop = Task.Run(() => Console.ReadLine());
        int iterations = 0;
        while (!stop.IsCompleted)
        {
            if (Work() != 262144f) return 4;
            iterations++;
            Thread.Sleep(20);
        }
        Console.WriteLine("iterations=" + iterations);
        Console.WriteLine("work=" + Work());
        return 0;
    }

    /// <summary>A little real LibTorch work: ones(64,64) @ ones(64,64), summed (= 64^3).</summary>
    private static float Work()
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.ones(64, 64);
        return a.matmul(a).sum().item<float>();
    }
}
