using Ingestion.Sinks;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// A batch whose rows are new keys or changed rows of stored keys, written on another connection of the writer while the
/// batch before it is still being written (<see cref="PostgresSinkOptions.CopyAheadOnSecondConnection"/>): the new rows
/// copied into the table, the changed ones staged and updated. The copy runs in its own open transaction; the batch's
/// write then takes that connection and transaction, records the batch and commits, after the batch before it
/// committed. At most two copies are ahead at a time (<see cref="MaxCopiesAhead"/>), each on a connection the writer is
/// not using: two while the runner hands a batch over behind the one being written (<see cref="BatchesPreparedAhead"/>).
/// </summary>
/// <remarks>
/// The earlier batch must never wait for a lock the copy holds: its commit waits for the client, so the run would hang
/// where the server sees no deadlock. Hence the narrow conditions of <see cref="MayCopyAhead"/> (no key of the copy in
/// an earlier batch: new keys are not in the index that holds the earlier batches', and a changed row's key is checked
/// against every record of the two batches before, the most that may still be in flight; no trigger, rule or foreign
/// key, so no write beyond the table), and every statement of the writer that locks a table (a new mapping, a key
/// build, the run's completion, any rollback) first rolls the copies back (<see cref="DiscardCopyAheadAsync"/>); a key
/// build (a first load's, whose table has no key yet) also keeps new copies from starting until it is done
/// (<see cref="BlockCopyAheadAsync"/>).
/// </remarks>
internal sealed partial class PostgresSinkWriter<TRecord>
{
    /// <summary>At most this many copies are ahead of the writes at once.</summary>
    private const int MaxCopiesAhead = 2;

    /// <summary>Guards <see cref="_aheads"/>, <see cref="_idle"/> and the swap of <see cref="_conn"/> with a copy's connection.</summary>
    private readonly Lock _aheadGate = new();

    /// <summary>The writer's other connections (opened by copies ahead) that no write or copy is using.</summary>
    private readonly Stack<NpgsqlConnection> _idle = new();

    /// <summary>The copies ahead started and not yet taken by their writes or rolled back, oldest batch first.</summary>
    private readonly List<CopyAhead> _aheads = [];

    /// <summary>While above 0 no copy ahead starts: the writer is building a table's key, which waits for any writer of the table.</summary>
    private int _aheadBlocked;

    /// <summary>The bytes the last batch encoded whole took (<see cref="EncodedRows{TRecord}"/>): the next one's buffer is rented a little larger.</summary>
    private int _encodedLength;

    /// <summary>Whether a copy ahead was started and not yet claimed by its batch's write (for tests).</summary>
    internal bool HoldsUnclaimedCopyAhead
    {
        get
        {
            lock (_aheadGate)
            {
                return _aheads.Count > 0;
            }
        }
    }

    /// <summary>
    /// Whether a batch classified ahead may be copied ahead: a Merge run committing batch by batch, rows in key order
    /// into a table with no trigger, rule or foreign key; every row to send new by the key index (the table's key may
    /// still be unbuilt, as in a first load), or, in a table whose key is built, with the hash column and by a complete
    /// index, a stored key whose row changed and which no record of the two batches before (<paramref name="before"/>)
    /// whose writes may still be running has.
    /// </summary>
    /// <remarks>
    /// A key new to an index that is full may be one an earlier batch copied unremembered. Into a table whose key is
    /// built such a row would fail the copy (or wait for the batch before), so those batches take the ordinary path;
    /// into a table still without its key the ordinary write copies them all the same (the key build keeps the newest
    /// row of a key copied twice), so a first load past the index's capacity is still copied ahead, and its write marks
    /// the table as it would (<see cref="WriteRowsAsync"/>).
    /// </remarks>
    private bool MayCopyAhead(TableMapping<TRecord> mapping, PreparedRows prepared, Classification classified, ClassifiedBefore before) =>
        MayCopyAheadInto(mapping)
        && classified.Fresh.Count + classified.Uncertain.Count > 0 && (!classified.FreshPastCapacity || mapping.KeyIndexPending)
        && prepared.Sorted
        && (classified.Uncertain.Count == 0
            || (!mapping.KeyIndexPending && mapping.HasHash && classified.IndexComplete && before.Last is not null
                && !ChangesKeysOf(classified, before)));

    /// <summary>
    /// Whether batches of <paramref name="mapping"/> may be copied ahead at all: the option on, a Merge run committing
    /// batch by batch, and a table with no trigger, rule or foreign key.
    /// </summary>
    private bool MayCopyAheadInto(TableMapping<TRecord> mapping) =>
        _options.CopyAheadOnSecondConnection && MergesBatchByBatch && !mapping.HasTriggersRulesOrForeignKeys;

