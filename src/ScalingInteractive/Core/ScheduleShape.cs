namespace ScalingInteractive.Core;

/// <summary>Learning-rate schedules (all with an optional linear warm-up first).</summary>
public enum ScheduleShape
{
    /// <summary>Linear warm-up, then cosine decay from the peak to the minimum rate (Wortsman et al. default).</summary>
    Cosine,
    /// <summary>Linear warm-up, then the peak rate to the end.</summary>
    Constant,
    /// <summary>Warm-up, stable at the peak, then a linear decay to the minimum over the last the decay fraction of the steps.</summary>
    WarmupStableDecay,
    /// <summary>Linear warm-up, then linear decay from the peak to the minimum.</summary>
    Linear,
}
