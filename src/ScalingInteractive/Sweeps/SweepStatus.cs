using System.Text;
using System.Text.Json;
using ScalingInteractive.Display;
using ScalingInteractive.Runs;

namespace ScalingInteractive.Sweeps;

/// <summary>One array task (= shard) of a sweep.</summary>
/// <param name="Shard">Shard index (= array task index).</param>
/// <param name="JobId">The job id of the latest submission that ran this shard (null: never submitted or local).</param>
/// <param name="State">Slurm's state (PENDING, RUNNING, COMPLETED, CANCELLED, FAILED, TIMEOUT, ...), else one derived from the task's exit-code file.</param>
/// <param name="ExitCode">The worker's exit code when the task wrote one (0 done, 1 failed, 2 usage, 143 cancelled).</param>
/// <param name="RunsDone">Runs of this shard recorded in the store (by any task).</param>
/// <param name="RunsTotal">Runs of this shard.</param>
/// <param name="LogTail">Last lines of the task's log when it did not complete (null otherwise).</param>
public sealed record SweepTaskStatus(int Shard, string? JobId, string State, int? ExitCode, int RunsDone, int RunsTotal, string? LogTail)
{
    /// <summary>The stage of the shard (0 for a sweep of one stage).</summary>
    public int Stage { get; init; }

    /// <summary>Queued or running.</summary>
    public bool IsActive => State is "PENDING" or "RUNNING" or "CONFIGURING" or "COMPLETING" or "REQUEUED" or "RESIZING" or "SUSPENDED";

    /// <summary>Ended without finishing its runs (cancelled, failed, timed out, lost).</summary>
    public bool NeedsResubmit => !IsActive && RunsDone < RunsTotal;
}

/// <summary>A sweep's state: per task, and runs recorded over all shards.</summary>
/// <param name="Handle">The sweep.</param>
/// <param name="Tasks">Per shard.</param>
/// <param name="RunsDone">Runs recorded in the store.</param>
/// <param name="RunsTotal">Runs of the spec.</param>
/// <param name="BadLines">Unreadable store lines (a run interrupted mid-write; redone on resubmit).</param>
/// <param name="DuplicateRecords">Records of a key already recorded (kept once).</param>
/// <param name="CheckedAt">When (UTC).</param>
public sealed record SweepStatus(SweepHandle Handle, IReadOnlyList<SweepTaskStatus> Tasks, int RunsDone, int RunsTotal,
    IReadOnlyList<BadRunLine> BadLines, int DuplicateRecords, DateTime CheckedAt) : IRichResult
{
    /// <summary>No task is queued or running.</summary>
    public bool IsFinished => Tasks.All(t => !t.IsActive) || IsStalled;

    /// <summary>
    /// True when a stage's shards all ended with runs missing while later stages wait for it: those arrays would wait for
    /// ever (Slurm's afterok), so the sweep needs <c>SlurmSweeps.ResubmitMissing</c>.
    /// </summary>
    public bool IsStalled => Tasks.GroupBy(t => t.Stage).Any(g => g.All(t => !t.IsActive) && g.Any(t => t.NeedsResubmit) && Tasks.Any(t => t.Stage > g.Key && t.IsActive));

    /// <summary>Every run is recorded.</summary>
    public bool IsComplete => RunsDone >= RunsTotal;

    /// <summary>Tasks that ended without finishing their runs.</summary>
    public IReadOnlyList<SweepTaskStatus> FailedTasks => Tasks.Where(t => t.NeedsResubmit).ToList();

    /// <summary>One-line summary.</summary>
    public string Summary =>
        $"{Handle.Scheduler} sweep {(Handle.JobId is { } id ? "job " + string.Join("+", Handle.Submissions.Select(s => s.JobId)) + " " : "")}: {RunsDone}/{RunsTotal} runs recorded; " +
        string.Join(", ", Tasks.GroupBy(t => t.State).Select(g => $"{g.Count()} {g.Key.ToLowerInvariant()}")) +
        (IsComplete ? " - complete" : IsFinished ? " - tasks ended with runs missing: SlurmSweeps.ResubmitMissing(handle)" : "");

    /// <inheritdoc />
    public string ToHtml()
    {
        var html = new StringBuilder();
        html.Append("<div class=\"si-sweep-status\"><p><b>").Append(HtmlText.Encode(Summary)).Append("</b><br/><small>")
            .Append(HtmlText.Encode(Handle.Folder)).Append(" - checked ").Append(CheckedAt.ToString("HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)).Append(" UTC</small></p>");
        html.Append(HtmlText.Table(["shard", "job", "state", "exit", "runs"],
            Tasks.Select(t => new[] { t.Shard.ToString(System.Globalization.CultureInfo.InvariantCulture), HtmlText.Encode(t.JobId ?? ""), HtmlText.Encode(t.State),
                t.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "", $"{t.RunsDone}/{t.RunsTotal}" })));
        foreach (var t in Tasks.Where(t => t.LogTail is not null))
            html.Append("<details><summary>log of shard ").Append(t.Shard).Append(" (").Append(HtmlText.Encode(t.State)).Append(")</summary><pre>")
                .Append(HtmlText.Encode(t.LogTail)).Append("</pre></details>");
        if (BadLines.Count > 0)
            html.Append("<p>").Append(BadLines.Count).Append(" unreadable store line(s) (a run interrupted mid-write; it is redone on resubmit): ")
                .Append(HtmlText.Encode(string.Join("; ", BadLines.Select(b => $"{Path.GetFileName(b.File)}:{b.LineNumber}")))).Append("</p>");
        return html.Append("</div>").ToString();
    }

    /// <inheritdoc />
    public string ToText()
    {
        var text = new StringBuilder(Summary).Append('\n');
        text.Append(HtmlText.TextTable(["shard", "job", "state", "exit", "runs"],
            Tasks.Select(t => (IReadOnlyList<string>)[t.Shard.ToString(System.Globalization.CultureInfo.InvariantCulture), t.JobId ?? "", t.State,
                t.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "", $"{t.RunsDone}/{t.RunsTotal}"])));
        foreach (var t in Tasks.Where(t => t.LogTail is not null)) text.Append($"\nlog of shard {t.Shard} ({t.State}):\n{t.LogTail}\n");
        if (BadLines.Count > 0) text.Append($"\n{BadLines.Count} unreadable store line(s): {string.Join("; ", BadLines.Select(b => $"{Path.GetFileName(b.File)}:{b.LineNumber} {b.Reason}"))}\n");
        return text.ToString();
    }

    /// <inheritdoc />
    public string ToJson() => JsonSerializer.Serialize(this, SweepsJson.Default.SweepStatus);
}
