using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Ingestion.Hosting;
using Ingestion.Running;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Ingestion.Scheduling;

/// <summary>
/// The hosted scheduler: runs each schedule's source at its cron slots through <see cref="IIngestionRunner"/>.
/// Each slot is claimed in the <see cref="IScheduleStore"/> first, so hosts sharing a store run it exactly once;
/// the claim is renewed while the run goes on and taken over by another host when it expires. Missed slots follow
/// the schedule's <see cref="MisfirePolicy"/>; failed runs are retried per schedule; a slot due while the previous
/// one still runs is skipped and recorded. Configuration changes apply without restart. On shutdown, runs in
/// flight get the host's grace period, then are cancelled and recorded as cancelled.
/// </summary>
public sealed partial class IngestionScheduler : BackgroundService, IIngestionScheduler
{
    private readonly IIngestionRunner _runner;
    private readonly IScheduleStore _store;
    private readonly TimeProvider _time;
    private readonly IOptionsMonitor<SchedulingOptions> _options;
    private readonly IOptionsMonitor<SourceOptions> _sourceOptions;
    private readonly SourceCatalog _catalog;
    private readonly IReadOnlyList<IScheduleObserver> _observers;
    private readonly ILogger _logger;
    private readonly Diagnostics.IngestionTelemetry? _telemetry;
    private readonly string _host;
    private readonly CancellationTokenSource _runsCts = new();
    private readonly ConcurrentDictionary<long, Task> _inFlight = new();
    private readonly IDisposable?[] _subscriptions;
    private readonly Lock _configLock = new();
    private long _nextTaskId;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Compiled _compiled;
    private SchedulingOptions _lastSeen;
    private volatile bool _stopping;
    private DateTimeOffset? _startedAt;

    /// <summary>Creates the scheduler and validates its configuration.</summary>
    /// <param name="runner">Runs the sources.</param>
    /// <param name="store">Slot claims and history.</param>
    /// <param name="options">The scheduling settings.</param>
    /// <param name="sourceOptions">The sources' settings (their <c>Enabled</c> flag).</param>
    /// <param name="ingestionOptions">The global settings (the host name).</param>
    /// <param name="catalog">The registered sources.</param>
    /// <param name="observers">Observers of finished slots.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="logger">The logger, or <see langword="null"/>.</param>
    /// <param name="telemetry">Records schedule lag, or <see langword="null"/>.</param>
    /// <exception cref="OptionsValidationException">The configuration is invalid; every problem names its setting.</exception>
    public IngestionScheduler(
        IIngestionRunner runner,
        IScheduleStore store,
        IOptionsMonitor<SchedulingOptions> options,
        IOptionsMonitor<SourceOptions> sourceOptions,
        IOptions<IngestionOptions> ingestionOptions,
        SourceCatalog catalog,
        IEnumerable<IScheduleObserver> observers,
        TimeProvider timeProvider,
        ILogger<IngestionScheduler>? logger = null,
        Diagnostics.IngestionTelemetry? telemetry = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(ingestionOptions);
        _runner = runner ?? throw new ArgumentNullException(nameof(runner));
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _options = options;
        _sourceOptions = sourceOptions ?? throw new ArgumentNullException(nameof(sourceOptions));
        _catalog = catalog ?? throw new ArgumentNullException(nameof(catalog));
        _observers = observers?.ToList() ?? [];
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _telemetry = telemetry;
        _host = ingestionOptions.Value.HostName;
        _lastSeen = options.CurrentValue;
        _compiled = Compile(_lastSeen);
        if (_compiled.Errors.Count > 0)
        {
            throw new OptionsValidationException(SchedulingOptions.SectionName, typeof(SchedulingOptions), _compiled.Errors);
        }

        _subscriptions = [options.OnChange(_ => Wake()), sourceOptions.OnChange((_, _) => Wake())];
    }

    /// <summary>The host name recorded on claims and history rows.</summary>
    public string HostName => _host;

