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
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <returns>A handle that releases the lock when disposed, or <see langword="null"/> when another run holds it.</returns>
    ValueTask<IAsyncDisposable?> TryAcquireAsync(string sourceName, CancellationToken cancellationToken);
}
