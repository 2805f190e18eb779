namespace ScalingInteractive.Core;

/// <summary>How weight decay enters the AdamW update.</summary>
public enum WeightDecayMode
{
    /// <summary>AdamW as in PyTorch: theta -= eta*s_t*(u + lambda*theta); the decay scales with the learning rate.</summary>
    Coupled,
    /// <summary>Independent of the learning rate (Wortsman et al. §3.2.2): theta -= s_t*(eta*u + lambda*theta).</summary>
    Independent,
}
