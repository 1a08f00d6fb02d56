namespace Ingestion.Scheduling;

/// <summary>The status of a schedule slot or of one attempt at it.</summary>
public enum ScheduleRunStatus
{
    /// <summary>Claimed by a host and running (or waiting between attempts).</summary>
    Running,
    /// <summary>The source run ended without failing (succeeded, partially, or not modified).</summary>
    Succeeded,
    /// <summary>The run failed (after its retries, for a slot).</summary>
    Failed,
    /// <summary>The run was cancelled (host shutdown after the grace period); committed progress stays.</summary>
    Cancelled,
    /// <summary>The slot was not run: the previous run of the schedule (or of its source) was still going.</summary>
    Skipped,
    /// <summary>The attempt's host stopped renewing its claim (it died); another host retried or failed the slot.</summary>
    Abandoned,
    /// <summary>
    /// A taken-over slot found its source busy with the live run of a newer slot, which does this slot's work: the slot
    /// is not run, and its error names that run (schedule, slot, host).
    /// </summary>
    Superseded,
}

/// <summary>What <see cref="IScheduleStore.TryClaimAsync"/> decided.</summary>
public enum ClaimResult
{
    /// <summary>This host owns the slot and must run it.</summary>
    Claimed,
    /// <summary>Another host (or an earlier pass) already claimed the slot: do nothing.</summary>
    AlreadyClaimed,
    /// <summary>The slot is recorded as skipped by this host because another slot of the schedule is still running.</summary>
    Overlapping,
}

/// <summary>A host's claim on one slot of one schedule.</summary>
public sealed record SlotClaim
{
    /// <summary>The schedule name.</summary>
    public required string Schedule { get; init; }

    /// <summary>The source the schedule runs.</summary>
    public required string Source { get; init; }

    /// <summary>The slot (UTC), the identity of the run together with <see cref="Schedule"/>.</summary>
    public required DateTimeOffset Slot { get; init; }

    /// <summary>The host holding the claim.</summary>
    public required string Host { get; init; }

    /// <summary><c>schedule</c> or <c>manual</c>.</summary>
    public required string Trigger { get; init; }

    /// <summary>The attempt the holder is on (1-based).</summary>
    public int Attempt { get; init; } = 1;
}

/// <summary>A claim taken over from a host that stopped renewing it.</summary>
/// <param name="Claim">The claim, now held by the calling host, with the attempt the dead host was on.</param>
/// <param name="PreviousHost">The host that let the claim expire.</param>
public sealed record ExpiredClaim(SlotClaim Claim, string PreviousHost);

/// <summary>A running claim and when its lease ends (a lease in the past means its host stopped renewing it).</summary>
/// <param name="Claim">The claim.</param>
/// <param name="LeaseUntil">When the claim expires unless renewed.</param>
public sealed record RunningClaim(SlotClaim Claim, DateTimeOffset LeaseUntil);

/// <summary>One row of the schedule history: an attempt at a slot, or a skipped slot.</summary>
public sealed record ScheduleRun
{
    /// <summary>The row identifier.</summary>
    public required Guid Id { get; init; }

    /// <summary>The schedule name.</summary>
    public required string Schedule { get; init; }

    /// <summary>The source.</summary>
    public required string Source { get; init; }

    /// <summary>The slot (UTC).</summary>
    public required DateTimeOffset Slot { get; init; }

    /// <summary>The host that ran the attempt.</summary>
    public required string Host { get; init; }

    /// <summary><c>schedule</c> or <c>manual</c>.</summary>
    public required string Trigger { get; init; }

    /// <summary>The attempt number (1-based).</summary>
    public required int Attempt { get; init; }

    /// <summary>The status.</summary>
    public required ScheduleRunStatus Status { get; init; }

    /// <summary>When the attempt started.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>When it finished; <see langword="null"/> while running.</summary>
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>How long it took.</summary>
    public TimeSpan? Duration => FinishedAt - StartedAt;

    /// <summary>The error when it failed, was cancelled, skipped or abandoned.</summary>
    public string? Error { get; init; }

    /// <summary>Details as JSON: the import-job id, the ingestion status and counts.</summary>
    public string? Details { get; init; }
}

