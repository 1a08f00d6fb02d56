using Ingestion.Sinks;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// How a batch's rows reach the table: classified against the key index (unchanged rows skipped, keys known to be new
/// copied straight in), the rest staged and merged with exact counts; the key index loaded from the table.
/// </summary>
internal sealed partial class PostgresSinkWriter<TRecord>
{
    /// <summary>Writes the batch's winning rows; returns whether anything was sent to the server for them (not when every row is stored unchanged).</summary>
    private async Task<bool> WriteRowsAsync(TableMapping<TRecord> mapping, SinkBatch<TRecord> batch, List<int> winners, bool sorted, ulong[] keyHashes, ulong[] rowHashes, Classification? ahead, CopyAhead? copied, Counts counts, List<int> indexUpdates, CancellationToken cancellationToken)
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
            return true;
        }

        if (_run.Verify) // hardening: a verifying refresh compares stored values, see PostgresSinkWriter.Verify.cs
        {
            await VerifyRowsAsync(mapping, batch, winners, rowHashes, counts, indexUpdates, cancellationToken).ConfigureAwait(false);
            return true;
        }

        await EnsureIndexAsync(mapping, cancellationToken).ConfigureAwait(false);
        var classified = Classify(mapping, batch.FirstRecordNumber, winners, keyHashes, rowHashes, ahead);
        var fresh = classified.Fresh;
        var uncertain = classified.Uncertain;
        counts.Unchanged += classified.Unchanged;
        var forgotten = classified.FreshPastCapacity && mapping.KeyIndexPending;
        if (fresh.Count == 0 && uncertain.Count == 0)
        {
            // Every row is stored unchanged: nothing to send (a replace has sent the keys it saw).
            return Mode == WriteMode.Replace;
        }
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

        if (copied is not null && ReferenceEquals(copied.Classified, classified))
        {
            // Copied (and merged) on the other connection while the batch before was written (PostgresSinkWriter.CopyAhead.cs):
            // this transaction holds them, and it only records and commits the batch.
            counts.Created += (long)copied.Rows;
            counts.AddMerged(uncertain.Count, 0, copied.Updated);
            return true;
        }

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
                lock (_indexGate)
                {
                    _indexComplete = false;
                }

                uncertain.AddRange(fresh);
                if (_writingEncoded is null)
                {
                    // (Released records were put in key order when prepared; their bytes go as they are.)
                    SortInKeyOrder(mapping, batch.Records, uncertain);
                }
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

            counts.AddMerged(uncertain.Count, created, updated);
        }

        // The rows sent are in the key index already (remembered when classified; a rollback drops the index).
        return true;
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

        counts.AddMerged(rows.Count, created, updated);
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
        try
        {
            return _writingEncoded is { } encoded
                ? (ulong)await encoded.CopyAsync(_conn, copySql, fields, rowHashes is not null, rows, cancellationToken).ConfigureAwait(false)
                : await CopyRowsAsync(_conn, copySql, fields, rowHashes, records, rows, cancellationToken).ConfigureAwait(false);
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
                RawValue = mapping.Fields.FirstOrDefault(f => f.Column.Name == column) is { } field && records[row] is { } record ? KeyValue(field, record) : $"key {key}",
                Reason = $"Table {mapping.DisplayName} refuses the value{(column is null ? string.Empty : $" of column '{column}'")}: {e.MessageText}.",
            };
        }
    }

    /// <summary>Copies the given rows of <paramref name="records"/> (with their row hashes when given) on <paramref name="conn"/>.</summary>
    private static async Task<ulong> CopyRowsAsync(NpgsqlConnection conn, string copySql, FieldAccessor<TRecord>[] fields, ulong[]? rowHashes, IReadOnlyList<TRecord> records, List<int> rows, CancellationToken cancellationToken)
    {
        return (ulong)await BinaryCopyWriter.CopyAsync(
            conn,
            copySql,
            (Fields: fields, RowHashes: rowHashes, Records: records, Rows: rows, Token: cancellationToken),
            rows.Count,
            static (writer, s, n) =>
            {
                if ((n & 1023) == 1023)
                {
                    s.Token.ThrowIfCancellationRequested();
                }

                var i = s.Rows[n];
                writer.WriteRecord(s.Fields, s.Records[i], s.RowHashes, i);
            },
            cancellationToken).ConfigureAwait(false);
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
            SetIndex(_index, mapping, _indexComplete);
            return;
        }

        var index = new KeyHashIndex(_options.KeyIndexMaxRows);
        var complete = true;
        var keyColumns = mapping.KeyFields.Select(k => k.Column).ToArray();
        if (_options.KeyIndexMaxRows > 0 && KeyHashReader.CanRead(keyColumns))
        {
            complete = await KeyHashReader.LoadAsync(_conn, mapping.ExportKeyHashes(_options.KeyIndexMaxRows), keyColumns, mapping.HasHash, KeySeed, index, cancellationToken).ConfigureAwait(false);
        }
        else if (_options.KeyIndexMaxRows > 0)
        {
            var exporter = await _conn.BeginBinaryExportAsync(mapping.ExportKeyHashes(_options.KeyIndexMaxRows), cancellationToken).ConfigureAwait(false);
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
                    // Full: the export's LIMIT leaves at most this row, read to the end rather than cancelled.
                    complete &= index.Set(KeyHashIndex.NonZero(kh.Finish()), rowHash);
                }
            }
        }
        else
        {
            complete = false;
        }

        LogIndexLoaded(_logger, Source, mapping.DisplayName, index.Count, complete);
        SetIndex(index, mapping, complete);
    }
}
