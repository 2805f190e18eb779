using ScalingInteractive.Training;
using FitSchedule = ScalingInteractive.Core.LearningRateSchedule;

namespace ScalingInteractive.Proxies;

/// <summary>
/// Optimisation settings of one proxy training run. Defaults follow Wortsman et al. (2023): AdamW with beta1 0.9,
/// beta2 0.95, eps 1e-8, global gradient-norm clipping at 1, z-loss coefficient 1e-4 when on, cosine decay to 1e-5.
/// </summary>
public sealed record ProxyTrainingOptions
{
    /// <summary>Optimiser steps.</summary>
    public int Steps { get; init; } = 200;

    /// <summary>Sequences per batch.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Tokens per sequence (at most the model's context length).</summary>
    public int SequenceLength { get; init; } = 64;

    /// <summary>Peak learning rate eta.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Minimum learning rate at the end of a decaying schedule.</summary>
    public double MinLearningRate { get; init; } = 1e-5;

    /// <summary>Schedule shape.</summary>
    public ScheduleShape Schedule { get; init; } = ScheduleShape.Cosine;

    /// <summary>Linear warm-up steps (0 for none).</summary>
    public int WarmupSteps { get; init; }

    /// <summary>Fraction of the steps spent decaying in <see cref="ScheduleShape.WarmupStableDecay"/> (default 0.2).</summary>
    public double DecayFraction { get; init; } = 0.2;

    /// <summary>Weight decay lambda (applied to matrices and embeddings, not to norms and biases).</summary>
    public double WeightDecay { get; init; }

    /// <summary>Coupled (AdamW) or independent weight decay.</summary>
    public WeightDecayMode WeightDecayMode { get; init; } = WeightDecayMode.Coupled;

    /// <summary>Add the z-loss coefficient * log(Z)^2 per token.</summary>
    public bool ZLoss { get; init; }

    /// <summary>z-loss coefficient (1e-4 in the paper).</summary>
    public double ZLossCoefficient { get; init; } = 1e-4;

    /// <summary>AdamW beta1.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>AdamW beta2.</summary>
    public double Beta2 { get; init; } = 0.95;

    /// <summary>AdamW epsilon.</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Global gradient-norm clipping threshold (0 turns clipping off).</summary>
    public double GradClip { get; init; } = 1.0;

    /// <summary>Record metrics every this many steps (and at the last step); the only steps that synchronise with the host.</summary>
    public int LogEvery { get; init; } = 10;

    /// <summary>Steps (besides the end) at which to measure the validation loss.</summary>
    public int[] ValidationSteps { get; init; } = [];

    /// <summary>Batches averaged for one validation loss (fixed batches, the same for every evaluation).</summary>
    public int ValidationBatches { get; init; } = 4;

    /// <summary>
    /// The factor of the package's one <see cref="DivergenceRule"/>: a logged loss that is NaN/Inf or above
    /// max(factor x the initial loss, initial + 2 nats) ends the run as diverged.
    /// </summary>
    public double DivergenceFactor { get; init; } = 1.5;

    /// <summary>Seed of the model initialisation and of the batch order.</summary>
    public long Seed { get; init; }

    // Methods, not properties: the run key hashes this record's properties, and derived views must not change it.

    /// <summary>
    /// The learning rate of every step as the schedule type law 7 reads (<see cref="FitSchedule"/>): the trainer uses
    /// exactly these rates, so a fit of the loss curve sees the schedule the run had.
    /// </summary>
    public FitSchedule ToSchedule() => Schedule switch
    {
        ScheduleShape.Constant => FitSchedule.Constant(LearningRate, Steps, WarmupSteps),
        ScheduleShape.Linear => FitSchedule.Linear(LearningRate, Steps, WarmupSteps, MinLearningRate),
        ScheduleShape.WarmupStableDecay => FitSchedule.WarmupStableDecay(LearningRate, Steps, WarmupSteps, DecayFraction, MinLearningRate),
        _ => FitSchedule.Cosine(LearningRate, Steps, WarmupSteps, MinLearningRate),
    };

    /// <summary>The AdamW settings of these options.</summary>
    public AdamWOptions ToAdamWOptions() => new()
    {
        Beta1 = Beta1, Beta2 = Beta2, Epsilon = Epsilon, WeightDecay = WeightDecay, WeightDecayMode = WeightDecayMode, GradClip = GradClip,
    };

