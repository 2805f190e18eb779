namespace ScalingInteractive.Core;

/// <summary>Receives progress of long work. Implementations throttle what they show.</summary>
public interface IProgressSink
{
    /// <summary>Reports progress: items done, an optional status line and an optional "best so far" text.</summary>
    void Report(int done, string? status = null, string? best = null);

    /// <summary>Marks the work finished (shown at once, unthrottled).</summary>
    void Complete(string? status = null);
}
