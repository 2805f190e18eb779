using System.Text.Json.Nodes;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ScalingInteractive.Core;

namespace ScalingInteractive.Display;

/// <summary>
/// A progress display (bar, done/total, elapsed, ETA, status, best so far) shown once through a host and
/// updated in place, at most every <see cref="MinimumInterval"/> so fast loops do not flood the front end.
/// </summary>
public sealed class ProgressDisplay : IProgressSink, IRichResult
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly IDisplayHandle? _handle;
    private readonly object _gate = new();
    private TimeSpan? _lastShown;

    /// <summary>Shows a new progress display on <paramref name="surface"/> (null: not shown, state only).</summary>
    public ProgressDisplay(string title, int? total, IDisplaySurface? surface)
    {
        Title = title;
        Total = total;
        _handle = surface?.Display(this);
    }

    /// <summary>Minimum time between two visible updates.</summary>
    public static TimeSpan MinimumInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>What is being done.</summary>
    public string Title { get; }

    /// <summary>Number of items in all (null: unknown).</summary>
    public int? Total { get; }

    /// <summary>Items done.</summary>
    public int Done { get; private set; }

    /// <summary>Current status line.</summary>
    public string? Status { get; private set; }

    /// <summary>Best result so far, as text.</summary>
    public string? Best { get; private set; }

    /// <summary>True after <see cref="Complete"/>.</summary>
    public bool IsComplete { get; private set; }

    /// <summary>Time since the display was created.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Number of visible updates sent to the host (for tests of throttling).</summary>
    public int UpdatesShown { get; private set; }

    /// <summary>Estimated time left from the mean time per item; null until one item is done or when the total is unknown.</summary>
    public TimeSpan? EstimatedRemaining =>
        Total is int total && Done > 0 && Done <= total ? TimeSpan.FromTicks(Elapsed.Ticks / Done * (total - Done)) : null;

    /// <inheritdoc />
    public void Report(int done, string? status = null, string? best = null)
    {
        lock (_gate)
        {
            Done = done;
            if (status is not null) Status = status;
            if (best is not null) Best = best;
            var now = _clock.Elapsed;
            if (_lastShown is TimeSpan last && now - last < MinimumInterval) return;
            _lastShown = now;
            Show();
        }
    }

    /// <inheritdoc />
    public void Complete(string? status = null)
    {
        lock (_gate)
        {
            IsComplete = true;
            if (Total is int total) Done = total;
            if (status is not null) Status = status;
            Show();
        }
    }

    private void Show()
    {
        UpdatesShown++;
        _handle?.Update(this);
    }

    /// <summary>Fraction done in [0, 1], or null when the total is unknown.</summary>
    public double? Fraction => Total is int t && t > 0 ? Math.Clamp((double)Done / t, 0, 1) : null;

    /// <inheritdoc />
    public string ToHtml()
    {
        var sb = new StringBuilder(HtmlText.Style).Append("<div class=\"si-progress\"><b>").Append(HtmlText.Encode(Title)).Append("</b> ");
        if (Fraction is double f)
            sb.Append("<span class=\"si-bar\"><div style=\"width:").Append((f * 100).ToString("F1", CultureInfo.InvariantCulture)).Append("%\"></div></span> ");
        sb.Append(HtmlText.Encode(CountsText()));
        if (Status is not null) sb.Append("<br/>").Append(HtmlText.Encode(Status));
        if (Best is not null) sb.Append("<br/>best: ").Append(HtmlText.Encode(Best));
        return sb.Append("</div>").ToString();
    }

    /// <inheritdoc />
    public string ToText()
    {
        var sb = new StringBuilder(Title).Append(": ").Append(CountsText());
        if (Status is not null) sb.Append(" | ").Append(Status);
        if (Best is not null) sb.Append(" | best: ").Append(Best);
        return sb.ToString();
    }

    /// <inheritdoc />
    public string ToJson() => new JsonObject
    {
        ["Title"] = Title, ["Total"] = Total, ["Done"] = Done, ["Status"] = Status, ["Best"] = Best,
        ["ElapsedSeconds"] = Elapsed.TotalSeconds, ["IsComplete"] = IsComplete,
    }.ToJsonString();

    private string CountsText()
    {
        string counts = Total is int t ? $"{Done}/{t}" : $"{Done}";
        string text = $"{counts}, elapsed {FormatSpan(Elapsed)}";
        if (IsComplete) return text + ", done";
        if (EstimatedRemaining is TimeSpan eta) text += $", ETA {FormatSpan(eta)}";
        return text;
    }

    /// <summary>Formats a duration as 1h02m, 3m05s or 4.2s.</summary>
    public static string FormatSpan(TimeSpan span) =>
        span.TotalHours >= 1 ? $"{(int)span.TotalHours}h{span.Minutes:00}m"
        : span.TotalMinutes >= 1 ? $"{(int)span.TotalMinutes}m{span.Seconds:00}s"
        : span.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture) + "s";
}
