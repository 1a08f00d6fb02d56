namespace Ingestion.Stores;

/// <summary>One recorded run of a source (a row of the import-job history).</summary>
public sealed record ImportJob
{
    /// <summary>The run identifier.</summary>
    public required Guid Id { get; init; }

    /// <summary>The source name.</summary>
    public required string SourceName { get; init; }

    /// <summary>What triggered the run.</summary>
    public required string Trigger { get; init; }

    /// <summary>Incremental or full refresh.</summary>
    public required IngestionMode Mode { get; init; }

    /// <summary>Whether it was a dry run.</summary>
    public bool IsDryRun { get; init; }

    /// <summary>The host process that ran it.</summary>
    public required string Host { get; init; }

    /// <summary>When it started.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>When it finished; <see langword="null"/> while running.</summary>
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>The status; <see langword="null"/> while running.</summary>
    public IngestionStatus? Status { get; init; }

    /// <summary>The counts (of committed work).</summary>
    public IngestionCounts Counts { get; init; }

    /// <summary>The error text when it failed.</summary>
    public string? Error { get; init; }

    /// <summary>Who asked for the run (a user name from the command line or an HTTP caller), when known.</summary>
    public string? RequestedBy { get; init; }

    /// <summary>When the run last showed it was alive (each committed batch and a periodic heartbeat); <see langword="null"/> when the store does not record it.</summary>
    public DateTimeOffset? HeartbeatAt { get; init; }
}

/// <summary>Records every run: opened when a run starts, closed with its result.</summary>
public interface IImportJobStore
{
    /// <summary>Records the start of a run.</summary>
    /// <param name="job">The job, without finish time or status.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the job is recorded.</returns>
    ValueTask StartAsync(ImportJob job, CancellationToken cancellationToken);

    /// <summary>Records the end of a run.</summary>
    /// <param name="result">The run's result (its <see cref="IngestionResult.RunId"/> names the job).</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the job is updated.</returns>
    ValueTask CompleteAsync(IngestionResult result, CancellationToken cancellationToken);

    /// <summary>Stores rejected records outside any batch transaction (e.g. those of a batch that failed the error budget).</summary>
    /// <param name="jobId">The run.</param>
    /// <param name="sourceName">The source.</param>
    /// <param name="rejected">The rejected records.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when they are stored.</returns>
    ValueTask AddRejectedAsync(Guid jobId, string sourceName, IReadOnlyList<RejectedRecord> rejected, CancellationToken cancellationToken);

    /// <summary>Lists the most recent jobs, newest first.</summary>
    /// <param name="count">How many.</param>
    /// <param name="sourceName">Only this source's jobs, or all when <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The jobs.</returns>
    ValueTask<IReadOnlyList<ImportJob>> ListRecentAsync(int count, string? sourceName, CancellationToken cancellationToken);

    /// <summary>Finds one job.</summary>
    /// <param name="jobId">The job (run) identifier.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The job, or <see langword="null"/> when no job has that identifier.</returns>
    ValueTask<ImportJob?> GetAsync(Guid jobId, CancellationToken cancellationToken);

    /// <summary>Lists jobs matching filters, newest first, one page at a time.</summary>
    /// <param name="query">The filters and the page.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The page and the number of matching jobs.</returns>
    /// <exception cref="ArgumentException">The query is invalid (<see cref="ImportJobQuery.Validate"/>).</exception>
    ValueTask<Page<ImportJob>> QueryAsync(ImportJobQuery query, CancellationToken cancellationToken);

