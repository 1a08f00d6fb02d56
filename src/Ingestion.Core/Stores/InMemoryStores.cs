using System.Collections.Concurrent;

namespace Ingestion.Stores;

/// <summary>An in-process job history, for hosts without a database and for tests. Thread-safe.</summary>
public sealed class InMemoryImportJobStore : IImportJobStore
{
    private readonly ConcurrentDictionary<Guid, ImportJob> _jobs = new();
    private readonly ConcurrentQueue<(Guid JobId, string Source, RejectedRecord Record)> _rejected = new();

    /// <summary>The rejected records stored outside batches.</summary>
    public IReadOnlyList<(Guid JobId, string Source, RejectedRecord Record)> Rejected => _rejected.ToArray();

    /// <inheritdoc />
    public ValueTask StartAsync(ImportJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        _jobs[job.Id] = job;
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask CompleteAsync(IngestionResult result, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(result);
        _jobs.AddOrUpdate(
            result.RunId,
            _ => throw new InvalidOperationException($"Job {result.RunId} of source '{result.SourceName}' was never started."),
            (_, job) => job with { FinishedAt = result.FinishedAt, Status = result.Status, Counts = result.Counts, Error = result.Error?.ToString() });
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask AddRejectedAsync(Guid jobId, string sourceName, IReadOnlyList<RejectedRecord> rejected, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rejected);
        foreach (var r in rejected)
        {
            _rejected.Enqueue((jobId, sourceName, r));
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<ImportJob>> CloseAbandonedAsync(string? sourceName, Guid? exceptRunId, TimeSpan staleAfter, CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        var closed = new List<ImportJob>();
        foreach (var job in _jobs.Values)
        {
            var lastAlive = job.HeartbeatAt ?? job.StartedAt;
            var dead = sourceName is null ? lastAlive < now - staleAfter : job.SourceName == sourceName && job.Id != exceptRunId;
            if (job.Status is null && dead)
            {
                var done = job with { Status = IngestionStatus.Abandoned, FinishedAt = lastAlive, Error = AbandonedJob.Error(job.Host, lastAlive) };
                if (_jobs.TryUpdate(job.Id, done, job))
                {
                    closed.Add(done);
                }
            }
        }

        return ValueTask.FromResult<IReadOnlyList<ImportJob>>(closed);
    }

    /// <inheritdoc />
    public ValueTask HeartbeatAsync(Guid runId, CancellationToken cancellationToken)
    {
        if (_jobs.TryGetValue(runId, out var job) && job.Status is null)
        {
            _jobs.TryUpdate(runId, job with { HeartbeatAt = DateTimeOffset.UtcNow }, job);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<ImportJob>> ListRecentAsync(int count, string? sourceName, CancellationToken cancellationToken)
    {
        IReadOnlyList<ImportJob> list = _jobs.Values
            .Where(j => sourceName is null || j.SourceName == sourceName)
            .OrderByDescending(j => j.StartedAt)
            .Take(count)
            .ToList();
        return ValueTask.FromResult(list);
    }

    /// <inheritdoc />
    public ValueTask<ImportJob?> GetAsync(Guid jobId, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_jobs.TryGetValue(jobId, out var job) ? job : null);

    /// <inheritdoc />
    public ValueTask<Page<ImportJob>> QueryAsync(ImportJobQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        query.ThrowIfInvalid();
        var matching = _jobs.Values.Where(query.Matches).OrderByDescending(j => j.StartedAt).ThenBy(j => j.Id).ToList();
        return ValueTask.FromResult(new Page<ImportJob>(matching.Skip(query.Offset).Take(query.Limit).ToList(), matching.Count, query.Offset, query.Limit));
    }

    /// <inheritdoc />
    public ValueTask<Page<StoredRejectedRecord>> ListRejectedAsync(Guid jobId, int offset, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var all = _rejected.Where(r => r.JobId == jobId).ToList();
        var items = all.Skip(offset).Take(limit)
            .Select(r => new StoredRejectedRecord(r.JobId, r.Source, r.Record.Position, r.Record.Field, r.Record.Reason, r.Record.RawValue))
            .ToList();
        return ValueTask.FromResult(new Page<StoredRejectedRecord>(items, all.Count, offset, limit));
    }
}

/// <summary>An in-process source-state store. Thread-safe.</summary>
public sealed class InMemorySourceStateStore : ISourceStateStore
{
    private readonly ConcurrentDictionary<string, SourceState> _states = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public ValueTask<SourceState> GetAsync(string sourceName, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_states.TryGetValue(sourceName, out var s) ? s : SourceState.Empty);

    /// <inheritdoc />
    public ValueTask SaveAsync(string sourceName, SourceState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(state);
        _states[sourceName] = state;
        return ValueTask.CompletedTask;
    }
}

/// <summary>Run locks within one process (no fencing: a lock held in memory cannot be lost while its process lives).</summary>
public sealed class InMemoryRunLockProvider : IRunLockProvider
{
    private readonly ConcurrentDictionary<string, Releaser> _held = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    /// <summary>Creates the provider.</summary>
    /// <param name="timeProvider">The clock of the acquisition times (the system clock when <see langword="null"/>).</param>
    public InMemoryRunLockProvider(TimeProvider? timeProvider = null) => _time = timeProvider ?? TimeProvider.System;

    /// <inheritdoc />
    public ValueTask<IRunLock?> TryAcquireAsync(string sourceName, Guid runId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        var releaser = new Releaser(this, sourceName, runId, _time.GetUtcNow());
        return ValueTask.FromResult<IRunLock?>(_held.TryAdd(sourceName, releaser) ? releaser : null);
    }

    /// <inheritdoc />
    public ValueTask<RunLockHolder?> GetHolderAsync(string sourceName, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_held.TryGetValue(sourceName, out var r) ? new RunLockHolder(sourceName, r.RunId, Environment.MachineName, r.AcquiredAt, 0) : null);

    private sealed class Releaser(InMemoryRunLockProvider owner, string name, Guid runId, DateTimeOffset acquiredAt) : IRunLock
    {
        private int _released;

        public string SourceName => name;

        public Guid RunId => runId;

        public DateTimeOffset AcquiredAt => acquiredAt;

        public long? FencingToken => null;

        public CancellationToken Lost => CancellationToken.None;

        public string? LostReason => null;

        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner._held.TryRemove(new KeyValuePair<string, Releaser>(name, this));
            }

            return ValueTask.CompletedTask;
        }
    }
}
