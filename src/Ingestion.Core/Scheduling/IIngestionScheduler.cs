namespace Ingestion.Scheduling;

/// <summary>The scheduler's public face: run a schedule now, and list the next runs.</summary>
public interface IIngestionScheduler
{
    /// <summary>Runs a schedule now, through the same claim, retries, history and notifications as its slots.</summary>
    /// <param name="schedule">The schedule name.</param>
    /// <param name="cancellationToken">Cancels the run (recorded as cancelled).</param>
    /// <returns>The outcome.</returns>
    /// <exception cref="ArgumentException">No schedule has that name.</exception>
    /// <exception cref="InvalidOperationException">The scheduler is stopping.</exception>
    Task<SlotOutcome> RunNowAsync(string schedule, CancellationToken cancellationToken);

    /// <summary>The next slots of every configured schedule, from the current configuration.</summary>
    /// <param name="from">The instant after which slots are listed.</param>
    /// <param name="count">Slots per schedule.</param>
    /// <returns>One entry per schedule, in name order.</returns>
    IReadOnlyList<NextRuns> GetNextRuns(DateTimeOffset from, int count);
}

/// <summary>The next slots of one schedule.</summary>
/// <param name="Schedule">The schedule name.</param>
/// <param name="Source">The source.</param>
/// <param name="Cron">The cron expression.</param>
/// <param name="TimeZone">The time zone.</param>
/// <param name="Active">Whether it runs (scheduling, the schedule and the source are all enabled).</param>
/// <param name="Slots">The next slots (UTC).</param>
public sealed record NextRuns(string Schedule, string Source, string Cron, TimeZoneInfo TimeZone, bool Active, IReadOnlyList<DateTimeOffset> Slots);

/// <summary>How a slot ended.</summary>
public sealed record SlotOutcome
{
    /// <summary>The schedule.</summary>
    public required string Schedule { get; init; }

    /// <summary>The source.</summary>
    public required string Source { get; init; }

    /// <summary>The slot (UTC).</summary>
    public required DateTimeOffset Slot { get; init; }

    /// <summary><c>schedule</c> or <c>manual</c>.</summary>
    public required string Trigger { get; init; }

    /// <summary>The host that finished it.</summary>
    public required string Host { get; init; }

    /// <summary>The final status.</summary>
    public required ScheduleRunStatus Status { get; init; }

    /// <summary>The attempts made.</summary>
    public int Attempts { get; init; }

    /// <summary>The last attempt's result, when a run happened.</summary>
    public IngestionResult? Result { get; init; }

    /// <summary>The error when it did not succeed.</summary>
    public string? Error { get; init; }
}

/// <summary>Observes finished slots (notifications register one). Exceptions are logged and never change the outcome.</summary>
public interface IScheduleObserver
{
    /// <summary>A slot finished (after its retries), or was skipped.</summary>
    /// <param name="outcome">The outcome.</param>
    /// <param name="cancellationToken">Cancels the observer.</param>
    /// <returns>A task.</returns>
    ValueTask OnSlotCompletedAsync(SlotOutcome outcome, CancellationToken cancellationToken);
}
