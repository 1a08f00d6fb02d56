namespace Ingestion.Scheduling;

/// <summary>Slot claims and history within one process (one host, tests). Thread-safe. Use the PostgreSQL store to share slots between hosts.</summary>
public sealed class InMemoryScheduleStore : IScheduleStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Schedule, DateTimeOffset Slot), SlotRow> _slots = [];
    private readonly List<ScheduleRun> _runs = [];
    private readonly Dictionary<string, SchedulePause> _pauses = new(StringComparer.Ordinal);

    /// <summary>Every history row, oldest first.</summary>
    public IReadOnlyList<ScheduleRun> Runs
    {
        get
        {
            lock (_lock)
            {
                return _runs.ToList();
            }
        }
    }

    /// <inheritdoc />
    public ValueTask<ClaimResult> TryClaimAsync(SlotClaim claim, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(claim);
        lock (_lock)
        {
            if (_slots.ContainsKey((claim.Schedule, claim.Slot)))
            {
                return ValueTask.FromResult(ClaimResult.AlreadyClaimed);
            }

            var overlapping = _slots.Values.Any(s => s.Claim.Schedule == claim.Schedule && s.Status == ScheduleRunStatus.Running && s.LeaseUntil > now);
            _slots[(claim.Schedule, claim.Slot)] = new SlotRow(claim, overlapping ? ScheduleRunStatus.Skipped : ScheduleRunStatus.Running, leaseUntil, now);
            return ValueTask.FromResult(overlapping ? ClaimResult.Overlapping : ClaimResult.Claimed);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<RunningClaim>> ListRunningClaimsAsync(string source, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            IReadOnlyList<RunningClaim> running = [.. _slots.Values
                .Where(s => s.Claim.Source == source && s.Status == ScheduleRunStatus.Running)
                .OrderByDescending(s => s.Claim.Slot)
                .Select(s => new RunningClaim(s.Claim, s.LeaseUntil))];
            return ValueTask.FromResult(running);
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> RenewAsync(SlotClaim claim, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(claim);
        lock (_lock)
        {
            if (_slots.TryGetValue((claim.Schedule, claim.Slot), out var row) && row.Status == ScheduleRunStatus.Running && row.Claim.Host == claim.Host)
            {
                _slots[(claim.Schedule, claim.Slot)] = row with { Claim = row.Claim with { Attempt = claim.Attempt }, LeaseUntil = leaseUntil };
                return ValueTask.FromResult(true);
            }

            return ValueTask.FromResult(false);
        }
    }

    /// <inheritdoc />
    public ValueTask CompleteAsync(SlotClaim claim, ScheduleRunStatus status, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(claim);
        lock (_lock)
        {
            if (_slots.TryGetValue((claim.Schedule, claim.Slot), out var row) && row.Claim.Host == claim.Host)
            {
                _slots[(claim.Schedule, claim.Slot)] = row with { Status = status, FinishedAt = now };
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<ExpiredClaim>> TakeOverExpiredAsync(string host, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
    {
        var taken = new List<ExpiredClaim>();
        lock (_lock)
        {
            foreach (var (key, row) in _slots.Where(kv => kv.Value.Status == ScheduleRunStatus.Running && kv.Value.LeaseUntil <= now && kv.Value.Claim.Host != host).ToList())
            {
                var claim = row.Claim with { Host = host };
                _slots[key] = row with { Claim = claim, LeaseUntil = leaseUntil };
                for (var i = 0; i < _runs.Count; i++)
                {
                    var r = _runs[i];
                    if (r.Schedule == key.Schedule && r.Slot == key.Slot && r.Status == ScheduleRunStatus.Running)
                    {
                        _runs[i] = r with { Status = ScheduleRunStatus.Abandoned, FinishedAt = now, Error = AbandonedMessage(row.Claim.Host, row.LeaseUntil) };
                    }
                }

                taken.Add(new ExpiredClaim(claim, row.Claim.Host));
            }
        }

        return ValueTask.FromResult<IReadOnlyList<ExpiredClaim>>(taken);
    }

    /// <inheritdoc />
    public ValueTask<DateTimeOffset?> GetLastSlotAsync(string schedule, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var slots = _slots.Values.Where(s => s.Claim.Schedule == schedule && s.Claim.Trigger == ScheduleTriggers.Schedule).Select(s => (DateTimeOffset?)s.Claim.Slot);
            return ValueTask.FromResult(slots.Max());
        }
    }

    /// <inheritdoc />
    public ValueTask AddRunAsync(ScheduleRun run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        lock (_lock)
        {
            _runs.Add(run);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask UpdateRunAsync(ScheduleRun run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        lock (_lock)
        {
            var i = _runs.FindIndex(r => r.Id == run.Id);
            if (i < 0)
            {
                throw new InvalidOperationException($"Schedule run {run.Id} of schedule '{run.Schedule}' was never added.");
            }

            // A run already marked abandoned by a host that took the slot over keeps that status.
            if (_runs[i].Status != ScheduleRunStatus.Abandoned)
            {
                _runs[i] = run;
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<ScheduleRun>> ListRunsAsync(int count, string? schedule, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            IReadOnlyList<ScheduleRun> list = _runs.Where(r => schedule is null || r.Schedule == schedule)
                .OrderByDescending(r => r.StartedAt).Take(count).ToList();
            return ValueTask.FromResult(list);
        }
    }

    /// <inheritdoc />
    public ValueTask SetPauseAsync(string schedule, SchedulePause? pause, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(schedule);
        lock (_lock)
        {
            if (pause is null)
            {
                _pauses.Remove(schedule);
            }
            else
            {
                _pauses[schedule] = pause;
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyDictionary<string, SchedulePause>> GetPausesAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return ValueTask.FromResult<IReadOnlyDictionary<string, SchedulePause>>(new Dictionary<string, SchedulePause>(_pauses, StringComparer.Ordinal));
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<ScheduleRunStatus>> GetRecentOutcomesAsync(string schedule, int count, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            IReadOnlyList<ScheduleRunStatus> list = _slots.Values
                .Where(s => s.Claim.Schedule == schedule && s.Status is ScheduleRunStatus.Succeeded or ScheduleRunStatus.Failed or ScheduleRunStatus.Cancelled)
                .OrderByDescending(s => s.FinishedAt).ThenByDescending(s => s.Claim.Slot).Take(count).Select(s => s.Status).ToList();
            return ValueTask.FromResult(list);
        }
    }

    /// <summary>The error recorded on an attempt whose host let its claim expire.</summary>
    /// <param name="host">The host.</param>
    /// <param name="leaseUntil">When its claim expired.</param>
    /// <returns>The message.</returns>
    public static string AbandonedMessage(string host, DateTimeOffset leaseUntil) =>
        $"host '{host}' stopped renewing its claim (expired at {leaseUntil:O}); the slot was taken over by another host";

    private sealed record SlotRow(SlotClaim Claim, ScheduleRunStatus Status, DateTimeOffset LeaseUntil, DateTimeOffset ClaimedAt)
    {
        public DateTimeOffset? FinishedAt { get; init; }
    }
}

/// <summary>The trigger names recorded with schedule slots.</summary>
public static class ScheduleTriggers
{
    /// <summary>A slot of the cron schedule.</summary>
    public const string Schedule = "schedule";

    /// <summary>A run-now request.</summary>
    public const string Manual = "manual";
}
