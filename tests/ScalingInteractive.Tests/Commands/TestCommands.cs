using System.Collections.Immutable;
using ScalingInteractive.Commands;
using ScalingInteractive.Display;

namespace ScalingInteractive.Tests.Commands;

/// <summary>A command exercising every parameter kind, recording what it received.</summary>
internal sealed class ProbeCommand : MagicCommand
{
    public CommandArguments? Received { get; private set; }
    public override string Name => "#!probe";
    public override string Description => "Test probe.";
    public override ImmutableArray<CommandParameter> Parameters { get; } =
    [
        new("--law", typeof(string), "law") { AllowedValues = ["chinchilla", "power"], Default = "chinchilla", AllowImplicitName = true },
        new("--data", typeof(string), "data") { Required = true },
        new("--bootstrap", typeof(int), "resamples") { Default = 1000, Minimum = 0, Maximum = 100000 },
        new("--learning-rates", typeof(double[]), "rates") { Minimum = 0 },
        new("--sizes", typeof(int[]), "sizes") { Minimum = 1 },
        new("--columns", typeof(string[]), "columns"),
        new("--delta", typeof(double), "huber delta") { Default = 1e-3, Minimum = 0 },
        new("--quick", typeof(bool), "flag"),
        new("--model", typeof(string), "a model") { AcceptsVariable = true },
    ];

    public override Task InvokeAsync(CommandArguments arguments, ICommandHost host)
    {
        Received = arguments;
        return Task.CompletedTask;
    }
}

/// <summary>An in-memory host for tests.</summary>
internal sealed class TestHost : ICommandHost
{
    public List<TestHandle> Shown { get; } = new();
    public Dictionary<string, object?> Variables { get; } = new();
    public CancellationToken CancellationToken { get; init; }

    public IDisplayHandle Display(object value)
    {
        var handle = new TestHandle(value);
        Shown.Add(handle);
        return handle;
    }

    public bool TryGetVariable(string name, out object? value) => Variables.TryGetValue(name, out value);

    public Task SetVariableAsync(string name, object value, Type declaredType)
    {
        Variables[name] = value;
        return Task.CompletedTask;
    }
}

internal sealed class TestHandle(object value) : IDisplayHandle
{
    public object Value { get; private set; } = value;
    public int Updates { get; private set; }
    public void Update(object value)
    {
        Value = value;
        Updates++;
    }
}
