using Ingestion.Scheduling;

namespace Ingestion.Operations;

/// <summary>One configured schedule: its cron, whether it runs, its pause, its next slots and its latest run.</summary>
public sealed record ScheduleOverview
{
    /// <summary>The schedule name.</summary>
    public required string Name { get; init; }

    /// <summary>The source it runs.</summary>
    public required string Source { get; init; }

    /// <summary>The cron expression.</summary>
    public required string Cron { get; init; }

    /// <summary>The time zone the cron is read in (IANA or Windows id).</summary>
    public required string TimeZone { get; init; }

    /// <summary>Whether its slots run: scheduling, the schedule and its source are enabled, and it is not paused.</summary>
    public required bool Active { get; init; }

    /// <summary>Who paused it and when, or <see langword="null"/> when it is not paused.</summary>
    public SchedulePause? Pause { get; init; }

    /// <summary>The next slots, in UTC and in the schedule's time zone.</summary>
    public required IReadOnlyList<ScheduledTime> NextRuns { get; init; }

    /// <summary>The latest history row of the schedule (any host), or <see langword="null"/>.</summary>
    public ScheduleRun? LastRun { get; init; }
}

/// <summary>A slot time in UTC and in the schedule's own time zone.</summary>
/// <param name="Utc">The instant in UTC.</param>
/// <param name="Local">The same instant with the offset of the schedule's time zone.</param>
public sealed record ScheduledTime(DateTimeOffset Utc, DateTimeOffset Local);
