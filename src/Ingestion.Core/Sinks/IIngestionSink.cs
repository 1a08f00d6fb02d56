namespace Ingestion.Sinks;

/// <summary>
/// Where records go. A sink opens one writer per run attempt; the writer dedups, writes and commits
/// each batch together with its checkpoint state and rejected records.
/// </summary>
public interface IIngestionSink
{
    /// <summary>Opens a writer for one run attempt.</summary>
    /// <typeparam name="TRecord">The record type (a typed class or <see cref="DynamicRecord"/>).</typeparam>
    /// <param name="run">The run being written.</param>
    /// <param name="cancellationToken">Cancels opening.</param>
    /// <returns>The writer; dispose it to release its connection (rolling back anything uncommitted).</returns>
    ValueTask<ISinkWriter<TRecord>> OpenAsync<TRecord>(SinkRun run, CancellationToken cancellationToken)
        where TRecord : class;

    /// <summary>
    /// Names the target a source's rows go to (for PostgreSQL <c>schema.table</c>, defaults resolved). The runtime keeps
    /// it in the source's saved state: the saved cursor and HTTP validators belong to the source <em>and</em> this
    /// target, and are forgotten when the target changes, so a source pointed at a new table fills it instead of
    /// answering "not modified". <see langword="null"/>: the sink has no notion of target (nothing is tracked).
    /// </summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="options">The source's settings.</param>
    /// <returns>The target's identity, or <see langword="null"/>.</returns>
    string? DescribeTarget(string sourceName, SourceOptions options) =>
        options is { Table: { } table } ? (options.Schema is { } schema ? $"{schema}.{table}" : table) : null;
}

/// <summary>Writes the batches of one run attempt.</summary>
/// <typeparam name="TRecord">The record type.</typeparam>
public interface ISinkWriter<TRecord> : IAsyncDisposable
    where TRecord : class
{
    /// <summary>
    /// Writes one batch: dedups it by key (the last record of a key wins, the others count as
    /// duplicates), validates values (a bad value becomes a rejected record), writes the rest, stores
    /// <see cref="SinkBatch{TRecord}.Rejected"/> and saves <see cref="SinkBatch{TRecord}.State"/>,
    /// all in one transaction that commits unless the run is a dry run or runs in one transaction.
    /// </summary>
    /// <param name="batch">The batch.</param>
    /// <param name="cancellationToken">Cancels the batch; nothing of it is committed.</param>
    /// <returns>The batch's counts.</returns>
    /// <exception cref="RejectBudgetExceededException">The sink's own rejects exceed <see cref="SinkBatch{TRecord}.RejectBudget"/>; nothing of the batch is committed.</exception>
    ValueTask<SinkBatchResult> WriteBatchAsync(SinkBatch<TRecord> batch, CancellationToken cancellationToken);

    /// <summary>
    /// Ends a run whose source finished reading: commits a whole-run transaction, swaps a
    /// <see cref="WriteMode.Replace"/> table, applies deletion detection, or rolls everything back on a dry run.
    /// </summary>
    /// <param name="cancellationToken">Cancels completion; nothing uncommitted is committed.</param>
    /// <returns>What completion changed (e.g. rows deleted).</returns>
    ValueTask<SinkCompletion> CompleteAsync(CancellationToken cancellationToken);
}