    /// <inheritdoc />
    public IReadOnlyList<NextRuns> GetNextRuns(DateTimeOffset from, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var config = CurrentConfig();
        return config.Schedules.Values.OrderBy(s => s.Name, StringComparer.Ordinal)
            .Select(s => new NextRuns(s.Name, s.Source, s.Cron.Expression, s.Cron.TimeZone, IsActive(config, s), s.Cron.GetOccurrences(from, DateTimeOffset.MaxValue, count)))
            .ToList();
    }

    /// <inheritdoc />
    public async Task<SlotOutcome> RunNowAsync(string schedule, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (_stopping)
        {
            throw new InvalidOperationException($"The scheduler is stopping; schedule '{schedule}' was not run.");
        }

        var def = CurrentConfig().Schedules.GetValueOrDefault(schedule)
            ?? throw new ArgumentException($"No schedule is named '{schedule}' (configured: {string.Join(", ", CurrentConfig().Schedules.Keys.Order(StringComparer.Ordinal))}).", nameof(schedule));
        var claim = new SlotClaim { Schedule = def.Name, Source = def.Source, Slot = _time.GetUtcNow(), Host = _host, Trigger = ScheduleTriggers.Manual };
        var task = Track(() => ClaimAndRunAsync(def, claim, cancellationToken));
        return await task.ConfigureAwait(false) ?? throw new InvalidOperationException($"The manual slot of schedule '{schedule}' was already claimed.");
    }