    /// <summary>Whether the run merges its batches and commits each on its own (not a run-long transaction, nor a verifying refresh).</summary>
    private bool MergesBatchByBatch => Mode == WriteMode.Merge && !_deferred && !_run.Verify;

    /// <summary>
    /// Whether writing into <paramref name="mapping"/>'s table is a first load: a run merging batch by batch into a table
    /// the sink made, whose key is not built yet (it is built at the run's end).
    /// </summary>
    private bool IsFirstLoadInto(TableMapping<TRecord> mapping) => mapping.KeyIndexPending && MergesBatchByBatch;

    /// <summary>
    /// Whether a row <paramref name="classified"/> would merge has the key of any record (rejected and repeated ones
    /// too) of the two batches <paramref name="before"/> whose writes may still hold it (not yet written).
    /// </summary>
    private bool ChangesKeysOf(Classification classified, ClassifiedBefore before)
    {
        var writtenThrough = Interlocked.Read(ref _writtenThrough);
        var last = before.Last is { } l && l.FirstRecordNumber > writtenThrough ? l : null;
        var beforeLast = before.BeforeLast is { } b && b.FirstRecordNumber > writtenThrough ? b : null;
        if (last is null && beforeLast is null)
        {
            return false;
        }

        // The rows to merge, by key: built once for both batches.
        var keys = new HashSet<ulong>(classified.Uncertain.Count);
        foreach (var i in classified.Uncertain)
        {
            keys.Add(classified.KeyHashes[i]);
        }

        return (last is not null && HasAnyKey(last, keys)) || (beforeLast is not null && HasAnyKey(beforeLast, keys));
    }