/// <summary>
/// A writer whose per-batch work has a part that needs no database: checking values, hashing keys and rows, removing
/// duplicate keys. The runner calls <see cref="PrepareBatch"/> on its reading thread while the previous batch is still
/// being written, so that work overlaps the database's instead of leaving it idle; the result comes back in
/// <see cref="SinkBatch{TRecord}.Prepared"/>.
/// </summary>
/// <typeparam name="TRecord">The record type.</typeparam>
public interface IPreparingSinkWriter<TRecord> : ISinkWriter<TRecord>
    where TRecord : class
{
    /// <summary>
    /// Prepares records for a later <see cref="ISinkWriter{TRecord}.WriteBatchAsync"/>. Called concurrently with the
    /// write of the previous batch, so it must not use the writer's connection, and state it shares with the write must
    /// be guarded (the write must also check that what was prepared still holds). Calls come in batch order. Never throws for bad
    /// data: it returns <see langword="null"/> instead, and the write does the work (and reports the problem) itself.
    /// </summary>
    /// <param name="records">The records of the coming batch.</param>
    /// <param name="firstRecordNumber">The 1-based number of the first record in the run (for positions).</param>
    /// <returns>An opaque state for <see cref="SinkBatch{TRecord}.Prepared"/>, or <see langword="null"/>.</returns>
    object? PrepareBatch(IReadOnlyList<TRecord> records, long firstRecordNumber);

    /// <summary>
    /// As <see cref="PrepareBatch"/>, but the writer takes the array itself: nothing else reads the batch's records any
    /// more (the runner reads only its length, and no hook works beside the writer), so the writer may set entries it
    /// no longer needs to <see langword="null"/> (once it has encoded them, say) and let the collector reclaim them
    /// while the batch is still in flight. <see cref="SinkBatch{TRecord}.Records"/> of the batch is that same array.
    /// The default does what <see cref="PrepareBatch"/> does and releases nothing.
    /// </summary>
    /// <param name="records">The records of the coming batch; the writer owns the array from this call on.</param>
    /// <param name="firstRecordNumber">The 1-based number of the first record in the run (for positions).</param>
    /// <returns>An opaque state for <see cref="SinkBatch{TRecord}.Prepared"/>, or <see langword="null"/>.</returns>
    object? PrepareReleasableBatch(TRecord[] records, long firstRecordNumber) => PrepareBatch(records, firstRecordNumber);

    /// <summary>
    /// How many batches handed over and not yet written <see cref="PrepareBatch"/> may be called behind: 1 (the default)
    /// or 2. Read before each batch is handed over. At 2 the runner hands the next batch over while the one before is
    /// still being written; writes still run one at a time and in order, but a call to <see cref="PrepareBatch"/> may
    /// then come while the two batches before it are not yet written.
    /// </summary>
    int BatchesPreparedAhead => 1;
}

/// <summary>What a sink needs to know about the run it writes.</summary>
public sealed class SinkRun
{
    /// <summary>The source name.</summary>
    public required string SourceName { get; init; }

    /// <summary>The run (import job) identifier.</summary>
    public required Guid RunId { get; init; }

    /// <summary>The source's runtime settings (table, write mode, batch size, transaction scope...).</summary>
    public required SourceOptions Options { get; init; }

    /// <summary>The schema of typed records; <see langword="null"/> for <see cref="DynamicRecord"/> (each record carries its own).</summary>
    public RecordSchema? Schema { get; init; }

    /// <summary>Incremental or full refresh.</summary>
    public IngestionMode Mode { get; init; }

    /// <summary>Whether the sink must roll everything back at the end.</summary>
    public bool IsDryRun { get; init; }

    /// <summary>The state loaded at the start of the attempt; checkpoints are applied on top of it.</summary>
    public SourceState InitialState { get; init; } = SourceState.Empty;

    /// <summary>
    /// The run lock the run holds, or <see langword="null"/> outside a runner. A sink that can, proves in every
    /// transaction it commits that the lock is still the run's (<see cref="Stores.IRunLock.FencingToken"/>) and fails
    /// with <see cref="Stores.RunLockLostException"/>, committing nothing, when it is not.
    /// </summary>
    public Stores.IRunLock? RunLock { get; init; }

    /// <summary>Compare stored column values rather than stored row hashes, and rewrite what differs (<see cref="Running.RunRequest.Verify"/>).</summary>
    public bool Verify { get; init; }

    /// <summary>Masks the run's secrets in a record the sink rejects, before the sink stores it (identity by default).</summary>
    public Func<RejectedRecord, RejectedRecord> RedactRejected { get; init; } = static r => r;
}

