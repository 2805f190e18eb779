using System.Collections.Immutable;

namespace ScalingInteractive.Proxies;

/// <summary>
/// The named interventions of Wortsman et al. (2023) as <see cref="ProxySetting"/>s, with their defaults. Names combine
/// with '+' (e.g. <c>qk-layernorm+z-loss</c>); each part switches one intervention on relative to the base options.
/// </summary>
public static class ProxySettings
{
    /// <summary>Every setting name, in help order.</summary>
    public static ImmutableArray<string> Names { get; } = ["baseline", "qk-layernorm", "z-loss", "warmup", "independent-wd", "mup", "sp"];

    /// <summary>Weight decay of <c>independent-wd</c> when the base has none: 1e-4, the paper's value.</summary>
    public const double IndependentWeightDecay = 1e-4;

    /// <summary>Warm-up of <c>warmup</c> when the base has none, as a fraction of the steps (this package's default: 10%).</summary>
    public const double WarmupFraction = 0.1;

    /// <summary>
    /// The setting a name describes. <c>baseline</c> changes nothing; <c>qk-layernorm</c> and <c>z-loss</c> switch those on
    /// (z-loss coefficient 1e-4 as in the paper); <c>warmup</c> uses the base warm-up, or <see cref="WarmupFraction"/> of the
    /// steps when it is 0; <c>independent-wd</c> decouples weight decay from the learning rate with the base weight decay, or
    /// <see cref="IndependentWeightDecay"/> when it is 0; <c>mup</c> uses <paramref name="mupBaseWidth"/>, else the smallest of
    /// <paramref name="widths"/>; <c>sp</c> forces the standard parametrisation.
    /// </summary>
    /// <param name="name">A name of <see cref="Names"/> or several joined by '+'.</param>
    /// <param name="training">The base training options (for warm-up and weight-decay defaults).</param>
    /// <param name="widths">The widths of the sweep (for the muP base width default).</param>
    /// <param name="mupBaseWidth">muP base width (null: the smallest width).</param>
    /// <exception cref="ArgumentException">A part is not a known setting.</exception>
    public static ProxySetting Create(string name, ProxyTrainingOptions training, IReadOnlyCollection<int> widths, double? mupBaseWidth = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(training);
        var setting = new ProxySetting { Name = name };
        foreach (string part in name.Split('+', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            setting = part.ToLowerInvariant() switch
            {
                "baseline" => setting,
                "qk-layernorm" => setting with { QkLayerNorm = true },
                "z-loss" => setting with { ZLoss = true },
                "warmup" => setting with { WarmupSteps = training.WarmupSteps > 0 ? training.WarmupSteps : Math.Max(1, (int)(training.Steps * WarmupFraction)) },
                "independent-wd" => setting with
                {
                    WeightDecayMode = WeightDecayMode.Independent,
                    WeightDecay = training.WeightDecay > 0 ? training.WeightDecay : IndependentWeightDecay,
                },
                "mup" => setting with { MupBaseWidth = mupBaseWidth ?? (widths.Count > 0 ? widths.Min() : throw new ArgumentException("mup needs a base width or at least one width.", nameof(widths))) },
                "sp" => setting with { StandardParametrisation = true },
                _ => throw new ArgumentException($"Setting '{part}' is not known; use {string.Join(", ", Names)} (combine with '+').", nameof(name)),
            };
        }
        return setting;
    }
}
