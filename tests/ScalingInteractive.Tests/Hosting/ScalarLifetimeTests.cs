using Mono.Cecil;
using Mono.Cecil.Cil;
using Xunit.Abstractions;

namespace ScalingInteractive.Tests.Hosting;

/// <summary>
/// TorchSharp 0.107 turns numbers into <c>TorchSharp.Scalar</c> objects implicitly (<c>x * 0.5</c>, <c>a + b</c> with its
/// hidden alpha of 1, <c>clamp_max(1.0)</c>) and passes only their native handle to LibTorch. Nothing keeps the managed
/// object alive during the native call, so a garbage collection on another thread can run its finalizer and free the
/// native scalar while LibTorch reads it: the "toFloat at c10/core/Scalar.h" crash of issue 16, reproduced within
/// seconds by ScalarStressTests. This test reads the compiled IL of TorchSharp and of the library and
/// fails on any library method that creates such a temporary scalar, directly or through a TorchSharp member that does.
/// </summary>
public class ScalarLifetimeTests(ITestOutputHelper output)
{
    private const string ScalarType = "TorchSharp.Scalar";

    [Fact]
    public void Library_code_never_passes_a_temporary_scalar_to_LibTorch()
    {
        string torchSharp = typeof(TorchSharp.Scalar).Assembly.Location;
        string library = typeof(ScalingInteractive.Hosting.TorchRuntime).Assembly.Location;
        var hazards = HazardousTorchSharpMembers(torchSharp);
        output.WriteLine($"{hazards.Count} TorchSharp members create temporary scalars (e.g. {string.Join(", ", hazards.Where(h => h.Contains("::add(")).Take(3))})");
        Assert.Contains(hazards, h => h.Contains("Tensor::op_Addition(TorchSharp.torch/Tensor,TorchSharp.torch/Tensor)"));

        var violations = new List<string>();
        using var module = ModuleDefinition.ReadModule(library);
        foreach (var method in AllMethods(module))
        {
            if (!method.HasBody) continue;
            bool disposesScalars = method.Body.Instructions.Any(i => i.Operand is MethodReference m && IsDispose(m));
            foreach (var instruction in method.Body.Instructions)
            {
                if (instruction.Operand is not MethodReference called) continue;
                string name = Describe(called);
                // A scalar stored straight into a static field lives as long as the process: never finalized.
                // An implicit conversion is never disposed; an explicit ToScalar() must be (a `using` in the same method).
                if (CreatesScalar(called) && instruction.Next?.OpCode != OpCodes.Stsfld && (called.Name == "op_Implicit" || !disposesScalars)) violations.Add($"{method.DeclaringType.FullName}::{method.Name} creates a scalar it never disposes ({name})");
                else if (hazards.Contains(name)) violations.Add($"{method.DeclaringType.FullName}::{method.Name} calls {name}");
            }
        }
        foreach (string v in violations.Distinct()) output.WriteLine(v);
        Assert.True(violations.Count == 0, $"{violations.Distinct().Count()} calls pass a temporary scalar to LibTorch; use ScalingInteractive.Core.TorchScalars (first: {violations.FirstOrDefault()})");
    }

    /// <summary>
    /// TorchSharp members that create a scalar from a number and never dispose it (so only a finalizer frees it), and,
    /// transitively, every member that calls one.
    /// </summary>
    private static HashSet<string> HazardousTorchSharpMembers(string path)
    {
        using var module = ModuleDefinition.ReadModule(path);
        var methods = AllMethods(module).Where(m => m.HasBody).ToList();
        var calls = methods.GroupBy(Describe).ToDictionary(g => g.Key, g => g.SelectMany(m => m.Body.Instructions).Select(i => i.Operand).OfType<MethodReference>().Select(Describe).Distinct().ToList());
        var hazards = new HashSet<string>(methods.Where(m =>
            m.Body.Instructions.Any(i => i.Operand is MethodReference r && CreatesScalar(r)) &&
            !m.Body.Instructions.Any(i => i.Operand is MethodReference r && IsDispose(r)) &&
            !(m.DeclaringType.FullName == ScalarType || m.DeclaringType.FullName == "TorchSharp.ScalarExtensionMethods")).Select(Describe));
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var (method, callees) in calls)
                if (!hazards.Contains(method) && callees.Any(hazards.Contains)) grew |= hazards.Add(method);
        }
        return hazards;
    }

    // A number (or a tensor) turned into a Scalar: Scalar.op_Implicit(...) and the ToScalar() extension methods.
    private static bool CreatesScalar(MethodReference method) =>
        method.ReturnType.FullName == ScalarType && (method.Name == "op_Implicit" || method.Name == "ToScalar");

    // `using var s = value.ToScalar()` compiles to IDisposable.Dispose(): the scalar lives until that call.
    private static bool IsDispose(MethodReference m) =>
        m.Name == "Dispose" && m.DeclaringType.FullName is ScalarType or "System.IDisposable";

    private static string Describe(MethodReference m) => m.GetElementMethod().FullName;

    private static IEnumerable<MethodDefinition> AllMethods(ModuleDefinition module) =>
        module.GetTypes().SelectMany(t => t.Methods);
}
