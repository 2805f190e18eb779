using System.Runtime.CompilerServices;

// LibTorch's global random generator is shared by every test in the process: seeded runs are only reproducible when
// no other test draws from it at the same time (a seeded MNIST subspace run differed between two calls while proxy
// tests ran in parallel). Run test classes one at a time; on 2 cores this costs little.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]

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
