using Ingestion.Postgres.Sql;
using Ingestion.Postgres.Stores;
using Ingestion.Sinks;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// Writes one run attempt into PostgreSQL over one connection. Per batch: validate every value on the
/// client (bad ones become rejected records), dedup by key (last wins), classify rows against the key
/// index (unchanged rows never cross the wire, keys known new are copied straight into the table), stage
/// the rest and merge them with exact counts, and store rejects and the checkpoint in the same transaction.
/// </summary>
internal sealed partial class PostgresSinkWriter<TRecord> : IPreparingSinkWriter<TRecord>
    where TRecord : class
{
    private const ulong KeySeed = 0x243f6a8885a308d3UL;
    private const ulong RowSeed = 0x13198a2e03707344UL;
    private const string NewRowsSavepoint = "ingestion_new_rows";
    private const string MergeSavepoint = "ingestion_merge";
    private const string MergePartSavepoint = "ingestion_merge_part";
    private const int ParallelPrepareMinRecords = 2048;

    private NpgsqlConnection _conn;
    private readonly SinkRun _run;
    private readonly string _storeSchema;
    private readonly string _defaultTargetSchema;
    private readonly PostgresSinkOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly bool _deferred;
    private readonly Dictionary<RecordSchema, TableMapping<TRecord>> _mappings = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<string> _tempTablesInTx = new(StringComparer.Ordinal);
    private readonly Counts _recounted = new();
    private NpgsqlTransaction? _tx;
    private TableMapping<TRecord>? _indexedMapping;
    private TableMapping<TRecord>? _lastMapping;
    private KeyHashIndex? _index;
    private Dictionary<ulong, int>? _keyScratch;
    private EncodedRows<TRecord>? _writingEncoded;
    private bool _indexComplete;
    private bool _changedRows;
    private bool _completed;
    private bool _disposed;
    private bool _copiedForgottenKeys;
    private bool _commitsToFlush;
    private readonly HashSet<NpgsqlConnection> _tunedSessions = [];
    private volatile bool _sendsMost = true;
    private long _lastCommit;
    private JobIncrement _deferredCounts;
    private SourceState? _deferredState;

    public PostgresSinkWriter(NpgsqlConnection conn, SinkRun run, string storeSchema, string defaultTargetSchema, PostgresSinkOptions options, ILogger logger, TimeProvider time)
    {
        _time = time;
        _lastCommit = time.GetTimestamp();
        _conn = conn;
        _run = run;
        _storeSchema = storeSchema;
        _defaultTargetSchema = defaultTargetSchema;
        _options = options;
        _logger = logger;
        _deferred = run.IsDryRun || run.Options.Transaction == TransactionScope.WholeRun || run.Options.WriteMode == WriteMode.Replace;

        // Two copies ahead take a third connection: not from a pool too small to give it without waiting for this run.
        _mayCopyTwoAhead = new NpgsqlConnectionStringBuilder(conn.ConnectionString) is { Pooling: false } or { MaxPoolSize: >= MaxCopiesAhead + 1 };
    }

    private string Source => _run.SourceName;

    private WriteMode Mode => _run.Options.WriteMode;

    public async ValueTask<SinkBatchResult> WriteBatchAsync(SinkBatch<TRecord> batch, CancellationToken cancellationToken)
    {
        try
        {
            var written = await WriteBatchCoreAsync(batch, cancellationToken).ConfigureAwait(false);
            Interlocked.Exchange(ref _writtenThrough, batch.FirstRecordNumber);
            return written;
        }
        catch
        {
            // Whatever failed, rows of this batch (or of the next, classified ahead) may be remembered without being
            // committed: the key index is read again before it is trusted, and a copy ahead is rolled back.
            SetIndex(null, null, complete: false);
            await DiscardCopyAheadAsync(cancel: cancellationToken.IsCancellationRequested).ConfigureAwait(false);
            throw;
        }
        finally
        {
            // The batch's copy ahead, if any, is over (taken or rolled back): its rows' bytes are of no more use.
            _writingEncoded = null;
            (batch.Prepared as PreparedRows)?.Release?.Dispose();
        }
    }

    private async ValueTask<SinkBatchResult> WriteBatchCoreAsync(SinkBatch<TRecord> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        if (_completed)
        {
            throw new InvalidOperationException($"The writer of source '{Source}' is already completed.");
        }

        var records = batch.Records;
        if (_deferred)
        {
            _tx ??= await BeginFencedAsync(cancellationToken).ConfigureAwait(false);
        }

        TableMapping<TRecord>? mapping = null;
        if (records.Count > 0)
        {
            mapping = await MappingAsync(SchemaOf(records[0]), cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _lastMapping, mapping);
        }

        // 1. Validate on the client (a bad value is a rejected record, never a failed COPY), hash, and dedup by key
        //    (the last record of a key wins): done ahead by PrepareBatch when the runner could, else here.
        if (batch.Prepared is PreparedRows { Release.Encoded: not null } released && !(ReferenceEquals(released.Mapping, mapping) && ReferenceEquals(released.Records, records)))
        {
            throw new InvalidOperationException($"Source '{Source}': the batch starting at {batch.PositionOf(0)} was prepared for another table mapping than its write found, and its records are already released: a bug of the PostgreSQL sink.");
        }

        var rows = mapping is null
            ? PreparedRows.Empty
            : batch.Prepared is PreparedRows p && ReferenceEquals(p.Mapping, mapping) && ReferenceEquals(p.Records, records)
                ? p
                : Prepare(mapping, records, batch.FirstRecordNumber, throwOnProblem: true)!;
        if (batch.Prepared is PreparedRows { Classified: { } dropped } && !ReferenceEquals(rows, batch.Prepared) && ReferenceEquals(dropped.Index, _index))
        {
            // Rows classified ahead but prepared again here are remembered with hashes this write may not send.
            SetIndex(null, null, complete: false);
        }
        var rejected = rows.Rejected;
        var keyHashes = rows.KeyHashes;
        var rowHashes = rows.RowHashes;
        var winners = rows.Winners;
        var duplicates = rows.Duplicates;

        if (rejected.Count > batch.RejectBudget)
        {
            var first = rejected[0];
            throw new RejectBudgetExceededException($"Source '{Source}': {rejected.Count} record(s) of the batch have bad values, more than the {batch.RejectBudget} the error budget (Ingestion:Sources:{Source}:MaxRejected) has left; first at {first.Position}, field {first.Field}: {first.Reason}")
            {
                SourceName = Source,
                Position = first.Position,
                Field = first.Field,
                Rejected = [.. batch.Rejected, .. rejected],
            };
        }

        if (!_deferred && mapping is not null && winners.Count > 0 && Mode == WriteMode.Merge && !_run.Verify)
        {
            // The key index is read before the batch's transaction begins (a read needs none): a batch that turns out
            // to write nothing then leaves no transaction open on the server.
            if (!ReferenceEquals(_indexedMapping, mapping))
            {
                await EndQuietTransactionAsync().ConfigureAwait(false);
            }

            await EnsureIndexAsync(mapping, cancellationToken).ConfigureAwait(false);
        }

        // The batch's new rows may already be copied on the other connection (PostgresSinkWriter.CopyAhead.cs).
        var copiedAhead = mapping is null ? null : await TakeCopyAheadAsync(batch, rows, cancellationToken).ConfigureAwait(false);

        // Read once the batch's copy ahead is over (taken or rolled back): it may have released the records, whose rows
        // are then copied from its bytes.
        _writingEncoded = rows.Release?.Encoded;

        Counts counts;
        List<int> indexUpdates;
        var commitDeferred = false;
        while (true)
        {
            if (_tx is null && mapping is not null && winners.Count > 0)
            {
                await TuneFirstLoadSessionAsync(_conn, mapping, cancellationToken).ConfigureAwait(false);
            }

            _tx ??= await BeginFencedAsync(cancellationToken).ConfigureAwait(false);
            counts = new Counts();
            indexUpdates = [];
            try
            {
                // Taken once: a batch written again (a refused value) rolled that copy back and copies its rows itself.
                var copied = copiedAhead;
                copiedAhead = null;
                var sent = mapping is not null && winners.Count > 0
                    && await WriteRowsAsync(mapping, batch, winners, rows.Sorted, keyHashes, rowHashes, rows.Classified, copied, counts, indexUpdates, cancellationToken).ConfigureAwait(false);
                var increment = new JobIncrement(batch.Records.Count + batch.Rejected.Count, counts.Created, counts.Updated, counts.Unchanged, duplicates, batch.Rejected.Count + rejected.Count);
                if (!_deferred && !sent && rejected.Count == 0 && batch.Rejected.Count == 0 && batch.MayDeferCommit && !QuietCommitDue())
                {
                    // Nothing written: the batch's counts and checkpoint wait for the next commit (the transaction,
                    // never begun on the server, stays open for it). See PostgresSinkOptions.QuietBatchCommitInterval.
                    _deferredCounts += increment;
                    _deferredState = batch.State ?? _deferredState;
                    commitDeferred = true;
                    break;
                }

                var allRejects = rejected.Count == 0 ? batch.Rejected : [.. batch.Rejected, .. rejected.Select(_run.RedactRejected)]; // hardening: the run's secrets masked
                await StoreSql.InsertRejectedAsync(_conn, _tx, PgIdentifier.Quote(_storeSchema), _run.RunId, Source, allRejects, _options.MaxRejectedValueLength, cancellationToken).ConfigureAwait(false);
                // Batches deferred before this one commit with it: their counts, and their checkpoint unless this
                // batch has a later one.
                await SaveStateAndCommitAsync(batch.State, increment, CommitsAsynchronously(mapping), cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (RefusedValueException e) when (!_deferred && rejected.Count < batch.RejectBudget)
            {
                // Within the error budget a value the table refuses costs its record, not the batch: the batch rolls
                // back (nothing of it was committed) and is written again without that record.
                await RollbackQuietlyAsync().ConfigureAwait(false);
                winners = [.. winners.Where(w => w != e.Row)];
                rejected = [.. rejected, new RejectedRecord(e.Position!, e.Field, e.Reason, e.RawValue)];
                LogRefusedValue(_logger, Source, e.Position!, e.Field ?? "?");
            }
            catch (RefusedValueException e)
            {
                // Past the budget (or in a run-long transaction) it fails the batch, as a plain IngestionException.
                if (!_deferred)
                {
                    await RollbackQuietlyAsync().ConfigureAwait(false);
                }

                throw new IngestionException(e.Message, e.InnerException) { SourceName = e.SourceName, Position = e.Position, Field = e.Field };
            }
            catch (Exception) when (!_deferred)
            {
                await RollbackQuietlyAsync(cancelCopyAhead: cancellationToken.IsCancellationRequested).ConfigureAwait(false);
                throw;
            }
        }

        // 3. The batch is committed (or part of the open run transaction): remember the hashes of rows appended or
        //    verified (a merge remembered its rows when it classified them).
        if (indexUpdates.Count > 0 && _index is not null && mapping is not null && ReferenceEquals(mapping, _indexedMapping))
        {
            var setter = new KeyHashIndex.StreamingSetter(_index);
            foreach (var i in indexUpdates)
            {
                setter.Add(keyHashes[i], rowHashes[i]);
            }

            setter.Flush();
        }

        if (counts.Created + counts.Updated > 0)
        {
            _changedRows = true;
        }

        return new SinkBatchResult { Created = counts.Created, Updated = counts.Updated, Unchanged = counts.Unchanged, Duplicates = duplicates, Rejected = rejected, CommitDeferred = commitDeferred };
    }

    public async ValueTask<SinkCompletion> CompleteAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _completed = true;
        long deleted = 0;
        await DiscardCopyAheadAsync().ConfigureAwait(false);

        // Batches that wrote nothing and waited for a later commit are recorded first, in their own fenced transaction.
        await CommitDeferredAsync(cancellationToken).ConfigureAwait(false);
        // A first load that ran without its key index builds it now that the rows are in; every run checks its key.
        await EnsureKeysAsync(cancellationToken).ConfigureAwait(false);

        if (Mode == WriteMode.Replace)
        {
            _tx ??= await BeginFencedAsync(cancellationToken).ConfigureAwait(false);
            var mapping = _mappings.Values.LastOrDefault();
            if (mapping is null && _run.Schema is { } typed)
            {
                mapping = await MappingAsync(typed, cancellationToken).ConfigureAwait(false);
            }

            if (mapping is not null)
            {
                await EnsureTempTableAsync(mapping.SeenName, mapping.CreateSeen, truncate: false, cancellationToken).ConfigureAwait(false);
                deleted = await ExecuteAsync(mapping.DeleteUnseen, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                LogReplaceWithoutSchema(_logger, Source);
            }
        }

        if (_tx is not null)
        {
            if (_run.IsDryRun)
            {
                await _tx.RollbackAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await _tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            }

            await EndTransactionAsync().ConfigureAwait(false);
        }

        if (!_run.IsDryRun && (_changedRows || deleted > 0) && _run.Options.RefreshMaterializedViews.Count > 0)
        {
            await RefreshViewsAsync(cancellationToken).ConfigureAwait(false);
        }

        // What the run committed is durable before it reports its end (a source may acknowledge upstream after that).
        await FlushCommitsAsync(cancellationToken).ConfigureAwait(false);

        return new SinkCompletion { Deleted = deleted, RecountedAsUpdated = _recounted.Updated, RecountedAsUnchanged = _recounted.Unchanged };
    }

    public async ValueTask DisposeAsync()
    {
        await DisposeOtherAsync().ConfigureAwait(false);
        await RollbackQuietlyAsync().ConfigureAwait(false);
        await _conn.DisposeAsync().ConfigureAwait(false);
    }

    private async ValueTask<TableMapping<TRecord>> MappingAsync(RecordSchema schema, CancellationToken cancellationToken)
    {
        if (_mappings.TryGetValue(schema, out var mapping))
        {
            return mapping;
        }

        var same = _mappings.Values.FirstOrDefault(m => SameColumns(m.Schema, schema));
        if (same is not null)
        {
            _mappings[schema] = same;
            return same;
        }

        // A table created or altered for a new schema commits on its own between batches, never inside the transaction
        // a batch that wrote nothing left for the next commit (a later rollback would undo it under a mapping that stays).
        // A copy ahead would hold the table against that DDL: it is rolled back first.
        await DiscardCopyAheadAsync().ConfigureAwait(false);
        await EndQuietTransactionAsync().ConfigureAwait(false);
        try
        {
            mapping = await TableMapping<TRecord>.PrepareAsync(_conn, _tx, _run, schema, _defaultTargetSchema, _options, _mappings.Count + 1, CanDeferKeyIndex, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidSchemaName)
        {
            var name = _run.Options.Schema ?? _defaultTargetSchema;
            var setting = _run.Options.Schema is null ? "Ingestion:Postgres:DefaultTargetSchema" : $"Ingestion:Sources:{Source}:Schema";
            throw new IngestionException($"Source '{Source}': the target schema '{name}' ({setting}) does not exist: create it (CREATE SCHEMA) or name an existing one. {e.MessageText}.", e)
            {
                SourceName = Source,
                Field = "Schema",
            };
        }

        _mappings[schema] = mapping;
        if (mapping.KeyIndexPending && !CanDeferKeyIndex)
        {
            // A first load that stopped before building the key (or one made under other settings): build it before
            // writing. In a run-long transaction it is built on a side connection and committed at once, so the run
            // never holds the build's exclusive lock (readers would wait for the whole run) nor upgrades its own lock.
            await BuildKeyIndexAsync(mapping, onSideConnection: _tx is not null, batchCounts: null, cancellationToken).ConfigureAwait(false);
        }

        return mapping;
    }

    private Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken) =>
        TableMapping<TRecord>.ExecuteAsync(_conn, _tx, sql, cancellationToken);

    private async Task RefreshViewsAsync(CancellationToken cancellationToken)
    {
        foreach (var view in _run.Options.RefreshMaterializedViews)
        {
            var dot = view.IndexOf('.', StringComparison.Ordinal);
            string quoted;
            try
            {
                quoted = dot < 0
                    ? PgIdentifier.Quote(view, $"Ingestion:Sources:{Source}:RefreshMaterializedViews")
                    : PgIdentifier.Qualify(view[..dot], view[(dot + 1)..]);
            }
            catch (ArgumentException e)
            {
                throw new IngestionException($"Source '{Source}': {e.Message}", e) { SourceName = Source };
            }

            var check = new NpgsqlCommand(
                """
                SELECT c.relkind = 'm', c.relispopulated AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL)
                FROM pg_class c WHERE c.oid = to_regclass($1)
                """,
                _conn);
            bool concurrently;
            await using (check.ConfigureAwait(false))
            {
                check.Parameters.Add(new NpgsqlParameter<string> { TypedValue = quoted, NpgsqlDbType = NpgsqlDbType.Text });
                var reader = await check.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false) || !reader.GetBoolean(0))
                    {
                        throw new IngestionException($"Source '{Source}': '{view}' (Ingestion:Sources:{Source}:RefreshMaterializedViews) is not a materialized view; the rows are committed, the refresh was not done.") { SourceName = Source };
                    }

                    concurrently = reader.GetBoolean(1);
                }
            }

            await ExecuteAsync($"REFRESH MATERIALIZED VIEW {(concurrently ? "CONCURRENTLY " : string.Empty)}{quoted}", cancellationToken).ConfigureAwait(false);
            LogViewRefreshed(_logger, Source, view, concurrently);
        }
    }

    private async Task EndTransactionAsync()
    {
        if (_tx is not null)
        {
            await _tx.DisposeAsync().ConfigureAwait(false);
            _tx = null;
        }

        _tempTablesInTx.Clear();
    }

    private async Task RollbackQuietlyAsync(bool cancelCopyAhead = false)
    {
        // Rows remembered for the rolled-back work (or classified ahead of it) may not exist: forget the index, it is
        // reloaded on the next batch, and batches classified against it are classified again.
        SetIndex(null, null, complete: false);
        await DiscardCopyAheadAsync(cancelCopyAhead).ConfigureAwait(false);
        if (_tx is null)
        {
            return;
        }

        try
        {
            if (_conn.State == System.Data.ConnectionState.Open)
            {
                await _tx.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or ObjectDisposedException)
        {
            LogRollbackFailed(_logger, e, Source);
        }

        await EndTransactionAsync().ConfigureAwait(false);

        // A key index built in the rolled-back transaction is gone with it: a table made without one is checked again.
        foreach (var m in _mappings.Values.Where(m => m.KeyMadeLater))
        {
            m.KeyIndexPending = true;
        }
    }

    [LoggerMessage(3000, LogLevel.Debug, "Source {SourceName}: key index of {Table} loaded with {Rows} rows (complete: {Complete})")]
    private static partial void LogIndexLoaded(ILogger logger, string sourceName, string table, int rows, bool complete);

    [LoggerMessage(3001, LogLevel.Information, "Source {SourceName}: keys thought new already exist in {Table} (written by another process); merging them instead")]
    private static partial void LogIndexStale(ILogger logger, string sourceName, string table);

    [LoggerMessage(3002, LogLevel.Information, "Source {SourceName}: refreshed materialized view {View} (concurrently: {Concurrently})")]
    private static partial void LogViewRefreshed(ILogger logger, string sourceName, string view, bool concurrently);

    [LoggerMessage(3003, LogLevel.Warning, "Source {SourceName}: rolling back the open transaction failed")]
    private static partial void LogRollbackFailed(ILogger logger, Exception exception, string sourceName);

    [LoggerMessage(3004, LogLevel.Warning, "Source {SourceName}: replace run read no record and has no static schema; the table was left as it was")]
    private static partial void LogReplaceWithoutSchema(ILogger logger, string sourceName);

    [LoggerMessage(3006, LogLevel.Information, "Source {SourceName}: built the primary key ({Key}) of {Table} in {Milliseconds:0} ms")]
    private static partial void LogKeyIndexBuilt(ILogger logger, string sourceName, string table, string key, double milliseconds);

    [LoggerMessage(3005, LogLevel.Warning, "Source {SourceName}: looking for the row that broke a constraint failed")]
    private static partial void LogViolationSearchFailed(ILogger logger, Exception exception, string sourceName);

    [LoggerMessage(3007, LogLevel.Warning, "Source {SourceName}: {Position}, column {Column}: the table refused the value; the record is rejected and its batch written again without it")]
    private static partial void LogRefusedValue(ILogger logger, string sourceName, string position, string column);

    private sealed class Counts
    {
        public long Created { get; set; }

        public long Updated { get; set; }

        public long Unchanged { get; set; }

        /// <summary>Adds a merge of <paramref name="rows"/> rows that created and updated the given numbers: the rest were unchanged.</summary>
        public void AddMerged(long rows, long created, long updated)
        {
            Created += created;
            Updated += updated;
            Unchanged += rows - created - updated;
        }

        /// <summary>Moves rows counted created to updated or unchanged (later versions of keys copied twice).</summary>
        public void Recount(long asUpdated, long asUnchanged)
        {
            Created -= asUpdated + asUnchanged;
            Updated += asUpdated;
            Unchanged += asUnchanged;
        }
    }
}
