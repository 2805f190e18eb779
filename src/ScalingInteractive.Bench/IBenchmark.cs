namespace ScalingInteractive.Bench;

/// <summary>
/// One benchmark: prints its figures (and ratios measured side by side in the same run) to the output.
/// Implementations are discovered by reflection, so adding a benchmark means adding one class.
/// </summary>
public interface IBenchmark
{
    /// <summary>Name used on the command line, e.g. <c>fitting</c>.</summary>
    string Name { get; }

    /// <summary>One line for the list of benchmarks.</summary>
    string Description { get; }

    /// <summary>Runs the benchmark with its own arguments; returns the process exit code.</summary>
    Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken);
}
