using System.Runtime.CompilerServices;

namespace ScalingInteractive.Tests;

internal static class TestSetup
{
    /// <summary>
    /// xunit runs test classes in parallel on a 2-core machine: one LibTorch thread per test keeps torch tests from
    /// oversubscribing the cores (measured: 2 threads collapse when another process is busy).
    /// </summary>
    [ModuleInitializer]
    internal static void OneTorchThread()
    {
        ScalingInteractive.Hosting.TorchRuntime.EnsureAvailable();
        TorchSharp.torch.set_num_threads(1);
    }
}