    /// <summary>Lists the rejected records of a job in the order they were stored, one page at a time.</summary>
    /// <param name="jobId">The job.</param>
    /// <param name="offset">How many records to skip.</param>
    /// <param name="limit">The most records to return (1 to 1000).</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The page and the job's number of stored rejected records.</returns>
    ValueTask<Page<StoredRejectedRecord>> ListRejectedAsync(Guid jobId, int offset, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Closes, as <see cref="IngestionStatus.Abandoned"/>, the jobs still marked running whose run is gone: with
    /// <paramref name="sourceName"/>, every running job of that source but <paramref name="exceptRunId"/> (called by a
    /// run that holds the source's lock, so no other run of it can be alive); without, every running job whose last
    /// sign of life is older than <paramref name="staleAfter"/> (a host's start-up sweep). Their counts stay those of
    /// their committed batches.
    /// </summary>
    /// <param name="sourceName">The source whose lock the caller holds, or <see langword="null"/> for all sources.</param>
    /// <param name="exceptRunId">The caller's own run, left open.</param>
    /// <param name="staleAfter">How long without a heartbeat makes a job dead (used without <paramref name="sourceName"/>).</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>The jobs closed.</returns>
    ValueTask<IReadOnlyList<ImportJob>> CloseAbandonedAsync(string? sourceName, Guid? exceptRunId, TimeSpan staleAfter, CancellationToken cancellationToken);

    /// <summary>Records that a run is alive (a heartbeat between batches).</summary>
    /// <param name="runId">The run.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when it is recorded (never waits for a batch holding the job's row).</returns>
    ValueTask HeartbeatAsync(Guid runId, CancellationToken cancellationToken);
}

/// <summary>Loads and saves the state of each source (cursor, HTTP validators, timestamps).</summary>
/// <remarks>Checkpoints are saved by the sink in the transaction of their batch; this store saves the rest (last checked, last success).</remarks>
public interface ISourceStateStore
{
    /// <summary>Loads a source's state.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The saved state, or <see cref="SourceState.Empty"/>.</returns>
    ValueTask<SourceState> GetAsync(string sourceName, CancellationToken cancellationToken);

    /// <summary>Saves a source's state.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="state">The state.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when it is saved.</returns>
    ValueTask SaveAsync(string sourceName, SourceState state, CancellationToken cancellationToken);
}

/// <summary>Per-source run locks, so that two hosts never run the same source at once.</summary>
public interface IRunLockProvider
{
    /// <summary>Takes the source's run lock without waiting.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="runId">The run that will hold it (recorded as the holder, so others can name it).</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <returns>The held lock (dispose it to release), or <see langword="null"/> when another run holds it.</returns>
    ValueTask<IRunLock?> TryAcquireAsync(string sourceName, Guid runId, CancellationToken cancellationToken);

    /// <summary>Who holds (or last held) the source's run lock, when the provider records it.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The holder, or <see langword="null"/> when unknown.</returns>
    ValueTask<RunLockHolder?> GetHolderAsync(string sourceName, CancellationToken cancellationToken);
}

/// <summary>
/// A held run lock. A lock can be lost while its run goes on (its database connection died, another host took it
/// over): writers that fence check <see cref="FencingToken"/> in every transaction they commit, and
/// <see cref="Lost"/> is cancelled as soon as the loss is seen.
/// </summary>
public interface IRunLock : IAsyncDisposable
{
    /// <summary>The source whose lock this is.</summary>
    string SourceName { get; }

    /// <summary>The run holding it.</summary>
    Guid RunId { get; }

    /// <summary>
    /// A number that grows with every acquisition of the source's lock (a fencing token): a writer proves it still
    /// holds the lock by finding this number in the lock's record inside its own transaction.
    /// <see langword="null"/> when the provider does not fence (in-process locks).
    /// </summary>
    long? FencingToken { get; }

    /// <summary>Cancelled when the lock is found lost; the run must stop writing.</summary>
    CancellationToken Lost { get; }

    /// <summary>Why the lock was lost (naming the run that holds it now, when known), once <see cref="Lost"/> is cancelled.</summary>
    string? LostReason { get; }
}

/// <summary>The holder of a source's run lock, as recorded by the provider.</summary>
/// <param name="SourceName">The source.</param>
/// <param name="RunId">The run that took the lock.</param>
/// <param name="Host">The host process that took it.</param>
/// <param name="AcquiredAt">When it was taken.</param>
/// <param name="FencingToken">The fencing token of that acquisition.</param>
public sealed record RunLockHolder(string SourceName, Guid RunId, string Host, DateTimeOffset AcquiredAt, long FencingToken);

/// <summary>A run found that it no longer holds its source's run lock (another run took it over): nothing more is written.</summary>
public sealed class RunLockLostException : IngestionException
{
    /// <summary>Creates the exception.</summary>
    public RunLockLostException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public RunLockLostException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public RunLockLostException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The run that holds the lock now, when known.</summary>
    public RunLockHolder? Holder { get; init; }
}
