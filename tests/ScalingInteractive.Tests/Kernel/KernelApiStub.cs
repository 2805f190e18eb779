// Signature stub of the .NET Interactive kernel API surface that extension.dib uses, with just enough behaviour
// to run the adapter in a test. Types, members and signatures follow ../shared/KERNEL-API.md and the kernel's
// sources (dotnet/interactive, 2024-2026). It is NOT compiled into the test assembly: tests compile it with
// Roslyn next to extension.dib. Keep it to members the kernel really has; never add one only to make the
// adapter compile.
#nullable enable
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Microsoft.DotNet.Interactive.Directives
{
    public abstract class KernelDirective
    {
        protected KernelDirective(string name) => Name = name;
        public string Name { get; init; }
        public string? Description { get; set; }
        public bool Hidden { get; set; }
        public ICollection<KernelDirectiveParameter> Parameters { get; init; } = new List<KernelDirectiveParameter>();
        public override string ToString() => Name;
    }

    public class KernelActionDirective : KernelDirective
    {
        public KernelActionDirective(string name) : base(name) { }
        public Type? KernelCommandType { get; set; }
        public ICollection<KernelActionDirective> Subcommands { get; init; } = new List<KernelActionDirective>();
    }

    public class KernelDirectiveParameter
    {
        public KernelDirectiveParameter(string name, string? description = null)
        {
            Name = name;
            Description = description ?? "";
        }
        public string Name { get; }
        public string Description { get; set; }
        public bool AllowImplicitName { get; init; }
        public int MaxOccurrences { get; init; } = 1;
        public bool Required { get; init; }
        public string TypeHint { get; init; } = "text";
        public bool Flag { get; set; }
        public override string ToString() => Name;
    }
}

namespace Microsoft.DotNet.Interactive.Commands
{
    public abstract class KernelCommand
    {
        protected KernelCommand(string? targetKernelName = null) => TargetKernelName = targetKernelName;
        public string? TargetKernelName { get; internal set; }
    }

    public abstract class KernelDirectiveCommand : KernelCommand
    {
    }

    public class RequestValue : KernelCommand
    {
        public RequestValue(string name, string? mimeType = null, string? targetKernelName = null) : base(targetKernelName)
        {
            Name = name;
            MimeType = mimeType;
        }
        public string Name { get; }
        public string? MimeType { get; }
    }
}

namespace Microsoft.DotNet.Interactive
{
    using Microsoft.DotNet.Interactive.Commands;
    using Microsoft.DotNet.Interactive.Directives;

    public delegate Task KernelCommandInvocation(KernelCommand command, KernelInvocationContext context);

    public abstract class Kernel
    {
        protected Kernel(string name)
        {
            Name = name;
            RootKernel = this;
        }

        public string Name { get; }
        public Kernel RootKernel { get; internal set; }
        public CompositeKernel? ParentKernel { get; internal set; }
        public static Kernel? Root => KernelInvocationContext.Current?.HandlingKernel?.RootKernel;

        // Test-side record of what was registered.
        public List<(KernelActionDirective Directive, Type CommandType, Func<KernelCommand, KernelInvocationContext, Task> Handler)> Directives { get; } = new();

        public void AddDirective<TCommand>(KernelActionDirective directive, Func<TCommand, KernelInvocationContext, Task> handler)
            where TCommand : KernelCommand
        {
            directive.KernelCommandType = typeof(TCommand);
            Directives.Add((directive, typeof(TCommand), (command, context) => handler((TCommand)command, context)));
        }

        public void AddDirective(KernelActionDirective directive, KernelCommandInvocation handler) =>
            Directives.Add((directive, typeof(KernelCommand), (command, context) => handler(command, context)));
    }

    public class CompositeKernel : Kernel
    {
        private readonly List<Kernel> _children = new();
        public CompositeKernel() : base(".NET") { }
        public void Add(Kernel kernel)
        {
            kernel.ParentKernel = this;
            kernel.RootKernel = this;
            _children.Add(kernel);
        }
        public IReadOnlyList<Kernel> ChildKernels => _children;
    }

    public static class KernelExtensions
    {
        public static Kernel? FindKernelByName(this Kernel kernel, string name)
        {
            if (kernel.RootKernel.Name == name) return kernel.RootKernel;
            return kernel.RootKernel is CompositeKernel composite ? composite.ChildKernels.FirstOrDefaultByName(name) : null;
        }

        private static Kernel? FirstOrDefaultByName(this IReadOnlyList<Kernel> kernels, string name)
        {
            foreach (var k in kernels) if (k.Name == name) return k;
            return null;
        }
    }

    public class DisplayedValue
    {
        private readonly KernelInvocationContext _context;
        internal DisplayedValue(object? value, KernelInvocationContext context)
        {
            Value = value;
            _context = context;
        }
        public string DisplayId { get; } = Guid.NewGuid().ToString("N");
        public object? Value { get; private set; }
        public bool IsUpdated { get; private set; }
        public void Update(object updatedValue)
        {
            Value = updatedValue;
            IsUpdated = true;
            _context.UpdateCount++;
        }
    }

    public class KernelInvocationContext
    {
        private static readonly AsyncLocal<KernelInvocationContext?> _current = new();

        public KernelInvocationContext(Kernel handlingKernel, CancellationToken cancellationToken = default)
        {
            HandlingKernel = handlingKernel;
            CancellationToken = cancellationToken;
        }

        public static KernelInvocationContext? Current => _current.Value;
        public static void SetCurrentForTest(KernelInvocationContext? context) => _current.Value = context;

        public Kernel HandlingKernel { get; internal set; }
        public CancellationToken CancellationToken { get; }
        public bool IsFailed { get; private set; }

        // Test-side record.
        public List<DisplayedValue> Displayed { get; } = new();
        public string? FailureMessage { get; private set; }
        public int UpdateCount { get; set; }

        public void Fail(KernelCommand command, Exception? exception = null, string? message = null)
        {
            IsFailed = true;
            FailureMessage = message ?? exception?.Message;
        }
    }

    public static class KernelInvocationContextExtensions
    {
        public static DisplayedValue Display(this KernelInvocationContext context, object value, params string[] mimeTypes)
        {
            var displayed = new DisplayedValue(value, context);
            context.Displayed.Add(displayed);
            return displayed;
        }

        public static DisplayedValue DisplayAs(this KernelInvocationContext context, string value, string mimeType) => Display(context, value, mimeType);
    }
}

namespace Microsoft.DotNet.Interactive.CSharp
{
    public class CSharpKernel : Microsoft.DotNet.Interactive.Kernel
    {
        public CSharpKernel() : base("csharp") { }

        // Test-side variable store standing in for the script state.
        public Dictionary<string, (object? Value, Type Type)> Variables { get; } = new();

        public bool TryGetValue<T>(string name, out T value)
        {
            if (Variables.TryGetValue(name, out var entry))
            {
                value = (T)entry.Value!;
                return true;
            }
            value = default!;
            return false;
        }

        public Task SetValueAsync(string name, object value, Type declaredType)
        {
            Variables[name] = (value, declaredType);
            return Task.CompletedTask;
        }
    }
}
