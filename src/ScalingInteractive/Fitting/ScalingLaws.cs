using System.Collections.Immutable;

namespace ScalingInteractive.Fitting;

/// <summary>The law catalogue: every built-in law by name, and user-defined laws.</summary>
public static class ScalingLaws
{
    /// <summary>Law 1: <c>L(N, D) = E + A/N^alpha + B/D^beta</c>.</summary>
    public static ChinchillaLaw Chinchilla { get; } = new();
    /// <summary>Law 2: <c>y = E + A x^(-alpha)</c>.</summary>
    public static SaturatingPowerLaw SaturatingPower { get; } = new();
    /// <summary>Law 3: <c>y = A x^alpha</c>.</summary>
    public static PowerLaw Power { get; } = new();
    /// <summary>Law 4: <c>BLEU(D) = (log(A D^alpha))^beta</c>.</summary>
    public static BleuLogLaw BleuLog { get; } = new();
    /// <summary>Law 5: <c>L(N, D) = ((Nc/N)^(alphaN/alphaD) + Dc/D)^alphaD</c>.</summary>
    public static KaplanLaw Kaplan { get; } = new();
    /// <summary>Law 6: <c>L(C, M) = E + (a M^eta + b M^(-eta)) C^(-alphaC)</c>.</summary>
    public static OverTrainingLaw OverTraining { get; } = new();
    /// <summary>Law 6 (second part): <c>Err(L) = eps - k exp(-gamma L)</c>.</summary>
    public static DownstreamErrorLaw DownstreamError { get; } = new();
    /// <summary>Law 7: <c>L(s) = L0 + A S1^(-alpha) - C S2</c>.</summary>
    public static LrAnnealingLaw LrAnnealing { get; } = new();
    /// <summary>Law 8: <c>eta_opt = c N^a D^b</c>.</summary>
    public static StepLearningRateLaw StepLearningRate { get; } = new();
    /// <summary>Law 8 (second part): <c>B_opt = d D^e</c>.</summary>
    public static StepBatchSizeLaw StepBatchSize { get; } = new();

    /// <summary>Every built-in law, in the issue's order.</summary>
    public static ImmutableArray<ScalingLaw> All { get; } =
        [Chinchilla, SaturatingPower, Power, BleuLog, Kaplan, OverTraining, DownstreamError, LrAnnealing, StepLearningRate, StepBatchSize];

    /// <summary>Catalogue names (the values <c>#!scaling-fit --law</c> accepts).</summary>
    public static ImmutableArray<string> Names { get; } = [.. All.Select(l => l.Name)];

    /// <summary>Finds a law by name (case-insensitive); throws an <see cref="ArgumentException"/> listing the valid names.</summary>
    public static ScalingLaw Get(string name)
    {
        var law = All.FirstOrDefault(l => string.Equals(l.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase));
        return law ?? throw new ArgumentException($"Unknown law '{name}'. Valid laws: {string.Join(", ", Names)}.", nameof(name));
    }

    /// <summary>Law 9: a user-defined law (see <see cref="CustomLaw"/>).</summary>
    public static CustomLaw Custom(string name, string formula, IEnumerable<string> inputs, IEnumerable<ParameterSpec> parameters,
        Func<double[], double[], double> value, Action<double[], double[], double[]>? gradient = null) =>
        new(name, formula, inputs, parameters, value, gradient);
}
