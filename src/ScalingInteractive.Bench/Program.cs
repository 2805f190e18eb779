using ScalingInteractive.Bench;

// Benchmarks: dotnet run --project src/ScalingInteractive.Bench -c Release -- NAME [ARGS...]
// With no name, lists the benchmarks. Figures are printed, never asserted: tests stay fast and deterministic.
var benchmarks = typeof(IBenchmark).Assembly.GetTypes()
    .Where(t => typeof(IBenchmark).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
    .Select(t => (IBenchmark)Activator.CreateInstance(t)!)
    .OrderBy(b => b.Name, StringComparer.Ordinal)
    .ToList();

if (args.Length == 0 || args[0] is "-h" or "--help" or "list")
{
    Console.WriteLine("usage: ScalingInteractive.Bench NAME [ARGS...]\n\nbenchmarks:");
    foreach (var b in benchmarks) Console.WriteLine($"  {b.Name,-16} {b.Description}");
    return args.Length == 0 ? 2 : 0;
}

var benchmark = benchmarks.FirstOrDefault(b => string.Equals(b.Name, args[0], StringComparison.OrdinalIgnoreCase));
if (benchmark is null)
{
    Console.Error.WriteLine($"Unknown benchmark '{args[0]}'. Valid: {string.Join(", ", benchmarks.Select(b => b.Name))}.");
    return 2;
}
using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancellation.Cancel(); };
Console.WriteLine($"# {benchmark.Name}: {benchmark.Description}");
Console.WriteLine($"# machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
return await benchmark.RunAsync(args[1..], Console.Out, cancellation.Token);