    /// <inheritdoc />
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Slots after this instant are this host's to run, even if the loop gets going a little later.
        _startedAt = _time.GetUtcNow();
        return base.StartAsync(cancellationToken);
    }

    /// <inheritdoc />
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        var pending = _inFlight.Values.ToArray();
        if (pending.Length == 0)
        {
            return;
        }

        LogWaitingForRuns(_logger, pending.Length);
        try
        {
            await Task.WhenAll(pending).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogCancellingRuns(_logger, pending.Length);
            await _runsCts.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        foreach (var s in _subscriptions)
        {
            s?.Dispose();
        }

        _runsCts.Dispose();
        base.Dispose();
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var states = new Dictionary<string, ScheduleState>(StringComparer.Ordinal);
        var nextRecovery = _time.GetUtcNow();
        var firstPass = true;
        LogStarted(_logger, _host, CurrentConfig().Schedules.Count);
        while (!stoppingToken.IsCancellationRequested)
        {
            var wake = Volatile.Read(ref _wake);
            var config = CurrentConfig();
            var now = _time.GetUtcNow();
            var retryAfter = TimeSpan.Zero;
            try
            {
                foreach (var name in states.Keys.Where(n => !config.Schedules.ContainsKey(n)).ToList())
                {
                    states.Remove(name);
                }

                foreach (var def in config.Schedules.Values)
                {
                    if (!states.TryGetValue(def.Name, out var state) || !state.Def.SameTiming(def))
                    {
                        var last = await _store.GetLastSlotAsync(def.Name, stoppingToken).ConfigureAwait(false);
                        var baseline = firstPass && _startedAt is { } started && started < now ? started : now;
                        state = new ScheduleState(def) { Next = def.Cron.GetNextOccurrence(last is { } l && l < now ? l : baseline) };
                        states[def.Name] = state;
                    }
                    else
                    {
                        state.Def = def;
                    }

                    if (!IsActive(config, def))
                    {
                        if (state.Next is { } n && n <= now)
                        {
                            state.Next = def.Cron.GetNextOccurrence(now);
                        }

                        continue;
                    }

                    ProcessDue(state, now);
                }

                firstPass = false;
                // A stopping host leaves expired claims to hosts that stay up (or to the next one to start).
                if (now >= nextRecovery && !_stopping)
                {
                    await RecoverAsync(config, now, stoppingToken).ConfigureAwait(false);
                    nextRecovery = now + config.Options.RecoveryInterval;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // the loop must survive a store outage; it logs and tries again
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogLoopFailed(_logger, e);
                retryAfter = TimeSpan.FromSeconds(Math.Min(5, Math.Max(1, config.Options.RecoveryInterval.TotalSeconds)));
            }

            var wakeAt = states.Values.Select(s => s.Next).Where(n => n is not null).Select(n => n!.Value).Append(nextRecovery).Min();
            var delay = retryAfter > TimeSpan.Zero ? retryAfter : wakeAt - _time.GetUtcNow();
            if (delay > TimeSpan.Zero)
            {
                try
                {
                    await Task.WhenAny(Task.Delay(delay, _time, stoppingToken), wake.Task).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }
            }
        }
    }

    private void ProcessDue(ScheduleState state, DateTimeOffset now)
    {
        if (state.Next is not { } first || first > now)
        {
            return;
        }

        var def = state.Def;
        var o = def.Options;
        var onTimeFrom = now - o.MisfireThreshold;
        var start = first.AddTicks(-1);
        var onTime = def.Cron.GetOccurrences(start > onTimeFrom.AddTicks(-1) ? start : onTimeFrom.AddTicks(-1), now, 10_000);

        // Missed slots: from the first due slot to the threshold; when there are very many, keep the latest.
        IReadOnlyList<DateTimeOffset> missed = [];
        var missedCount = 0L;
        if (first < onTimeFrom)
        {
            var from = start;
            var bound = onTimeFrom.AddTicks(-1);
            missed = def.Cron.GetOccurrences(from, bound, 10_001);
            while (missed.Count > 10_000)
            {
                missedCount += 10_000;
                from += (bound - from) / 2;
                missed = def.Cron.GetOccurrences(from, bound, 10_001);
            }

            missedCount += missed.Count;
        }

        var latest = onTime.Count > 0 ? onTime[^1] : missed.Count > 0 ? missed[^1] : first;
        state.Next = def.Cron.GetNextOccurrence(latest);

        List<DateTimeOffset> toRun = [.. onTime];
        if (missed.Count > 0)
        {
            var caughtUp = o.Misfire switch
            {
                MisfirePolicy.CatchUp => missed.TakeLast(o.MaxCatchUp).ToList(),
                MisfirePolicy.RunOnce when onTime.Count == 0 => [missed[^1]],
                _ => [],
            };
            LogMisfire(_logger, def.Name, missedCount, o.Misfire, caughtUp.Count);
            toRun.InsertRange(0, caughtUp);
        }

        if (toRun.Count > 0)
        {
            _ = Track(async () =>
            {
                SlotOutcome? last = null;
                foreach (var slot in toRun)
                {
                    var claim = new SlotClaim { Schedule = def.Name, Source = def.Source, Slot = slot, Host = _host, Trigger = ScheduleTriggers.Schedule };
                    last = await ClaimAndRunAsync(def, claim, CancellationToken.None).ConfigureAwait(false) ?? last;
                    if (_stopping)
                    {
                        break;
                    }
                }

                return last;
            });
        }
    }

    private async Task<SlotOutcome?> ClaimAndRunAsync(ScheduleDef def, SlotClaim claim, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        if (claim.Trigger == ScheduleTriggers.Schedule
            && (await _store.GetPausesAsync(cancellationToken).ConfigureAwait(false)).TryGetValue(def.Name, out var pause))
        {
            // A paused schedule's slots are passed over (not claimed, not recorded); a manual run still goes.
            LogPaused(_logger, def.Name, claim.Slot, pause.PausedBy ?? "?", pause.PausedAt);
            return null;
        }

        var result = await _store.TryClaimAsync(claim, now, now + CurrentConfig().Options.ClaimLease, cancellationToken).ConfigureAwait(false);
        switch (result)
        {
            case ClaimResult.AlreadyClaimed:
                return null;
            case ClaimResult.Overlapping:
                var error = $"skipped: the previous run of schedule '{def.Name}' was still going at slot {claim.Slot:O}";
                LogOverlap(_logger, def.Name, claim.Slot);
                await _store.AddRunAsync(NewRun(claim, ScheduleRunStatus.Skipped, now) with { FinishedAt = now, Error = error }, CancellationToken.None).ConfigureAwait(false);
                var skipped = new SlotOutcome { Schedule = def.Name, Source = def.Source, Slot = claim.Slot, Trigger = claim.Trigger, Host = _host, Status = ScheduleRunStatus.Skipped, Error = error };
                await NotifyAsync(skipped).ConfigureAwait(false);
                return skipped;
            default:
                return await RunSlotAsync(def, claim, 1, takenOver: false, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<SlotOutcome> RunSlotAsync(ScheduleDef def, SlotClaim claim, int firstAttempt, bool takenOver, CancellationToken cancellationToken)
    {
        var o = def.Options;
        if (claim.Trigger == ScheduleTriggers.Schedule && firstAttempt == 1 && !takenOver)
        {
            _telemetry?.ScheduleLag(def.Name, _time.GetUtcNow() - claim.Slot);
        }

        using var runCts = CancellationTokenSource.CreateLinkedTokenSource(_runsCts.Token, cancellationToken);
        using var heartbeatCts = new CancellationTokenSource();
        var current = claim with { Attempt = firstAttempt };
        var heartbeat = HeartbeatAsync(() => current, runCts, heartbeatCts.Token);
        var status = ScheduleRunStatus.Failed;
        IngestionResult? lastResult = null;
        string? error = null;
        var attempt = firstAttempt;
        try
        {
            for (; ; attempt++)
            {
                if (attempt > firstAttempt)
                {
                    LogRetrying(_logger, def.Name, claim.Slot, attempt, o.RetryAttempts, o.RetryDelay);
                    try
                    {
                        await Task.Delay(o.RetryDelay, _time, runCts.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        attempt--;
                        status = ScheduleRunStatus.Cancelled;
                        error = $"cancelled while waiting to retry: {error}";
                        break;
                    }

                    current = claim with { Attempt = attempt };
                    _ = await _store.RenewAsync(current, _time.GetUtcNow() + CurrentConfig().Options.ClaimLease, CancellationToken.None).ConfigureAwait(false);
                }

                var run = NewRun(current, ScheduleRunStatus.Running, _time.GetUtcNow());
                await _store.AddRunAsync(run, CancellationToken.None).ConfigureAwait(false);
                string? details = null;
                try
                {
                    var request = new RunRequest
                    {
                        Mode = o.Mode,
                        Trigger = claim.Trigger == ScheduleTriggers.Manual ? $"manual:{def.Name}" : $"schedule:{def.Name}",
                        Parameters = new Dictionary<string, string>(o.Parameters, StringComparer.Ordinal),
                    };
                    lastResult = await _runner.RunAsync(def.Source, request, runCts.Token).ConfigureAwait(false);
                    (status, error) = Map(lastResult);
                    if (status == ScheduleRunStatus.Skipped && takenOver)
                    {
                        (status, error) = await TakenOverButLockedAsync(def, claim).ConfigureAwait(false);
                    }
                    details = Details(lastResult);
                }
#pragma warning disable CA1031 // a runner failure (e.g. its store is down) fails the attempt, never the scheduler
                catch (Exception e)
#pragma warning restore CA1031
                {
                    status = runCts.IsCancellationRequested ? ScheduleRunStatus.Cancelled : ScheduleRunStatus.Failed;
                    error = $"{e.GetType().Name}: {e.Message}";
                }

                await _store.UpdateRunAsync(run with { Status = status, FinishedAt = _time.GetUtcNow(), Error = error, Details = details }, CancellationToken.None).ConfigureAwait(false);
                LogAttemptEnded(_logger, def.Name, claim.Slot, attempt, status, error);
                if (status != ScheduleRunStatus.Failed || attempt >= o.RetryAttempts || runCts.IsCancellationRequested)
                {
                    break;
                }
            }
        }
        finally
        {
            await heartbeatCts.CancelAsync().ConfigureAwait(false);
            await heartbeat.ConfigureAwait(false);
        }

        await _store.CompleteAsync(current, status, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
        var outcome = new SlotOutcome
        {
            Schedule = def.Name,
            Source = def.Source,
            Slot = claim.Slot,
            Trigger = claim.Trigger,
            Host = _host,
            Status = status,
            Attempts = attempt,
            Result = lastResult,
            Error = error,
        };
        await NotifyAsync(outcome).ConfigureAwait(false);
        return outcome;
    }

    private async Task HeartbeatAsync(Func<SlotClaim> claim, CancellationTokenSource run, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var lease = CurrentConfig().Options.ClaimLease;
            try
            {
                await Task.Delay(lease / 3, _time, stop).ConfigureAwait(false);
                var c = claim();
                if (!await _store.RenewAsync(c, _time.GetUtcNow() + lease, stop).ConfigureAwait(false))
                {
                    LogClaimLost(_logger, c.Schedule, c.Slot);
                    await run.CancelAsync().ConfigureAwait(false);
                    return;
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // a failed renewal is retried at the next beat; the lease covers two more
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogRenewFailed(_logger, e, claim().Schedule);
            }
        }
    }

    private async Task RecoverAsync(Compiled config, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var expired = await _store.TakeOverExpiredAsync(_host, now, now + config.Options.ClaimLease, cancellationToken).ConfigureAwait(false);
        foreach (var e in expired)
        {
            var claim = e.Claim;
            var def = config.Schedules.GetValueOrDefault(claim.Schedule);
            LogTakenOver(_logger, claim.Schedule, claim.Slot, e.PreviousHost, claim.Attempt);
            if (def is not null && claim.Attempt < def.Options.RetryAttempts && !_stopping)
            {
                _ = Track(async () => await RunSlotAsync(def, claim, claim.Attempt + 1, takenOver: true, CancellationToken.None).ConfigureAwait(false));
                continue;
            }

            var error = InMemoryScheduleStore.AbandonedMessage(e.PreviousHost, now) + (def is null ? "; the schedule is no longer configured" : "; no attempts left");
            await _store.CompleteAsync(claim, ScheduleRunStatus.Failed, now, CancellationToken.None).ConfigureAwait(false);
            await NotifyAsync(new SlotOutcome
            {
                Schedule = claim.Schedule,
                Source = claim.Source,
                Slot = claim.Slot,
                Trigger = claim.Trigger,
                Host = _host,
                Status = ScheduleRunStatus.Failed,
                Attempts = claim.Attempt,
                Error = error,
            }).ConfigureAwait(false);
        }
    }

    private async Task NotifyAsync(SlotOutcome outcome)
    {
        foreach (var observer in _observers)
        {
            try
            {
                await observer.OnSlotCompletedAsync(outcome, CancellationToken.None).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // an observer never changes the outcome
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogObserverFailed(_logger, e, observer.GetType().Name, outcome.Schedule);
            }
        }
    }

    private Task<SlotOutcome?> Track(Func<Task<SlotOutcome?>> work)
    {
        var id = Interlocked.Increment(ref _nextTaskId);
        var task = Task.Run(async () =>
        {
            try
            {
                return await work().ConfigureAwait(false);
            }
#pragma warning disable CA1031 // a store failure loses this slot's record; it is logged, the scheduler goes on
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogSlotFailed(_logger, e);
                return null;
            }
            finally
            {
                _inFlight.TryRemove(id, out _);
            }
        });
        _inFlight[id] = task;
        if (task.IsCompleted)
        {
            _inFlight.TryRemove(id, out _);
        }

        return task;
    }

    private ScheduleRun NewRun(SlotClaim claim, ScheduleRunStatus status, DateTimeOffset now) => new()
    {
        Id = Guid.NewGuid(),
        Schedule = claim.Schedule,
        Source = claim.Source,
        Slot = claim.Slot,
        Host = _host,
        Trigger = claim.Trigger,
        Attempt = claim.Attempt,
        Status = status,
        StartedAt = now,
    };

    private static (ScheduleRunStatus Status, string? Error) Map(IngestionResult result) => result.Status switch
    {
        IngestionStatus.Succeeded or IngestionStatus.PartiallySucceeded or IngestionStatus.NotModified => (ScheduleRunStatus.Succeeded, null),
        IngestionStatus.AlreadyRunning => (ScheduleRunStatus.Skipped, $"skipped: source '{result.SourceName}' was already running (another schedule, a manual run or another host)"),
        IngestionStatus.Cancelled => (ScheduleRunStatus.Cancelled, result.Error?.ToString() ?? "cancelled"),
        _ => (ScheduleRunStatus.Failed, result.Error?.ToString() ?? "failed"),
    };

    private static string Details(IngestionResult r)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("runId", r.RunId);
            w.WriteString("status", r.Status.ToString());
            w.WriteNumber("attempts", r.Attempts);
            w.WriteNumber("read", r.Counts.Read);
            w.WriteNumber("created", r.Counts.Created);
            w.WriteNumber("updated", r.Counts.Updated);
            w.WriteNumber("unchanged", r.Counts.Unchanged);
            w.WriteNumber("duplicates", r.Counts.Duplicates);
            w.WriteNumber("rejected", r.Counts.Rejected);
            w.WriteNumber("deleted", r.Counts.Deleted);
            w.WriteBoolean("dryRun", r.IsDryRun);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private bool IsActive(Compiled config, ScheduleDef def) =>
        config.Options.Enabled && def.Options.Enabled && _sourceOptions.Get(def.Source).Enabled;

    private void Wake()
    {
        var previous = Interlocked.Exchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        previous.TrySetResult();
    }

    private Compiled CurrentConfig()
    {
        var current = _options.CurrentValue;
        lock (_configLock)
        {
            if (ReferenceEquals(current, _lastSeen))
            {
                return _compiled;
            }

            _lastSeen = current;
            var next = Compile(current);
            if (next.Errors.Count > 0)
            {
                // Keep running the last valid configuration; say once what is wrong with the new one.
                LogReloadRejected(_logger, string.Join(" ", next.Errors));
                return _compiled;
            }

            LogReloaded(_logger, next.Schedules.Count);
            _compiled = next;
            return next;
        }
    }

    private Compiled Compile(SchedulingOptions options)
    {
        var errors = options.Validate(_catalog);
        var schedules = new Dictionary<string, ScheduleDef>(StringComparer.Ordinal);
        if (errors.Count == 0)
        {
            foreach (var (name, o) in options.Schedules)
            {
                var zone = string.IsNullOrWhiteSpace(o.TimeZone) ? options.DefaultTimeZone : o.TimeZone;
                schedules[name] = new ScheduleDef(name, o.Source!, CronSchedule.Parse(o.Cron!, zone), o);
            }
        }

        return new Compiled(options, schedules, errors);
    }

    private sealed record Compiled(SchedulingOptions Options, IReadOnlyDictionary<string, ScheduleDef> Schedules, IReadOnlyList<string> Errors);

    private sealed record ScheduleDef(string Name, string Source, CronSchedule Cron, ScheduleOptions Options)
    {
        public bool SameTiming(ScheduleDef other) =>
            Source == other.Source && Cron.Expression == other.Cron.Expression && Cron.TimeZone.Id == other.Cron.TimeZone.Id;
    }

    private sealed class ScheduleState(ScheduleDef def)
    {
        public ScheduleDef Def { get; set; } = def;

        public DateTimeOffset? Next { get; set; }
    }

    [LoggerMessage(3000, LogLevel.Information, "Scheduler started on host {Host} with {Count} schedule(s)")]
    private static partial void LogStarted(ILogger logger, string host, int count);

    [LoggerMessage(3001, LogLevel.Warning, "Schedule {Schedule} missed {Missed} slot(s) (misfire policy {Policy}); running {Run} of them")]
    private static partial void LogMisfire(ILogger logger, string schedule, long missed, MisfirePolicy policy, int run);

    [LoggerMessage(3002, LogLevel.Warning, "Schedule {Schedule} slot {Slot:O} skipped: its previous run is still going")]
    private static partial void LogOverlap(ILogger logger, string schedule, DateTimeOffset slot);

    [LoggerMessage(3003, LogLevel.Warning, "Schedule {Schedule} slot {Slot:O} failed; attempt {Attempt} of {Max} in {Delay}")]
    private static partial void LogRetrying(ILogger logger, string schedule, DateTimeOffset slot, int attempt, int max, TimeSpan delay);

    [LoggerMessage(3004, LogLevel.Information, "Schedule {Schedule} slot {Slot:O} attempt {Attempt} ended {Status} {Error}")]
    private static partial void LogAttemptEnded(ILogger logger, string schedule, DateTimeOffset slot, int attempt, ScheduleRunStatus status, string? error);

    [LoggerMessage(3005, LogLevel.Error, "Schedule {Schedule} slot {Slot:O}: this host lost its claim (it expired and another host took it over); cancelling the run")]
    private static partial void LogClaimLost(ILogger logger, string schedule, DateTimeOffset slot);

    [LoggerMessage(3006, LogLevel.Warning, "Could not renew the claim of schedule {Schedule}; retrying at the next beat")]
    private static partial void LogRenewFailed(ILogger logger, Exception exception, string schedule);

    [LoggerMessage(3007, LogLevel.Warning, "Schedule {Schedule} slot {Slot:O}: took over the expired claim of host {PreviousHost} (attempt {Attempt})")]
    private static partial void LogTakenOver(ILogger logger, string schedule, DateTimeOffset slot, string previousHost, int attempt);

    [LoggerMessage(3008, LogLevel.Warning, "Schedule observer {Observer} failed for schedule {Schedule}; the outcome is unchanged")]
    private static partial void LogObserverFailed(ILogger logger, Exception exception, string observer, string schedule);

    [LoggerMessage(3009, LogLevel.Error, "A scheduled slot could not be recorded")]
    private static partial void LogSlotFailed(ILogger logger, Exception exception);

    [LoggerMessage(3010, LogLevel.Error, "The scheduler loop failed; retrying")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception);

    [LoggerMessage(3011, LogLevel.Error, "The new scheduling configuration is invalid and was not applied; the previous one stays in force: {Errors}")]
    private static partial void LogReloadRejected(ILogger logger, string errors);

    [LoggerMessage(3012, LogLevel.Information, "Scheduling configuration reloaded: {Count} schedule(s)")]
    private static partial void LogReloaded(ILogger logger, int count);

    [LoggerMessage(3015, LogLevel.Information, "Schedule {Schedule} slot {Slot:O} not run: the schedule was paused by {PausedBy} at {PausedAt:O}")]
    private static partial void LogPaused(ILogger logger, string schedule, DateTimeOffset slot, string pausedBy, DateTimeOffset pausedAt);

    [LoggerMessage(3013, LogLevel.Information, "Shutting down: waiting for {Count} run(s) in flight within the host's grace period")]
    private static partial void LogWaitingForRuns(ILogger logger, int count);

    [LoggerMessage(3014, LogLevel.Warning, "Grace period over: cancelling {Count} run(s) in flight; they are recorded as cancelled")]
    private static partial void LogCancellingRuns(ILogger logger, int count);
}
