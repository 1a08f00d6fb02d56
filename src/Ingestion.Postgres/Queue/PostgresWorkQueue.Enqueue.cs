using Ingestion.Queue;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Queue;

/// <summary>Enqueue: one item (alone or in the caller's transaction) and bulk enqueue through binary COPY.</summary>
public sealed partial class PostgresWorkQueue
{
    /// <inheritdoc />
    public async Task<bool> EnqueueAsync(string queue, WorkItemRequest item, CancellationToken cancellationToken)
    {
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            return await EnqueueCoreAsync(conn, null, queue, queueId, item, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Adds an item within the caller's transaction: it becomes visible (and workers are notified) only if the
    /// transaction commits, so a record and its follow-up work commit together.
    /// </summary>
    /// <param name="transaction">The caller's open transaction (on a connection to the library's database).</param>
    /// <param name="queue">The queue name.</param>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="true"/> when added; <see langword="false"/> when the key was already known.</returns>
    public async Task<bool> EnqueueAsync(NpgsqlTransaction transaction, string queue, WorkItemRequest item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        var conn = transaction.Connection ?? throw new ArgumentException("The transaction is already finished.", nameof(transaction));
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        return await EnqueueCoreAsync(conn, transaction, queue, queueId, item, cancellationToken).ConfigureAwait(false);
    }

    private async Task<bool> EnqueueCoreAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string queue, int queueId, WorkItemRequest item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        CheckKey(item.Key, "item");
        var cmd = new NpgsqlCommand(_enqueueSql, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = queueId });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = item.Key, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)item.Payload ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = item.Priority });
            cmd.Parameters.Add(new NpgsqlParameter { Value = item.NotBefore is { } nb ? nb.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _channel, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue, NpgsqlDbType = NpgsqlDbType.Text });
            await cmd.PrepareAsync(cancellationToken).ConfigureAwait(false);
            return (int)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))! > 0;
        }
    }

    /// <inheritdoc />
    public async Task<BulkEnqueueResult> EnqueueManyAsync(string queue, IAsyncEnumerable<WorkItemRequest> items, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            long read = 0, added = 0;
            var e = items.GetAsyncEnumerator(cancellationToken);
            await using (e.ConfigureAwait(false))
            {
                var more = await e.MoveNextAsync().ConfigureAwait(false);
                var direct = true;
                while (more)
                {
                    var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                    await using (tx.ConfigureAwait(false))
                    {
                        long r, a;
                        if (direct)
                        {
                            (r, a, more, direct) = await DirectChunkAsync(conn, tx, queue, queueId, e, read, cancellationToken).ConfigureAwait(false);
                        }
                        else
                        {
                            (r, a, more) = await BulkChunkAsync(conn, tx, queue, queueId, e, read, BulkChunkRows, cancellationToken).ConfigureAwait(false);
                        }

                        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                        read += r;
                        added += a;
                    }
                }
            }

            return new BulkEnqueueResult(read, added);
        }
    }

    /// <summary>
    /// Adds many items through binary COPY within the caller's transaction (all or nothing), skipping keys
    /// already known and keys repeated in the input.
    /// </summary>
    /// <param name="transaction">The caller's open transaction.</param>
    /// <param name="queue">The queue name.</param>
    /// <param name="items">The items.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were read and how many added.</returns>
    public async Task<BulkEnqueueResult> EnqueueManyAsync(NpgsqlTransaction transaction, string queue, IAsyncEnumerable<WorkItemRequest> items, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        ArgumentNullException.ThrowIfNull(items);
        var conn = transaction.Connection ?? throw new ArgumentException("The transaction is already finished.", nameof(transaction));
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var e = items.GetAsyncEnumerator(cancellationToken);
        await using (e.ConfigureAwait(false))
        {
            if (!await e.MoveNextAsync().ConfigureAwait(false))
            {
                return new BulkEnqueueResult(0, 0);
            }

            // Chunks within the caller's transaction: keys of an earlier chunk are in queue_items by then, so the
            // next chunk skips them like any known key, and the client never holds more than one chunk's keys.
            long read = 0, added = 0;
            var more = true;
            while (more)
            {
                var (r, a, m) = await BulkChunkAsync(conn, transaction, queue, queueId, e, read, BulkChunkRows, cancellationToken).ConfigureAwait(false);
                read += r;
                added += a;
                more = m;
            }

            return new BulkEnqueueResult(read, added);
        }
    }

    /// <summary>
    /// The fast path of bulk enqueue, one transaction per <see cref="DirectChunkRows"/> items: while the queue has no
    /// done keys, items go by binary COPY straight into <c>queue_items</c>, sorted by key on the client (the primary
    /// key takes them in index order) with keys repeated in the chunk dropped (the first wins). A key the queue
    /// already has (or a concurrent producer adds) fails the COPY on the primary key: the chunk is then merged through
    /// staging like any other, from the buffered items, and the rest of the call takes that path. One sorted COPY a
    /// transaction: two producers wait on each other's keys in key order only, so they cannot deadlock.
    /// </summary>
    /// <returns>Items read, items added, whether input remains, and whether the next chunk may take this path.</returns>
    private async Task<(long Read, long Added, bool More, bool Direct)> DirectChunkAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string queue, int queueId, IAsyncEnumerator<WorkItemRequest> e, long before, CancellationToken cancellationToken)
    {
        var chunk = new List<WorkItemRequest>(DirectChunkRows);
        var more = true;
        while (more && chunk.Count < DirectChunkRows)
        {
            var item = e.Current ?? throw new ArgumentException($"Bulk enqueue to queue '{queue}': item {before + chunk.Count + 1} is null.", "items");
            CheckKey(item.Key, $"item {before + chunk.Count + 1}");
            chunk.Add(item);
            more = await e.MoveNextAsync().ConfigureAwait(false);
        }

        // now() of this transaction, the run_after of items without NotBefore (as the staged merge gives them).
        var cmd = Command(conn, tx, $"SELECT now(), EXISTS (SELECT 1 FROM {_q}.queue_done WHERE queue_id = $1)", queueId);
        DateTime now;
        bool hasDone;
        await using (cmd.ConfigureAwait(false))
        {
            var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (r.ConfigureAwait(false))
            {
                await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                now = r.GetFieldValue<DateTime>(0);
                hasDone = r.GetBoolean(1);
            }
        }

        if (!hasDone)
        {
            // Stable order by key (ordinal: UTF-16 order, the "C" collation's byte order but for rare surrogate pairs,
            // which only costs index locality), then the first of each repeated key.
            var order = new int[chunk.Count];
            for (var i = 0; i < order.Length; i++)
            {
                order[i] = i;
            }

            Array.Sort(order, (x, y) => string.CompareOrdinal(chunk[x].Key, chunk[y].Key) is var c && c != 0 ? c : x.CompareTo(y));
            await ExecAsync(conn, tx, "SAVEPOINT ingestion_queue_direct", cancellationToken).ConfigureAwait(false);
            long added = 0;
            try
            {
                var importer = await conn.BeginBinaryImportAsync($"COPY {_q}.queue_items (queue_id, key, payload, priority, run_after) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false);
                await using (importer.ConfigureAwait(false))
                {
                    string? previous = null;
                    foreach (var i in order)
                    {
                        var item = chunk[i];
                        if (string.Equals(item.Key, previous, StringComparison.Ordinal))
                        {
                            continue;
                        }

                        previous = item.Key;
                        importer.StartRow();
                        importer.Write(queueId, NpgsqlDbType.Integer);
                        WriteKeyPayloadPriority(importer, item);
                        importer.Write(item.NotBefore is { } nb ? nb.UtcDateTime : now, NpgsqlDbType.TimestampTz);
                        added++;
                    }

                    await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
                }

                await ExecAsync(conn, tx, "RELEASE SAVEPOINT ingestion_queue_direct", cancellationToken).ConfigureAwait(false);
                if (added > 0)
                {
                    await NotifyAsync(conn, tx, queue, cancellationToken).ConfigureAwait(false);
                }

                return (chunk.Count, added, more, true);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                await ExecAsync(conn, tx, "ROLLBACK TO SAVEPOINT ingestion_queue_direct", cancellationToken).ConfigureAwait(false);
            }
        }

        // Known keys: merge this chunk through staging, and the rest of the call too.
        var buffered = Buffered(chunk).GetAsyncEnumerator(cancellationToken);
        await using (buffered.ConfigureAwait(false))
        {
            await buffered.MoveNextAsync().ConfigureAwait(false);
            var (read, merged, _) = await BulkChunkAsync(conn, tx, queue, queueId, buffered, before, chunk.Count, cancellationToken).ConfigureAwait(false);
            return (read, merged, more, false);
        }
    }

    /// <summary>The key, payload and priority columns of an item in a bulk COPY row (both bulk paths write them alike).</summary>
    private static void WriteKeyPayloadPriority(NpgsqlBinaryImporter importer, WorkItemRequest item)
    {
        importer.Write(item.Key, NpgsqlDbType.Text);
        if (item.Payload is null)
        {
            importer.WriteNull();
        }
        else
        {
            importer.Write(item.Payload, NpgsqlDbType.Text);
        }

        importer.Write(item.Priority, NpgsqlDbType.Integer);
    }

    private static async IAsyncEnumerable<WorkItemRequest> Buffered(List<WorkItemRequest> items)
    {
        foreach (var item in items)
        {
            yield return item;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <summary>COPYs up to <paramref name="maxRows"/> items (the enumerator is positioned on the first) into a staging table and merges them.</summary>
    private async Task<(long Read, long Added, bool More)> BulkChunkAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string queue, int queueId, IAsyncEnumerator<WorkItemRequest> e, long before, long maxRows, CancellationToken cancellationToken)
    {
        await ExecAsync(conn, tx, """
            CREATE TEMP TABLE IF NOT EXISTS ingestion_queue_stage (ord bigint, key text COLLATE "C", payload text, priority int, run_after timestamptz) ON COMMIT DROP;
            TRUNCATE ingestion_queue_stage;
            """, cancellationToken).ConfigureAwait(false);
        long read = 0;
        var more = true;

        var importer = await conn.BeginBinaryImportAsync("COPY ingestion_queue_stage (ord, key, payload, priority, run_after) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false);
        await using (importer.ConfigureAwait(false))
        {
            while (more && read < maxRows)
            {
                var item = e.Current ?? throw new ArgumentException($"Bulk enqueue to queue '{queue}': item {before + read + 1} is null.", "items");
                CheckKey(item.Key, $"item {before + read + 1}");

                // Synchronous writes: they only fill Npgsql's buffer, and flush it when full.
                importer.StartRow();
                importer.Write(read, NpgsqlDbType.Bigint);
                WriteKeyPayloadPriority(importer, item);
                if (item.NotBefore is { } nb)
                {
                    importer.Write(nb.ToUniversalTime(), NpgsqlDbType.TimestampTz);
                }
                else
                {
                    importer.WriteNull();
                }

                read++;
                more = await e.MoveNextAsync().ConfigureAwait(false);
            }

            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        await ExecAsync(conn, tx, "ANALYZE ingestion_queue_stage", cancellationToken).ConfigureAwait(false);
        // DISTINCT ON drops keys repeated in the input (the first wins) and, being a sort by key, also makes the
        // inserts below arrive in key order, which the primary-key index takes far faster than storage order.
        var select = $"""
            SELECT $1, s.key, s.payload, s.priority, coalesce(s.run_after, now())
            FROM (SELECT DISTINCT ON (key) key, payload, priority, run_after FROM ingestion_queue_stage ORDER BY key, ord) s
            WHERE NOT EXISTS (SELECT 1 FROM {_q}.queue_items i WHERE i.queue_id = $1 AND i.key = s.key)
              AND NOT EXISTS (SELECT 1 FROM {_q}.queue_done d WHERE d.queue_id = $1 AND d.key = s.key)
            """;
        var insert = $"INSERT INTO {_q}.queue_items (queue_id, key, payload, priority, run_after) {select}";
        long added;
        await ExecAsync(conn, tx, "SAVEPOINT ingestion_queue_bulk", cancellationToken).ConfigureAwait(false);
        try
        {
            // Fast path: a plain INSERT of the keys found absent. A concurrent producer may insert one of them
            // first (unique violation): then redo the chunk with ON CONFLICT DO NOTHING.
            added = await ExecAsync(conn, tx, insert, cancellationToken, queueId).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            await ExecAsync(conn, tx, "ROLLBACK TO SAVEPOINT ingestion_queue_bulk", cancellationToken).ConfigureAwait(false);
            added = await ExecAsync(conn, tx, insert + " ON CONFLICT (queue_id, key) DO NOTHING", cancellationToken, queueId).ConfigureAwait(false);
        }

        await ExecAsync(conn, tx, "RELEASE SAVEPOINT ingestion_queue_bulk", cancellationToken).ConfigureAwait(false);
        if (added > 0)
        {
            await NotifyAsync(conn, tx, queue, cancellationToken).ConfigureAwait(false);
        }

        return (read, added, more);
    }
}