    /// <summary>The divergence rule of these options (the package's rule with <see cref="DivergenceFactor"/>).</summary>
    public DivergenceRule ToDivergenceRule() => DivergenceRule.Default with { Factor = DivergenceFactor };

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public ProxyTrainingOptions Validate()
    {
        Positive(Steps, nameof(Steps));
        Positive(BatchSize, nameof(BatchSize));
        Positive(SequenceLength, nameof(SequenceLength));
        Positive(LogEvery, nameof(LogEvery));
        Positive(ValidationBatches, nameof(ValidationBatches));
        PositiveReal(LearningRate, nameof(LearningRate));
        if (!double.IsFinite(MinLearningRate) || MinLearningRate < 0 || MinLearningRate > LearningRate)
            throw new ArgumentException($"{nameof(MinLearningRate)} must lie in [0, {nameof(LearningRate)}={LearningRate}]; got {MinLearningRate}.", nameof(MinLearningRate));
        if (WarmupSteps < 0 || WarmupSteps > Steps)
            throw new ArgumentException($"{nameof(WarmupSteps)} must lie in [0, {nameof(Steps)}={Steps}]; got {WarmupSteps}.", nameof(WarmupSteps));
        if (!double.IsFinite(DecayFraction) || DecayFraction <= 0 || DecayFraction > 1)
            throw new ArgumentException($"{nameof(DecayFraction)} must lie in (0, 1]; got {DecayFraction}.", nameof(DecayFraction));
        if (!double.IsFinite(WeightDecay) || WeightDecay < 0)
            throw new ArgumentException($"{nameof(WeightDecay)} must be zero or positive; got {WeightDecay}.", nameof(WeightDecay));
        PositiveReal(ZLossCoefficient, nameof(ZLossCoefficient));
        if (Beta1 is < 0 or >= 1 || Beta2 is < 0 or >= 1 || double.IsNaN(Beta1) || double.IsNaN(Beta2))
            throw new ArgumentException($"AdamW betas must lie in [0, 1); got beta1 {Beta1}, beta2 {Beta2}.", nameof(Beta1));
        PositiveReal(Epsilon, nameof(Epsilon));
        if (!double.IsFinite(GradClip) || GradClip < 0)
            throw new ArgumentException($"{nameof(GradClip)} must be zero (off) or positive; got {GradClip}.", nameof(GradClip));
        if (!double.IsFinite(DivergenceFactor) || DivergenceFactor <= 1)
            throw new ArgumentException($"{nameof(DivergenceFactor)} must be above 1; got {DivergenceFactor}.", nameof(DivergenceFactor));
        foreach (int s in ValidationSteps)
            if (s <= 0 || s > Steps) throw new ArgumentException($"{nameof(ValidationSteps)} must lie in [1, {Steps}]; got {s}.", nameof(ValidationSteps));
        return this;
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentException($"{name} must be a positive integer; got {value}.", name);
    }

    private static void PositiveReal(double value, string name)
    {
        if (!double.IsFinite(value) || value <= 0) throw new ArgumentException($"{name} must be a positive finite number; got {value}.", name);
    }
}

/// <summary>Learning rate at each step for the schedules of <see cref="ScheduleShape"/>.</summary>
public static class LearningRateSchedules
{
    /// <summary>
    /// The learning rate at 0-based <paramref name="step"/>: <c>options.ToSchedule().Rates[step]</c>, the schedule type
    /// of law 7 (<see cref="FitSchedule"/>; warm-up peak*(step+1)/W, then cosine/linear/constant over progress
    /// (step-W)/(Steps-1-W), warm-up-stable-decay with round(DecayFraction*Steps) decay steps ending at the minimum).
    /// Builds the whole schedule: in a loop call <see cref="ProxyTrainingOptions.ToSchedule"/> once instead.
    /// </summary>
    public static double At(ProxyTrainingOptions options, int step)
    {
        ArgumentNullException.ThrowIfNull(options);
        var rates = options.ToSchedule().Rates;
        return rates[Math.Clamp(step, 0, rates.Length - 1)];
    }
}
