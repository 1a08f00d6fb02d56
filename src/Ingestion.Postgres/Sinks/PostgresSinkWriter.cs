using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
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

    private readonly NpgsqlConnection _conn;
    private readonly SinkRun _run;
    private readonly string _storeSchema;
    private readonly string _defaultTargetSchema;
    private readonly PostgresSinkOptions _options;
    private readonly ILogger _logger;
    private readonly bool _deferred;
    private readonly Dictionary<RecordSchema, TableMapping<TRecord>> _mappings = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<string> _tempTablesInTx = new(StringComparer.Ordinal);
    private NpgsqlTransaction? _tx;
    private TableMapping<TRecord>? _indexedMapping;
    private TableMapping<TRecord>? _lastMapping;
    private KeyHashIndex? _index;
    private Dictionary<ulong, int>? _keyScratch;
    private bool _indexComplete;
    private bool _changedRows;
    private bool _completed;
    private bool _copiedForgottenKeys;
    private bool _commitsToFlush;
    private volatile bool _sortAhead = true;
    private long _recountedAsUpdated;
    private long _recountedAsUnchanged;

    public PostgresSinkWriter(NpgsqlConnection conn, SinkRun run, string storeSchema, string defaultTargetSchema, PostgresSinkOptions options, ILogger logger)
    {
        _conn = conn;
        _run = run;
        _storeSchema = storeSchema;
        _defaultTargetSchema = defaultTargetSchema;
        _options = options;
        _logger = logger;
        _deferred = run.IsDryRun || run.Options.Transaction == TransactionScope.WholeRun || run.Options.WriteMode == WriteMode.Replace;
    }

    private string Source => _run.SourceName;

    private WriteMode Mode => _run.Options.WriteMode;

    public async ValueTask<SinkBatchResult> WriteBatchAsync(SinkBatch<TRecord> batch, CancellationToken cancellationToken)
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
        var rows = mapping is null
            ? PreparedRows.Empty
            : batch.Prepared is PreparedRows p && ReferenceEquals(p.Mapping, mapping) && ReferenceEquals(p.Records, records)
                ? p
                : Prepare(mapping, records, batch.FirstRecordNumber, throwOnProblem: true)!;
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

        Counts counts;
        List<int> indexUpdates;
        while (true)
        {
            _tx ??= await BeginFencedAsync(cancellationToken).ConfigureAwait(false);
            counts = new Counts();
            indexUpdates = [];
            try
            {
                if (mapping is not null && winners.Count > 0)
                {
                    await WriteRowsAsync(mapping, batch, winners, rows.Sorted, keyHashes, rowHashes, counts, indexUpdates, cancellationToken).ConfigureAwait(false);
                }

                var allRejects = rejected.Count == 0 ? batch.Rejected : [.. batch.Rejected, .. rejected.Select(_run.RedactRejected)]; // hardening: the run's secrets masked
                await StoreSql.InsertRejectedAsync(_conn, _tx, PgIdentifier.Quote(_storeSchema), _run.RunId, Source, allRejects, _options.MaxRejectedValueLength, cancellationToken).ConfigureAwait(false);
                if (batch.State is { } state)
                {
                    await StoreSql.SaveStateAsync(_conn, _tx, PgIdentifier.Quote(_storeSchema), Source, state, cancellationToken).ConfigureAwait(false);
                }

                if (!_deferred)
                {
                    await FenceAndRecordBatchAsync(batch, counts, duplicates, rejected.Count, cancellationToken).ConfigureAwait(false);
                    await _tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                    await EndTransactionAsync().ConfigureAwait(false);
                }

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
                await RollbackQuietlyAsync().ConfigureAwait(false);
                throw;
            }
        }

        // 3. The batch is committed (or part of the open run transaction): remember the rows' hashes.
        if (_index is not null && mapping is not null && ReferenceEquals(mapping, _indexedMapping))
        {
            foreach (var i in indexUpdates)
            {
                _index.Set(keyHashes[i], rowHashes[i]);
            }
        }

        if (counts.Created + counts.Updated > 0)
        {
            _changedRows = true;
        }

        return new SinkBatchResult { Created = counts.Created, Updated = counts.Updated, Unchanged = counts.Unchanged, Duplicates = duplicates, Rejected = rejected };
    }

    public object? PrepareBatch(IReadOnlyList<TRecord> records, long firstRecordNumber)
    {
        ArgumentNullException.ThrowIfNull(records);

        // Only with the mapping already in use: finding a new one needs the connection, which the write holds.
        var mapping = Volatile.Read(ref _lastMapping);
        if (records.Count == 0 || mapping is null || _completed)
        {
            return null;
        }

        var schema = SchemaOf(records[0]);
        return ReferenceEquals(schema, mapping.Schema) || SameColumns(schema, mapping.Schema)
            ? Prepare(mapping, records, firstRecordNumber, throwOnProblem: false)
            : null;
    }

    public async ValueTask<SinkCompletion> CompleteAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _completed = true;
        long deleted = 0;
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

        return new SinkCompletion { Deleted = deleted, RecountedAsUpdated = _recountedAsUpdated, RecountedAsUnchanged = _recountedAsUnchanged };
    }

    public async ValueTask DisposeAsync()
    {
        await RollbackQuietlyAsync().ConfigureAwait(false);
        await _conn.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The database-free part of writing a batch: checks every value (bad ones become rejected records), hashes keys
    /// and rows, and keeps the last record of each key. Touches no mutable state of the writer, so it may run on the
    /// runner's reading thread while the previous batch is written. A problem that must fail the batch (mixed schemas,
    /// a 64-bit key-hash collision) throws when <paramref name="throwOnProblem"/> is set, else gives null.
    /// </summary>
    private PreparedRows? Prepare(TableMapping<TRecord> mapping, IReadOnlyList<TRecord> records, long firstRecordNumber, bool throwOnProblem)
    {
        string PositionOf(int index) => $"record {firstRecordNumber + index}";
        var rejected = new List<RejectedRecord>();
        var valid = new bool[records.Count];
        var keyHashes = new ulong[records.Count];
        var rowHashes = new ulong[records.Count];
        for (var i = 0; i < records.Count; i++)
        {
            var record = records[i];
            if (!ReferenceEquals(SchemaOf(record), mapping.Schema) && !SameColumns(SchemaOf(record), mapping.Schema))
            {
                return throwOnProblem
                    ? throw new IngestionException($"Source '{Source}': {PositionOf(i)} has a different schema than the first record of its batch; records of one batch must share a schema.") { SourceName = Source, Position = PositionOf(i) }
                    : null;
            }

            if (Check(mapping, record, PositionOf(i)) is { } reject)
            {
                rejected.Add(reject);
                continue;
            }

            valid[i] = true;
            var kh = new RowHasher(KeySeed);
            foreach (var f in mapping.KeyFields)
            {
                f.HashValue(record, ref kh);
            }

            keyHashes[i] = KeyHashIndex.NonZero(kh.Finish());
            if (mapping.HasHash)
            {
                var rh = new RowHasher(RowSeed);
                foreach (var f in mapping.ValueFields)
                {
                    f.Hash(record, ref rh);
                }

                rowHashes[i] = KeyHashIndex.NonZero(rh.Finish());
            }
        }

        var winners = new List<int>(records.Count);
        long duplicates = 0;

        // One key map serves every batch (at 10,000 rows it is a 240 KB large-object allocation, which would
        // otherwise be made and dropped per batch); a concurrent Prepare (rare: a schema change while the next
        // batch is prepared) takes a fresh one.
        var lastOfKey = Interlocked.Exchange(ref _keyScratch, null) ?? new Dictionary<ulong, int>(records.Count);
        lastOfKey.Clear();
        try
        {
            for (var i = 0; i < records.Count; i++)
            {
                if (!valid[i])
                {
                    continue;
                }

                if (lastOfKey.TryGetValue(keyHashes[i], out var previous))
                {
                    if (!mapping.KeyFields.All(f => f.ValueEquals(records[previous], records[i])))
                    {
                        return throwOnProblem
                            ? throw new IngestionException($"Source '{Source}': {PositionOf(previous)} and {PositionOf(i)} have different keys with the same 64-bit key hash; split the batch differently (BatchSize) to write them.") { SourceName = Source, Position = PositionOf(i) }
                            : null;
                    }

                    valid[previous] = false;
                    duplicates++;
                }

                lastOfKey[keyHashes[i]] = i;
            }

            for (var i = 0; i < records.Count; i++)
            {
                if (valid[i])
                {
                    winners.Add(i);
                }
            }

            // Sorted here, ahead of the write, while batches send most of their rows (a first load); once a batch sent
            // few (a re-run of unchanged rows), the write sorts only the rows it sends.
            var sorted = _sortAhead && SortInKeyOrder(mapping, records, winners);
            return new PreparedRows(mapping, records, rejected, keyHashes, rowHashes, winners, duplicates, sorted);
        }
        finally
        {
            lastOfKey.Clear();
            _keyScratch = lastOfKey;
        }
    }

    /// <summary>
    /// Orders <paramref name="rows"/> by key when <see cref="PostgresSinkOptions.SendRowsInKeyOrder"/> asks for it (rows of
    /// a batch have distinct keys, so the order changes no result); returns whether they are now in key order.
    /// </summary>
    private bool SortInKeyOrder(TableMapping<TRecord> mapping, IReadOnlyList<TRecord> records, List<int> rows)
    {
        if (!_options.SendRowsInKeyOrder || Mode == WriteMode.Append || mapping.KeyFields.Length == 0)
        {
            return false;
        }

        if (rows.Count > 1)
        {
            mapping.KeyFields[0].SortRows(records, CollectionsMarshal.AsSpan(rows), mapping.KeyFields, 1);
        }

        return true;
    }

    private async Task WriteRowsAsync(TableMapping<TRecord> mapping, SinkBatch<TRecord> batch, List<int> winners, bool sorted, ulong[] keyHashes, ulong[] rowHashes, Counts counts, List<int> indexUpdates, CancellationToken cancellationToken)
    {
        if (!sorted && (Mode == WriteMode.Replace || _run.Verify))
        {
            sorted = SortInKeyOrder(mapping, batch.Records, winners);
        }

        if (Mode == WriteMode.Replace)
        {
            await EnsureTempTableAsync(mapping.SeenName, mapping.CreateSeen, truncate: false, cancellationToken).ConfigureAwait(false);
            await CopyAsync(mapping, mapping.CopyIntoSeen, mapping.KeyFields, null, batch, winners, cancellationToken).ConfigureAwait(false);
        }

        if (Mode == WriteMode.Append)
        {
            try
            {
                counts.Created += (long)await CopyAsync(mapping, mapping.CopyIntoTarget, mapping.Fields, mapping.HasHash ? rowHashes : null, batch, winners, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && CopyLine(e, winners.Count) is null)
            {
                throw new IngestionException($"Source '{Source}': appending to {mapping.DisplayName} violates its key ({string.Join(", ", mapping.KeyFields.Select(k => k.Column.Name))}) in the batch starting at {batch.PositionOf(0)}: {e.MessageText} (constraint {e.ConstraintName}). Use WriteMode Merge to update existing keys.", e)
                {
                    SourceName = Source,
                    Position = batch.PositionOf(0),
                };
            }
            catch (PostgresException e) when (IsConstraintViolation(e) && CopyLine(e, winners.Count) is { } line)
            {
                throw Violation(mapping, batch, winners[line], e, e.SqlState == PostgresErrorCodes.UniqueViolation ? " Use WriteMode Merge to update existing keys." : string.Empty);
            }

            indexUpdates.AddRange(winners);
            return;
        }

        if (_run.Verify) // hardening: a verifying refresh compares stored values, see PostgresSinkWriter.Verify.cs
        {
            await VerifyRowsAsync(mapping, batch, winners, rowHashes, counts, indexUpdates, cancellationToken).ConfigureAwait(false);
            return;
        }

        await EnsureIndexAsync(mapping, cancellationToken).ConfigureAwait(false);
        var index = _index!;
        var fresh = new List<int>();
        var uncertain = new List<int>();
        var forgotten = false;
        foreach (var i in winners)
        {
            if (index.TryGetValue(keyHashes[i], out var stored))
            {
                // A table without the hash column (one the library did not create) keeps no row hash: its stored
                // rows are compared value by value on the server.
                if (mapping.HasHash && stored == rowHashes[i])
                {
                    counts.Unchanged++;
                }
                else
                {
                    uncertain.Add(i);
                }
            }
            else if (_indexComplete)
            {
                // Not remembered, so new: certainly while nothing was forgotten, else presumably: the table's key
                // catches a mistake (below), and a table still without its key keeps the newest row of a key
                // copied twice when the key is built (PendingKey.ResolveRepeatsAsync).
                fresh.Add(i);
                forgotten |= index.Overflowed && mapping.KeyIndexPending;
            }
            else
            {
                uncertain.Add(i);
            }
        }

        // Sorted ahead only while batches send most of their rows: the next batch learns which it is.
        _sortAhead = (fresh.Count + uncertain.Count) * 2 >= winners.Count;
        if (!sorted)
        {
            SortInKeyOrder(mapping, batch.Records, fresh);
            SortInKeyOrder(mapping, batch.Records, uncertain);
        }

        if (uncertain.Count > 0 && mapping.KeyIndexPending)
        {
            // The server must look these keys up: give it the key index first. Rows a first load copied twice are
            // resolved on the way, in this batch's transaction, so their recount commits (or rolls back) with it.
            await BuildKeyIndexAsync(mapping, onSideConnection: false, counts, cancellationToken).ConfigureAwait(false);
        }

        if (forgotten && !mapping.MayHoldRepeats)
        {
            // Past what the key index remembers, a key copied now may be one an earlier batch copied: say so on the
            // table (with this batch, so a crash leaves the mark with the rows), for whichever run builds the key.
            await ExecuteAsync(new PendingKey(mapping.KeyFields.Select(k => k.Column.Name).ToList(), MayHoldRepeats: true).CommentOn(mapping.Target), cancellationToken).ConfigureAwait(false);
            foreach (var m in _mappings.Values.Where(m => m.Target == mapping.Target))
            {
                m.MayHoldRepeats = true;
            }
        }

        _copiedForgottenKeys |= forgotten;

        if (fresh.Count > 0)
        {
            // Keys the index says are new go straight into the table. If one exists after all (written by
            // someone else since the index was read), the savepoint undoes the COPY and they are merged instead.
            // A table still without its key cannot refuse one: no savepoint (nor its subtransaction) then.
            var savepoint = !mapping.KeyIndexPending;
            if (savepoint)
            {
                await _tx!.SaveAsync(NewRowsSavepoint, cancellationToken).ConfigureAwait(false);
            }

            try
            {
                counts.Created += (long)await CopyAsync(mapping, mapping.CopyIntoTarget, mapping.Fields, mapping.HasHash ? rowHashes : null, batch, fresh, cancellationToken).ConfigureAwait(false);
                if (savepoint)
                {
                    await _tx!.ReleaseAsync(NewRowsSavepoint, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (PostgresException e) when (IsConstraintViolation(e) && e.SqlState != PostgresErrorCodes.UniqueViolation && CopyLine(e, fresh.Count) is { } line)
            {
                throw Violation(mapping, batch, fresh[line], e, string.Empty);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && savepoint)
            {
                await _tx!.RollbackAsync(NewRowsSavepoint, cancellationToken).ConfigureAwait(false);
                LogIndexStale(_logger, Source, mapping.DisplayName);

                // Someone else writes this table (or its key compares otherwise than the values sent, e.g. citext):
                // for the rest of the run, keys the index does not hold are looked up.
                _indexComplete = false;
                uncertain.AddRange(fresh);
                SortInKeyOrder(mapping, batch.Records, uncertain);
            }
        }

        if (uncertain.Count > 0 && !mapping.HasHash)
        {
            await UpsertComparingValuesAsync(mapping, batch, uncertain, counts, cancellationToken).ConfigureAwait(false);
        }
        else if (uncertain.Count > 0)
        {
            await StageAsync(mapping, batch, uncertain, rowHashes, cancellationToken).ConfigureAwait(false);
            await _tx!.SaveAsync(MergeSavepoint, cancellationToken).ConfigureAwait(false);
            int updated, created;
            try
            {
                updated = await ExecuteAsync(mapping.UpdateFromStage, cancellationToken).ConfigureAwait(false);
                created = updated == uncertain.Count ? 0 : await ExecuteAsync(mapping.InsertMissingFromStage, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e) when (IsConstraintViolation(e))
            {
                throw await MergeViolationAsync(mapping, batch, uncertain, rowHashes, e, cancellationToken).ConfigureAwait(false);
            }

            counts.Updated += updated;
            counts.Created += created;
            counts.Unchanged += uncertain.Count - updated - created;
        }

        indexUpdates.AddRange(fresh);
        indexUpdates.AddRange(uncertain);
    }

    /// <summary>
    /// Merges <paramref name="rows"/> into a table without the hash column (one the library did not create): staged,
    /// then one upsert that compares every value on the server and tells created rows from updated ones.
    /// </summary>
    private async Task UpsertComparingValuesAsync(TableMapping<TRecord> mapping, SinkBatch<TRecord> batch, List<int> rows, Counts counts, CancellationToken cancellationToken)
    {
        await StageAsync(mapping, batch, rows, null, cancellationToken).ConfigureAwait(false);
        await _tx!.SaveAsync(MergeSavepoint, cancellationToken).ConfigureAwait(false);
        long created = 0, updated = 0;
        try
        {
            var cmd = new NpgsqlCommand(mapping.UpsertFromStage, _conn, _tx);
            await using (cmd.ConfigureAwait(false))
            {
                var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        if (reader.GetBoolean(0))
                        {
                            created++;
                        }
                        else
                        {
                            updated++;
                        }
                    }
                }
            }
        }
        catch (PostgresException e) when (IsConstraintViolation(e))
        {
            throw await MergeViolationAsync(mapping, batch, rows, null, e, cancellationToken).ConfigureAwait(false);
        }

        counts.Created += created;
        counts.Updated += updated;
        counts.Unchanged += rows.Count - created - updated;
    }

    private async Task StageAsync(TableMapping<TRecord> mapping, SinkBatch<TRecord> batch, List<int> rows, ulong[]? rowHashes, CancellationToken cancellationToken)
    {
        await EnsureTempTableAsync(mapping.StageName, mapping.CreateStage, truncate: true, cancellationToken).ConfigureAwait(false);
        await CopyAsync(mapping, mapping.CopyIntoStage, mapping.Fields, rowHashes, batch, rows, cancellationToken).ConfigureAwait(false);
    }

    private async Task EnsureTempTableAsync(string name, string createSql, bool truncate, CancellationToken cancellationToken)
    {
        if (_tempTablesInTx.Add(name))
        {
            await ExecuteAsync(createSql, cancellationToken).ConfigureAwait(false);
        }
        else if (truncate)
        {
            await ExecuteAsync($"TRUNCATE {name}", cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<ulong> CopyAsync(TableMapping<TRecord> mapping, string copySql, FieldAccessor<TRecord>[] fields, ulong[]? rowHashes, SinkBatch<TRecord> batch, List<int> rows, CancellationToken cancellationToken)
    {
        var records = batch.Records;
        var width = fields.Length + (rowHashes is null ? 0 : 1);
        try
        {
            return (ulong)await BinaryCopyWriter.CopyAsync(
                _conn,
                copySql,
                (Fields: fields, RowHashes: rowHashes, Records: records, Rows: rows, Width: width, Token: cancellationToken),
                rows.Count,
                static (writer, s, n) =>
                {
                    if ((n & 1023) == 1023)
                    {
                        s.Token.ThrowIfCancellationRequested();
                    }

                    var i = s.Rows[n];
                    var record = s.Records[i];
                    writer.StartRow(s.Width);
                    foreach (var f in s.Fields)
                    {
                        f.Write(writer, record);
                    }

                    if (s.RowHashes is not null)
                    {
                        writer.WriteInt64(unchecked((long)s.RowHashes[i]));
                    }
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState.StartsWith("22", StringComparison.Ordinal) && CopyLine(e, rows.Count) is { } line)
        {
            // A value the client let through but the column refuses (a geometry of another SRID or type, a
            // domain or a type the sink does not check): the whole COPY failed; name the record and the column.
            var row = rows[line];
            var column = CopyColumn(e);
            var where = column is null ? string.Empty : $", column '{column}'";
            var key = KeyText(mapping, records[row]);
            throw new RefusedValueException($"Source '{Source}': {batch.PositionOf(row)} (key {key}){where}: table {mapping.DisplayName} refuses the value: {e.MessageText}. Nothing of this batch was written.", e)
            {
                SourceName = Source,
                Position = batch.PositionOf(row),
                Field = column,
                Row = row,
                RawValue = mapping.Fields.FirstOrDefault(f => f.Column.Name == column) is { } field ? KeyValue(field, records[row]) : $"key {key}",
                Reason = $"Table {mapping.DisplayName} refuses the value{(column is null ? string.Empty : $" of column '{column}'")}: {e.MessageText}.",
            };
        }
    }

    private async Task EnsureIndexAsync(TableMapping<TRecord> mapping, CancellationToken cancellationToken)
    {
        if (ReferenceEquals(_indexedMapping, mapping))
        {
            return;
        }

        if (_indexedMapping is not null && _index is not null && _indexedMapping.Target == mapping.Target
            && _indexedMapping.KeyFields.Select(k => k.Column.Name).SequenceEqual(mapping.KeyFields.Select(k => k.Column.Name)))
        {
            // The same table and key under an evolved schema: the stored hashes change with the new columns, which the merge handles.
            _indexedMapping = mapping;
            return;
        }

        var index = new KeyHashIndex(_options.KeyIndexMaxRows);
        var complete = true;
        var keyColumns = mapping.KeyFields.Select(k => k.Column).ToArray();
        if (_options.KeyIndexMaxRows > 0 && KeyHashReader.CanRead(keyColumns))
        {
            complete = await KeyHashReader.LoadAsync(_conn, mapping.ExportKeyHashes, keyColumns, mapping.HasHash, KeySeed, index, cancellationToken).ConfigureAwait(false);
        }
        else if (_options.KeyIndexMaxRows > 0)
        {
            var exporter = await _conn.BeginBinaryExportAsync(mapping.ExportKeyHashes, cancellationToken).ConfigureAwait(false);
            await using (exporter.ConfigureAwait(false))
            {
                while (await exporter.StartRowAsync(cancellationToken).ConfigureAwait(false) != -1)
                {
                    var kh = new RowHasher(KeySeed);
                    foreach (var c in keyColumns)
                    {
                        ValueCodec.ReadAndHash(exporter, c, ref kh);
                    }

                    // A table without the hash column gives its keys alone: their rows are compared on the server.
                    var rowHash = !mapping.HasHash || exporter.IsNull ? KeyHashIndex.UnknownRowHash : unchecked((ulong)exporter.Read<long>(NpgsqlDbType.Bigint));
                    if (!index.Set(KeyHashIndex.NonZero(kh.Finish()), rowHash))
                    {
                        complete = false;
                        await exporter.CancelAsync().ConfigureAwait(false);
                        break;
                    }
                }
            }
        }
        else
        {
            complete = false;
        }

        LogIndexLoaded(_logger, Source, mapping.DisplayName, index.Count, complete);
        _index = index;
        _indexComplete = complete;
        _indexedMapping = mapping;
    }

    private RejectedRecord? Check(TableMapping<TRecord> mapping, TRecord record, string position)
    {
        foreach (var f in mapping.Fields)
        {
            if (f.IsNull(record))
            {
                if (mapping.KeyFields.Contains(f))
                {
                    return new RejectedRecord(position, f.Column.Name, $"Key column '{f.Column.Name}' is null.");
                }

                if (f.Column.NotNull)
                {
                    return new RejectedRecord(position, f.Column.Name, $"Column '{f.Column.Name}' is null, but it is NOT NULL in table {mapping.DisplayName}.");
                }

                continue;
            }

            if (f.Validate(record, out var raw) is { } reason)
            {
                return new RejectedRecord(position, f.Column.Name, reason, raw);
            }
        }

        return null;
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

    private RecordSchema SchemaOf(TRecord record) => _run.Schema ?? ((DynamicRecord)(object)record).Schema;

    private static bool SameColumns(RecordSchema a, RecordSchema b) =>
        a.Columns.Count == b.Columns.Count
        && a.Columns.Zip(b.Columns).All(p => p.First.Name == p.Second.Name && p.First.Type == p.Second.Type && p.First.IsKey == p.Second.IsKey && p.First.IsSourceName == p.Second.IsSourceName);

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

    private async Task RollbackQuietlyAsync()
    {
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

        // Rows remembered for the rolled-back work may not exist: forget the index, it is reloaded on the next batch.
        _index = null;
        _indexedMapping = null;

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

    /// <summary>A batch checked, hashed and deduplicated for one mapping.</summary>
    private sealed record PreparedRows(TableMapping<TRecord>? Mapping, IReadOnlyList<TRecord>? Records, List<RejectedRecord> Rejected, ulong[] KeyHashes, ulong[] RowHashes, List<int> Winners, long Duplicates, bool Sorted)
    {
        public static PreparedRows Empty { get; } = new(null, null, [], [], [], [], 0, false);
    }

    private sealed class Counts
    {
        public long Created { get; set; }

        public long Updated { get; set; }

        public long Unchanged { get; set; }
    }
}