/// <summary>One batch of records with what must commit alongside them.</summary>
/// <typeparam name="TRecord">The record type.</typeparam>
public sealed class SinkBatch<TRecord>
    where TRecord : class
{
    /// <summary>
    /// The records in read order. A batch handed to <see cref="IPreparingSinkWriter{TRecord}.PrepareReleasableBatch"/>
    /// may have entries that writer has released (set to <see langword="null"/>); its count stays the batch's.
    /// </summary>
    public required IReadOnlyList<TRecord> Records { get; init; }

    /// <summary>The 1-based number of the first record of the batch in the run (for rejected-record positions).</summary>
    public long FirstRecordNumber { get; init; } = 1;

    /// <summary>Records the source rejected since the previous batch: stored in the batch's transaction.</summary>
    public IReadOnlyList<RejectedRecord> Rejected { get; init; } = [];

    /// <summary>The source state to save with the batch (the last checkpoint applied), or <see langword="null"/> when no checkpoint was reported.</summary>
    public SourceState? State { get; init; }

    /// <summary>How many more records the sink may reject in this batch before the run's error budget is exceeded.</summary>
    public long RejectBudget { get; init; }

    /// <summary>
    /// What <see cref="IPreparingSinkWriter{TRecord}.PrepareBatch"/> returned for these records, or <see langword="null"/>
    /// when the batch was not prepared ahead (the writer then does that work itself).
    /// </summary>
    public object? Prepared { get; init; }

    /// <summary>
    /// Whether the sink may leave this batch uncommitted when it writes nothing for it (every row already stored
    /// unchanged, nothing rejected): the batch's counts and <see cref="State"/> are then recorded with the next batch
    /// the sink commits, or when the run completes, and the sink says so in <see cref="SinkBatchResult.CommitDeferred"/>.
    /// The runner allows it for runs that commit batch by batch with no sink hook attached, and ends such an attempt
    /// with an empty batch that may not defer, so every batch is committed and counted before the sink completes. A
    /// failure before that later commit loses nothing but the deferred checkpoint: a retried attempt reads those
    /// records again.
    /// </summary>
    public bool MayDeferCommit { get; init; }

    /// <summary>The position string of a record of this batch, given its index in <see cref="Records"/>.</summary>
    /// <param name="index">The index in the batch.</param>
    /// <returns>The position, e.g. <c>record 10042</c>.</returns>
    public string PositionOf(int index) => $"record {FirstRecordNumber + index}";
}

/// <summary>The counts of one written batch.</summary>
public sealed record SinkBatchResult
{
    /// <summary>Rows inserted.</summary>
    public long Created { get; init; }

    /// <summary>Rows whose content changed.</summary>
    public long Updated { get; init; }

    /// <summary>Rows already identical (not rewritten).</summary>
    public long Unchanged { get; init; }

    /// <summary>Records superseded by a later record of the same key in the batch.</summary>
    public long Duplicates { get; init; }

    /// <summary>Records the sink rejected (bad values), stored with their reasons.</summary>
    public IReadOnlyList<RejectedRecord> Rejected { get; init; } = [];

    /// <summary>Records of the batch linked to a duplicate from another source (cross-source dedup); they are also counted above.</summary>
    public long Linked { get; init; }

    /// <summary>Possible duplicates of the batch's records left for review (cross-source dedup).</summary>
    public long ForReview { get; init; }

    /// <summary>
    /// Whether the sink left the batch uncommitted (it wrote nothing; see <see cref="SinkBatch{TRecord}.MayDeferCommit"/>):
    /// its counts and checkpoint become durable with the next batch the sink commits, or when the run completes.
    /// </summary>
    public bool CommitDeferred { get; init; }
}

/// <summary>What completing a run changed.</summary>
public sealed record SinkCompletion
{
    /// <summary>Nothing beyond the batches.</summary>
    public static SinkCompletion None { get; } = new();

    /// <summary>Rows deleted or soft-deleted (full refresh, replace).</summary>
    public long Deleted { get; init; }

    /// <summary>
    /// Rows a batch counted as created that were found, when the run completed, to be a later version of a key an
    /// earlier batch had written (a first load past what the sink remembers of its keys): updates, to move from created
    /// to updated.
    /// </summary>
    public long RecountedAsUpdated { get; init; }

    /// <summary>As <see cref="RecountedAsUpdated"/>, for later versions equal to the earlier one: to move from created to unchanged.</summary>
    public long RecountedAsUnchanged { get; init; }
}

/// <summary>The run rejected more records than its error budget allows.</summary>
public sealed class RejectBudgetExceededException : IngestionException
{
    /// <summary>Creates the exception.</summary>
    public RejectBudgetExceededException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public RejectBudgetExceededException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public RejectBudgetExceededException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The rejected records of the batch that was not committed.</summary>
    public IReadOnlyList<RejectedRecord> Rejected { get; init; } = [];
}
