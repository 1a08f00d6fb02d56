using Ingestion.Scheduling;

namespace Ingestion.Notifications;

/// <summary>Why a notification is sent.</summary>
public enum NotificationKind
{
    /// <summary>A slot failed after its retries.</summary>
    Failure,
    /// <summary>A schedule failed several slots in a row.</summary>
    RepeatedFailure,
    /// <summary>A schedule succeeded after failing.</summary>
    Recovery,
    /// <summary>A slot succeeded and changed rows.</summary>
    SuccessWithChanges,
}

/// <summary>One notification about a slot.</summary>
public sealed record Notification
{
    /// <summary>Why it is sent.</summary>
    public required NotificationKind Kind { get; init; }

    /// <summary>The slot's outcome.</summary>
    public required SlotOutcome Outcome { get; init; }

    /// <summary>The schedule's failed slots in a row, this one included.</summary>
    public int ConsecutiveFailures { get; init; }

    /// <summary>A one-line title.</summary>
    public string Title => Kind switch
    {
        NotificationKind.Failure => $"Ingestion: schedule '{Outcome.Schedule}' (source '{Outcome.Source}') failed",
        NotificationKind.RepeatedFailure => $"Ingestion: schedule '{Outcome.Schedule}' (source '{Outcome.Source}') failed {ConsecutiveFailures} times in a row",
        NotificationKind.Recovery => $"Ingestion: schedule '{Outcome.Schedule}' (source '{Outcome.Source}') recovered",
        _ => $"Ingestion: schedule '{Outcome.Schedule}' (source '{Outcome.Source}') imported changes",
    };

    /// <summary>The body: slot, host, attempts, counts and error.</summary>
    public string Text
    {
        get
        {
            var o = Outcome;
            var text = $"Slot {o.Slot:yyyy-MM-dd HH:mm:ss}Z ({o.Trigger}) on host {o.Host}: {o.Status} after {o.Attempts} attempt(s).";
            if (o.Result is { } r)
            {
                text += $" Counts: {r.Counts}.";
            }

            if (o.Error is { } e)
            {
                text += $" Error: {e}";
            }

            return text;
        }
    }
}

/// <summary>Sends notifications somewhere (a webhook, e-mail...). Failures are logged by the caller and never fail a run.</summary>
public interface INotifier
{
    /// <summary>A name for logs.</summary>
    string Name { get; }

    /// <summary>Sends one notification.</summary>
    /// <param name="notification">The notification.</param>
    /// <param name="cancellationToken">Cancels the send.</param>
    /// <returns>A task that completes when it was accepted.</returns>
    Task SendAsync(Notification notification, CancellationToken cancellationToken);
}
