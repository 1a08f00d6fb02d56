using System.Collections.Concurrent;
using Ingestion.Scheduling;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Ingestion.Notifications;

/// <summary>
/// Turns finished slots into notifications (failure, repeated failure, recovery, success with changes, as configured)
/// and sends them to every notifier: the configured webhooks and SMTP, and any <see cref="INotifier"/> in the container.
/// A failing schedule alerts at most once per <see cref="NotificationOptions.AlertWindow"/> for each kind of alert.
/// A notifier that fails or times out is logged; it never fails the run.
/// </summary>
public sealed partial class ScheduleNotifier : IScheduleObserver, IDisposable
{
    private readonly IOptionsMonitor<NotificationOptions> _options;
    private readonly IScheduleStore _store;
    private readonly IReadOnlyList<INotifier> _extra;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HttpClient _http = new();
    private readonly ConcurrentDictionary<(string Schedule, NotificationKind Kind), DateTimeOffset> _lastAlert = new();

    /// <summary>Creates the notifier.</summary>
    /// <param name="options">The settings.</param>
    /// <param name="store">The schedule history (for failures in a row).</param>
    /// <param name="notifiers">Notifiers registered in the container besides the configured ones.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="logger">The logger, or <see langword="null"/>.</param>
    public ScheduleNotifier(IOptionsMonitor<NotificationOptions> options, IScheduleStore store, IEnumerable<INotifier> notifiers, TimeProvider timeProvider, ILogger<ScheduleNotifier>? logger = null)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _extra = notifiers?.ToList() ?? [];
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <inheritdoc />
    public async ValueTask OnSlotCompletedAsync(SlotOutcome outcome, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        var o = _options.CurrentValue;
        if (o.Validate() is { Count: > 0 } errors)
        {
            LogInvalid(_logger, string.Join(" ", errors));
            return;
        }

        var notification = await DecideAsync(o, outcome, cancellationToken).ConfigureAwait(false);
        if (notification is null)
        {
            return;
        }

        var now = _time.GetUtcNow();
        var key = (outcome.Schedule, notification.Kind);
        if (notification.Kind is NotificationKind.Failure or NotificationKind.RepeatedFailure)
        {
            if (_lastAlert.TryGetValue(key, out var last) && now - last < o.AlertWindow)
            {
                LogSuppressed(_logger, outcome.Schedule, notification.Kind, o.AlertWindow);
                return;
            }

            _lastAlert[key] = now;
        }
        else if (notification.Kind == NotificationKind.Recovery)
        {
            _lastAlert.TryRemove((outcome.Schedule, NotificationKind.Failure), out _);
            _lastAlert.TryRemove((outcome.Schedule, NotificationKind.RepeatedFailure), out _);
        }

        await Task.WhenAll(Notifiers(o).Select(n => SendAsync(n, notification, o.Timeout))).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();

    private async Task<Notification?> DecideAsync(NotificationOptions o, SlotOutcome outcome, CancellationToken cancellationToken)
    {
        if (outcome.Status is not (ScheduleRunStatus.Failed or ScheduleRunStatus.Succeeded))
        {
            return null;
        }

        var recent = await _store.GetRecentOutcomesAsync(outcome.Schedule, Math.Max(o.RepeatedFailureThreshold, 2) + 1, cancellationToken).ConfigureAwait(false);
        if (outcome.Status == ScheduleRunStatus.Failed)
        {
            var inARow = Math.Max(1, recent.TakeWhile(s => s == ScheduleRunStatus.Failed).Count());
            if (o.OnRepeatedFailure && inARow >= o.RepeatedFailureThreshold)
            {
                return new Notification { Kind = NotificationKind.RepeatedFailure, Outcome = outcome, ConsecutiveFailures = inARow };
            }

            return o.OnFailure ? new Notification { Kind = NotificationKind.Failure, Outcome = outcome, ConsecutiveFailures = inARow } : null;
        }

        // recent[0] is this slot; the one before tells whether this is a recovery.
        if (o.OnRecovery && recent.Count > 1 && recent[1] == ScheduleRunStatus.Failed)
        {
            return new Notification { Kind = NotificationKind.Recovery, Outcome = outcome };
        }

        if (o.OnSuccessWithChanges && outcome.Result is { Counts: var c } && c.Created + c.Updated + c.Deleted > 0)
        {
            return new Notification { Kind = NotificationKind.SuccessWithChanges, Outcome = outcome };
        }

        return null;
    }

    private IEnumerable<INotifier> Notifiers(NotificationOptions o)
    {
        foreach (var (name, hook) in o.Webhooks)
        {
            if (hook.Enabled)
            {
                yield return new WebhookNotifier(name, new Uri(hook.Url!), _http);
            }
        }

        if (!string.IsNullOrWhiteSpace(o.Smtp.Host))
        {
            yield return new SmtpNotifier(o.Smtp);
        }

        foreach (var n in _extra)
        {
            yield return n;
        }
    }

    private async Task SendAsync(INotifier notifier, Notification notification, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout, _time);
        try
        {
            await notifier.SendAsync(notification, cts.Token).ConfigureAwait(false);
            LogSent(_logger, notification.Kind, notification.Outcome.Schedule, notifier.Name);
        }
#pragma warning disable CA1031 // a notifier that fails is logged and never fails the run
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogFailed(_logger, e, notifier.Name, notification.Kind, notification.Outcome.Schedule);
        }
    }

    [LoggerMessage(3100, LogLevel.Information, "Sent {Kind} notification for schedule {Schedule} to {Notifier}")]
    private static partial void LogSent(ILogger logger, NotificationKind kind, string schedule, string notifier);

    [LoggerMessage(3101, LogLevel.Error, "Notifier {Notifier} failed to send the {Kind} notification for schedule {Schedule}; the run is unaffected")]
    private static partial void LogFailed(ILogger logger, Exception exception, string notifier, NotificationKind kind, string schedule);

    [LoggerMessage(3102, LogLevel.Information, "{Kind} alert for schedule {Schedule} suppressed: one was sent within the last {Window}")]
    private static partial void LogSuppressed(ILogger logger, string schedule, NotificationKind kind, TimeSpan window);

    [LoggerMessage(3103, LogLevel.Error, "Notifications are not sent: the settings are invalid: {Errors}")]
    private static partial void LogInvalid(ILogger logger, string errors);
}