    /// <summary>Whether any record of <paramref name="batch"/> has one of <paramref name="keys"/>.</summary>
    private static bool HasAnyKey(Classification batch, HashSet<ulong> keys)
    {
        foreach (var key in batch.KeyHashes)
        {
            if (keys.Contains(key))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Starts copying the batch's new rows on another connection (on the reading thread, after the batch was
    /// classified ahead); gives the copy, or null when <see cref="MaxCopiesAhead"/> are already ahead or the writer is done.
    /// </summary>
    private CopyAhead? StartCopyAhead(TableMapping<TRecord> mapping, PreparedRows prepared, long firstRecordNumber, Classification classified)
    {
        lock (_aheadGate)
        {
            if (_aheads.Count >= (_mayCopyTwoAhead ? MaxCopiesAhead : 1) || _completed || _disposed || _aheadBlocked > 0)
            {
                return null;
            }

            var conn = _idle.TryPop(out var idle) ? idle : (NpgsqlConnection)((ICloneable)_conn).Clone();
            var ahead = new CopyAhead(conn, prepared.Records!, firstRecordNumber, classified);
            var rowHashes = mapping.HasHash ? prepared.RowHashes : null;
            ahead.Copy = Task.Run(() => ahead.RunAsync(mapping, prepared, rowHashes, this));
            _aheads.Add(ahead);
            return ahead;
        }
    }

    /// <summary>
    /// Takes the copy made ahead of this batch when the write can use it as it is (the same records, the classification
    /// the write uses, and the copy succeeded); the batch's write then continues on that copy's connection and
    /// transaction. Copies ahead of later batches only are left be; when the oldest copy is this batch's (or an earlier
    /// one's) but cannot be used, every copy ahead is rolled back (the later ones were classified against the same index).
    /// </summary>
    /// <remarks>
    /// The copy is claimed before it is waited for: the writer's own connection, idle once the batch before committed,
    /// becomes the other one at once, so the next batch can be copied ahead on it while this one is still being written
    /// on the server (two batches' statements in flight, not one). The next copy's keys are checked against this batch
    /// (<see cref="MayCopyAhead"/>), and the batch before it is committed, so neither waits for the other.
    /// </remarks>
    private async Task<CopyAhead?> TakeCopyAheadAsync(SinkBatch<TRecord> batch, PreparedRows rows, CancellationToken cancellationToken)
    {
        CopyAhead? ahead;
        lock (_aheadGate)
        {
            ahead = _aheads.Count > 0 ? _aheads[0] : null;
        }

        if (ahead is null || ahead.FirstRecordNumber > batch.FirstRecordNumber)
        {
            // None, or one made ahead of a later batch: this write, on the writer's own connection, leaves it be (its
            // keys are new by an index that already held this batch's, so this batch never waits for it).
            return null;
        }

        bool current;
        lock (_indexGate)
        {
            current = ReferenceEquals(ahead.Records, batch.Records) && rows.Classified is { } c && ReferenceEquals(c, ahead.Classified) && ReferenceEquals(c.Index, _index);
        }

        if (!current)
        {
            await DiscardCopyAheadAsync().ConfigureAwait(false);
            return null;
        }

        // A transaction that batches which wrote nothing left open holds nothing of theirs (their counts are kept in
        // memory): end it, then claim the copy's connection as the writer's own.
        await EndQuietTransactionAsync().ConfigureAwait(false);
        lock (_aheadGate)
        {
            _aheads.Remove(ahead);
            _idle.Push(_conn);
            _conn = ahead.Connection;
        }

        // Waited for with the write's own cancellation: a run cancelled while the copy waits (on a lock, say) cancels it.
        if (!await ahead.SucceededAsync(cancellationToken).ConfigureAwait(false) || ahead.Updated != ahead.Classified.Uncertain.Count)
        {
            // Failed, or a changed row not updated (its stored row changed meanwhile): the ordinary path writes the batch
            // and counts it right, on this connection once the copy is rolled back, else on a new one.
            await RollBackAsync(ahead).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            if (ahead.Connection.State != System.Data.ConnectionState.Open)
            {
                var fresh = (NpgsqlConnection)((ICloneable)ahead.Connection).Clone();
                await ahead.Connection.DisposeAsync().ConfigureAwait(false);
                _conn = fresh;
                await PostgresSink.OpenNamedAsync(fresh, _options, Source, cancellationToken).ConfigureAwait(false);
            }

            return null;
        }

        _tx = ahead.Transaction;
        if (ahead.Classified.Uncertain.Count > 0)
        {
            _tempTablesInTx.Add(ahead.Classified.Mapping.StageName);
        }

        ahead.Cancel.Dispose();
        LogCopiedAhead(_logger, Source, batch.PositionOf(0), (long)ahead.Rows, ahead.Updated);
        return ahead;
    }

    /// <summary>
    /// Keeps copies ahead from starting (and rolls back the one ahead) until the returned scope is disposed: around a key
    /// build, whose lock would wait for a copy that waits for the writer.
    /// </summary>
    private async Task<IDisposable> BlockCopyAheadAsync()
    {
        lock (_aheadGate)
        {
            _aheadBlocked++;
        }

        await DiscardCopyAheadAsync().ConfigureAwait(false);
        return new Unblock(this);
    }

    /// <summary>
    /// Rolls back every copy ahead (waiting for each to finish first, or cancelling it when <paramref name="cancel"/>:
    /// a cancelled write does not wait for a copy held up on a lock); their connections stay for the next ones.
    /// </summary>
    private async Task DiscardCopyAheadAsync(bool cancel = false)
    {
        CopyAhead[] aheads;
        lock (_aheadGate)
        {
            aheads = [.. _aheads];
            _aheads.Clear();
        }

        // Oldest first: should a later copy wait for a row an earlier one holds, rolling the earlier back releases it
        // (waiting for the later one first would wait for ever).
        foreach (var ahead in aheads)
        {
            if (cancel)
            {
                ahead.CancelQuietly();
            }

            await ahead.SucceededAsync().ConfigureAwait(false);
            await RollBackAsync(ahead).ConfigureAwait(false);
            if (ahead.Connection.State is System.Data.ConnectionState.Open or System.Data.ConnectionState.Closed)
            {
                lock (_aheadGate)
                {
                    _idle.Push(ahead.Connection);
                }
            }
            else
            {
                // Broken by the failed copy: a fresh one is made for the next.
                await ahead.Connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Rolls back a finished copy's transaction (when its connection is still open) and disposes of it and its cancellation.</summary>
    private async Task RollBackAsync(CopyAhead ahead)
    {
        ahead.Cancel.Dispose();
        try
        {
            if (ahead.Transaction is { } tx && ahead.Connection.State == System.Data.ConnectionState.Open)
            {
                await tx.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or ObjectDisposedException)
        {
            LogRollbackFailed(_logger, e, Source);
        }

        if (ahead.Transaction is { } done)
        {
            await done.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Ends the writer's other connections (after every copy ahead is cancelled and rolled back).</summary>
    private async Task DisposeOtherAsync()
    {
        lock (_aheadGate)
        {
            _disposed = true;
        }

        await DiscardCopyAheadAsync(cancel: true).ConfigureAwait(false);
        NpgsqlConnection[] others;
        lock (_aheadGate)
        {
            others = [.. _idle];
            _idle.Clear();
        }

        foreach (var other in others)
        {
            await other.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(3008, LogLevel.Debug, "Source {SourceName}: the batch starting at {Position} was copied ahead on the second connection ({Rows} new rows, {Updated} changed rows)")]
    private static partial void LogCopiedAhead(ILogger logger, string sourceName, string position, long rows, int updated);

    private sealed class Unblock(PostgresSinkWriter<TRecord> writer) : IDisposable
    {
        private PostgresSinkWriter<TRecord>? _writer = writer;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _writer, null) is { } w)
            {
                lock (w._aheadGate)
                {
                    w._aheadBlocked--;
                }
            }
        }
    }

    /// <summary>One batch's new and changed rows being written, or written, on the other connection in an open transaction.</summary>
    private sealed class CopyAhead(NpgsqlConnection connection, IReadOnlyList<TRecord> records, long firstRecordNumber, Classification classified)
    {
        public NpgsqlConnection Connection { get; } = connection;

        public IReadOnlyList<TRecord> Records { get; } = records;

        public long FirstRecordNumber { get; } = firstRecordNumber;

        /// <summary>Cancels the copy when the writer is disposed (a run cancelled or failed).</summary>
        public CancellationTokenSource Cancel { get; } = new();

        public Classification Classified { get; } = classified;

        /// <summary>The copy itself (set once, right after construction).</summary>
        public Task Copy { get; set; } = Task.CompletedTask;

        /// <summary>The open transaction holding the copied rows, once begun.</summary>
        public NpgsqlTransaction? Transaction { get; private set; }

        /// <summary>The new rows copied, once the copy succeeded.</summary>
        public ulong Rows { get; private set; }

        /// <summary>The changed rows updated, once the copy succeeded.</summary>
        public int Updated { get; private set; }

        public async Task RunAsync(TableMapping<TRecord> mapping, PreparedRows prepared, ulong[]? rowHashes, PostgresSinkWriter<TRecord> writer)
        {
            var token = Cancel.Token;
            if (Connection.State != System.Data.ConnectionState.Open)
            {
                await PostgresSink.OpenNamedAsync(Connection, writer._options, writer.Source, token).ConfigureAwait(false);
            }

            await writer.TuneFirstLoadSessionAsync(Connection, mapping, token).ConfigureAwait(false);
            Transaction = await Connection.BeginTransactionAsync(token).ConfigureAwait(false);
            if (Classified.Fresh.Count > 0 && prepared.Release is { } release)
            {
                // Encoded whole (the first rows sent meanwhile), then the records let go: they die young instead of living
                // on (and being copied by each collection) until the batch commits. The bytes serve the rest of the copy,
                // and the write should the copy be rolled back.
                await EncodedRows<TRecord>.EncodeAndCopyAsync(Connection, mapping.CopyIntoTarget, mapping.Fields, rowHashes, Records, Classified.Fresh, writer.EncodedCapacity, encoded => writer.Release(release, encoded), token).ConfigureAwait(false);
                Rows = (ulong)Classified.Fresh.Count;
            }
            else if (Classified.Fresh.Count > 0)
            {
                Rows = await CopyRowsAsync(Connection, mapping.CopyIntoTarget, mapping.Fields, rowHashes, Records, Classified.Fresh, token).ConfigureAwait(false);
            }

            if (Classified.Uncertain.Count > 0)
            {
                // Stored keys whose rows changed (the table has the hash column): staged in this session's own temporary
                // table, then updated where the stored hash differs, as the ordinary merge does.
                await TableMapping<TRecord>.ExecuteAsync(Connection, Transaction, mapping.CreateStage, token).ConfigureAwait(false);
                await CopyRowsAsync(Connection, mapping.CopyIntoStage, mapping.Fields, rowHashes, Records, Classified.Uncertain, token).ConfigureAwait(false);
                Updated = await TableMapping<TRecord>.ExecuteAsync(Connection, Transaction, mapping.UpdateFromStage, token).ConfigureAwait(false);
            }
        }

        /// <summary>
        /// Waits for the copy; whether it succeeded (a failure leaves the batch to the ordinary path, which reports it).
        /// <paramref name="cancellationToken"/> cancels the copy itself (it then fails).
        /// </summary>
        public async Task<bool> SucceededAsync(CancellationToken cancellationToken = default)
        {
            using var cancelCopy = cancellationToken.Register(static a => ((CopyAhead)a!).CancelQuietly(), this);
            try
            {
                await Copy.ConfigureAwait(false);
                return true;
            }
            catch (Exception)
            {
                // Whatever it was, the ordinary path copies the rows again and reports it with the batch's positions.
                return false;
            }
        }

        public void CancelQuietly()
        {
            try
            {
                Cancel.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Already taken or rolled back.
            }
        }
    }
}