/// <summary>
/// Slot claims and the schedule history. Implementations make <see cref="TryClaimAsync"/> atomic across
/// every host sharing the store, so each slot is run by exactly one host.
/// Timestamps are supplied by the caller (its <see cref="TimeProvider"/>).
/// </summary>
public interface IScheduleStore
{
    /// <summary>
    /// Claims a slot for a host, atomically: <see cref="ClaimResult.AlreadyClaimed"/> when the slot has a claim;
    /// otherwise, when another slot of the schedule is running under an unexpired claim, records this slot as skipped
    /// and returns <see cref="ClaimResult.Overlapping"/>; otherwise records the claim until <paramref name="leaseUntil"/>.
    /// </summary>
    /// <param name="claim">The claim.</param>
    /// <param name="now">The current time.</param>
    /// <param name="leaseUntil">When the claim expires unless renewed.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The decision.</returns>
    ValueTask<ClaimResult> TryClaimAsync(SlotClaim claim, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken);

    /// <summary>Extends a running claim held by a host and records its current attempt.</summary>
    /// <param name="claim">The claim (schedule, slot, host, attempt).</param>
    /// <param name="leaseUntil">The new expiry.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether the host still holds the claim (<see langword="false"/>: it expired and another host took it over).</returns>
    ValueTask<bool> RenewAsync(SlotClaim claim, DateTimeOffset leaseUntil, CancellationToken cancellationToken);

    /// <summary>Records the final status of a slot held by a host.</summary>
    /// <param name="claim">The claim.</param>
    /// <param name="status">The final status.</param>
    /// <param name="now">The current time.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    ValueTask CompleteAsync(SlotClaim claim, ScheduleRunStatus status, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Takes over running claims of other hosts whose lease expired before <paramref name="now"/> (those hosts died; host names are unique per process): each now belongs to
    /// <paramref name="host"/> until <paramref name="leaseUntil"/>, and the dead host's running attempt is recorded as abandoned.
    /// </summary>
    /// <param name="host">The calling host.</param>
    /// <param name="now">The current time.</param>
    /// <param name="leaseUntil">The new expiry.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The claims taken over.</returns>
    ValueTask<IReadOnlyList<ExpiredClaim>> TakeOverExpiredAsync(string host, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken);

    /// <summary>
    /// The running claims on a source's slots (any schedule), newest slot first: who is running the source now. The
    /// scheduler uses it to tell a taken-over slot superseded by a newer live run from one blocked by a stalled host.
    /// The default implementation knows none.
    /// </summary>
    /// <param name="source">The source.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The running claims.</returns>
    ValueTask<IReadOnlyList<RunningClaim>> ListRunningClaimsAsync(string source, CancellationToken cancellationToken) =>
        ValueTask.FromResult<IReadOnlyList<RunningClaim>>([]);

    /// <summary>The latest scheduled (not manual) slot of a schedule that has a claim, for misfire detection after downtime.</summary>
    /// <param name="schedule">The schedule.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The slot, or <see langword="null"/> when the schedule never ran.</returns>
    ValueTask<DateTimeOffset?> GetLastSlotAsync(string schedule, CancellationToken cancellationToken);

    /// <summary>Adds a history row.</summary>
    /// <param name="run">The row.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    ValueTask AddRunAsync(ScheduleRun run, CancellationToken cancellationToken);

    /// <summary>Updates a history row (its status, finish time, error and details).</summary>
    /// <param name="run">The row.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    ValueTask UpdateRunAsync(ScheduleRun run, CancellationToken cancellationToken);

    /// <summary>Lists history rows, newest first.</summary>
    /// <param name="count">How many.</param>
    /// <param name="schedule">Only this schedule's, or all.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The rows.</returns>
    ValueTask<IReadOnlyList<ScheduleRun>> ListRunsAsync(int count, string? schedule, CancellationToken cancellationToken);

    /// <summary>The final statuses of a schedule's latest finished slots (succeeded, failed or cancelled), newest first.</summary>
    /// <param name="schedule">The schedule.</param>
    /// <param name="count">How many.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The statuses.</returns>
    ValueTask<IReadOnlyList<ScheduleRunStatus>> GetRecentOutcomesAsync(string schedule, int count, CancellationToken cancellationToken);

    /// <summary>Pauses a schedule for every host sharing the store (its slots are not run until resumed), or resumes it.</summary>
    /// <param name="schedule">The schedule.</param>
    /// <param name="pause">Who paused it and when, or <see langword="null"/> to resume.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    ValueTask SetPauseAsync(string schedule, SchedulePause? pause, CancellationToken cancellationToken);

    /// <summary>The paused schedules.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The pauses by schedule name.</returns>
    ValueTask<IReadOnlyDictionary<string, SchedulePause>> GetPausesAsync(CancellationToken cancellationToken);
}

/// <summary>A schedule paused by an operator: its slots are not run (a manual run still is) until it is resumed.</summary>
/// <param name="PausedAt">When it was paused.</param>
/// <param name="PausedBy">Who paused it, when known.</param>
public sealed record SchedulePause(DateTimeOffset PausedAt, string? PausedBy);
