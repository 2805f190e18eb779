namespace ScalingInteractive.Core;

/// <summary>
/// The one divergence rule of every training loop in this package: a run has diverged when a logged training loss is
/// not finite, or exceeds <c>max(Factor x L0, L0 + Margin)</c> with L0 the loss at the start of training.
/// </summary>
/// <remarks>
/// Why both terms: runs trained from scratch start near the uniform loss ln(V) (5.5 nats for bytes, 2.3 for MNIST) and a
/// working run never climbs back to 1.5 x that after its first steps, so the factor catches blow-ups that stay finite
/// (huge but finite logits); fine-tuning starts from a low loss (L0 of 1-2 nats), where a factor alone would call batch
/// noise or an early transient "diverged", so the additive margin of 2 nats is the floor. The factor 1.5 is the proxies'
/// historic setting, so sweeps from scratch judge exactly as before (for L0 = ln 256 the factor term is the larger).
/// The rule is checked at logged steps only (the only steps that synchronise with the host); a NaN persists, so a
/// divergence between two logged steps is caught at the next one.
/// </remarks>
/// <param name="Factor">Multiple of the initial loss (above 1; default 1.5).</param>
/// <param name="Margin">Additive margin over the initial loss in nats (non-negative; default 2).</param>
public sealed record DivergenceRule(double Factor = 1.5, double Margin = 2.0)
{
    /// <summary>The default rule: factor 1.5, margin 2 nats.</summary>
    public static DivergenceRule Default { get; } = new();

    /// <summary>The loss above which a run counts as diverged, for initial loss <paramref name="initialLoss"/>.</summary>
    public double Threshold(double initialLoss) => Math.Max(Factor * initialLoss, initialLoss + Margin);

    /// <summary>Null while the run is healthy, else the reason it diverged (loss at 1-based <paramref name="step"/>).</summary>
    public string? Check(double loss, double initialLoss, int step)
    {
        if (!double.IsFinite(loss)) return $"loss is {loss} at step {step}";
        double threshold = Threshold(initialLoss);
        return loss > threshold
            ? $"loss {loss:G4} at step {step} exceeds max({Factor} x the initial loss {initialLoss:G4}, initial + {Margin}) = {threshold:G4}"
            : null;
    }

    /// <summary>Throws an <see cref="ArgumentException"/> for a factor at or below 1 or a negative margin.</summary>
    public DivergenceRule Validate()
    {
        if (!double.IsFinite(Factor) || Factor <= 1) throw new ArgumentException($"The divergence factor must be above 1; got {Factor}.", nameof(Factor));
        if (!double.IsFinite(Margin) || Margin < 0) throw new ArgumentException($"The divergence margin must be zero or positive; got {Margin}.", nameof(Margin));
        return this;
    }
}
