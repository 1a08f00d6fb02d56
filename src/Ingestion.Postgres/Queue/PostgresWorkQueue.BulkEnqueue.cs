using Ingestion.Queue;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Queue;

/// <summary>Bulk enqueue: binary COPY straight into the queue table while it can, a staged merge otherwise.</summary>
public sealed partial class PostgresWorkQueue
{
    /// <inheritdoc />
    public async Task<BulkEnqueueResult> EnqueueManyAsync(string queue, IAsyncEnumerable<WorkItemRequest> items, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var e = items.GetAsyncEnumerator(cancellationToken);
            await using (e.ConfigureAwait(false))
            {
                var reader = new BulkReader(e, queue);
                await using (reader.ConfigureAwait(false))
                {
                    // One transaction per chunk; the next chunk is read and sorted while this one is sent.
                    long read = 0, added = 0;
                    while (await reader.NextAsync(cancellationToken).ConfigureAwait(false) is { } chunk)
                    {
                        reader.ReadAhead(cancellationToken);
                        read += chunk.Count;
                        long? copied;

                        // Read committed (as Npgsql begins by default, said here because the check after the COPY
                        // depends on it: that check must see what committed while the COPY ran).
                        var tx = await conn.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
                        await using (tx.ConfigureAwait(false))
                        {
                            copied = await CopyChunkAsync(conn, tx, queue, queueId, chunk, cancellationToken).ConfigureAwait(false);
                            added += copied ?? await MergeBufferedAsync(conn, tx, queue, queueId, chunk, cancellationToken).ConfigureAwait(false);
                            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                        }

                        if (copied is null)
                        {
                            // Known keys: the rest of the call is merged through staging too.
                            var rest = await reader.RemainingAsync(cancellationToken).ConfigureAwait(false);
                            if (rest is null)
                            {
                                return new BulkEnqueueResult(read, added);
                            }

                            await using (rest.ConfigureAwait(false))
                            {
                                return await MergeChunksAsync(conn, null, queue, queueId, rest, read, added, cancellationToken).ConfigureAwait(false);
                            }
                        }
                    }

                    return new BulkEnqueueResult(read, added);
                }
            }
        }
    }

    /// <summary>
    /// Merges the items of <paramref name="e"/> (positioned on its first) through staging, <see cref="BulkChunkRows"/>
    /// at a time: each in a transaction of its own, or all in the caller's <paramref name="transaction"/>. In one
    /// transaction, keys of an earlier chunk are in <c>queue_items</c> by then, so the next chunk skips them like any
    /// known key, and the client never holds more than one chunk's keys.
    /// </summary>
    private async Task<BulkEnqueueResult> MergeChunksAsync(NpgsqlConnection conn, NpgsqlTransaction? transaction, string queue, int queueId, IAsyncEnumerator<WorkItemRequest> e, long read, long added, CancellationToken cancellationToken)
    {
        var more = true;
        while (more)
        {
            var tx = transaction ?? await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var (r, a, m) = await BulkChunkAsync(conn, tx, queue, queueId, e, read, BulkChunkRows, cancellationToken).ConfigureAwait(false);
                if (transaction is null)
                {
                    await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                }

                read += r;
                added += a;
                more = m;
            }
            finally
            {
                if (transaction is null)
                {
                    await tx.DisposeAsync().ConfigureAwait(false);
                }
            }
        }

        return new BulkEnqueueResult(read, added);
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
            return await e.MoveNextAsync().ConfigureAwait(false)
                ? await MergeChunksAsync(conn, transaction, queue, queueId, e, 0, 0, cancellationToken).ConfigureAwait(false)
                : new BulkEnqueueResult(0, 0);
        }
    }

    /// <summary>
    /// The fast path of bulk enqueue: while the queue has no done keys, a chunk goes by binary COPY straight into
    /// <c>queue_items</c>, in key order (the primary key takes them in index order) with keys repeated in the chunk
    /// dropped (the first wins), and only the columns some item of the chunk sets (the others take their defaults:
    /// priority 0, no payload, <c>run_after</c> the transaction's <c>now()</c>). A key the queue already has, or a
    /// concurrent producer adds, fails the COPY on the primary key; a key a worker completed while the COPY ran (it left
    /// <c>queue_items</c> for <c>queue_done</c>, where the COPY does not look) shows after the COPY as a done key of
    /// the queue. Either way the chunk's rows are rolled back to a savepoint and <see langword="null"/> returned: the
    /// caller merges the chunk through staging, which checks both tables in one snapshot. One sorted COPY a
    /// transaction: two producers wait on each other's keys in key order only, so they cannot deadlock.
    /// </summary>
    /// <returns>The rows added, or <see langword="null"/> when the chunk must be merged through staging.</returns>
    private async Task<long?> CopyChunkAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string queue, int queueId, BulkChunk chunk, CancellationToken cancellationToken)
    {
        // now() of this transaction: the run_after of items without NotBefore when others have one. Whether the queue
        // has a done key is asked as its least done key: the queue's pool plans generically, and EXISTS on the queue
        // id alone then scans queue_done (every queue's done keys); min() always walks the primary key.
        var hasDoneSql = $"(SELECT min(key) FROM {_q}.queue_done WHERE queue_id = $1) IS NOT NULL";
        var cmd = Command(conn, tx, $"SELECT now(), {hasDoneSql}", queueId);
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

        if (hasDone)
        {
            return null;
        }

        await ExecAsync(conn, tx, "SAVEPOINT ingestion_queue_direct", cancellationToken).ConfigureAwait(false);
        try
        {
            var columns = "queue_id, key" + (chunk.AnyPayload ? ", payload" : string.Empty) + (chunk.AnyPriority ? ", priority" : string.Empty) + (chunk.AnyNotBefore ? ", run_after" : string.Empty);
            ulong copied;
            var importer = await conn.BeginBinaryImportAsync($"COPY {_q}.queue_items ({columns}) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false);
            await using (importer.ConfigureAwait(false))
            {
                // Synchronous writes: they only fill Npgsql's buffer, and flush it when full.
                for (var n = 0; n < chunk.Distinct; n++)
                {
                    var i = chunk.Ordered(n);
                    importer.StartRow();
                    importer.Write(queueId, NpgsqlDbType.Integer);
                    importer.Write(chunk.Key(i), NpgsqlDbType.Text);
                    if (chunk.AnyPayload)
                    {
                        WritePayload(importer, chunk.Payload(i));
                    }

                    if (chunk.AnyPriority)
                    {
                        importer.Write(chunk.Priority(i), NpgsqlDbType.Integer);
                    }

                    if (chunk.AnyNotBefore)
                    {
                        importer.Write(chunk.NotBefore(i) ?? now, NpgsqlDbType.TimestampTz);
                    }
                }

                copied = await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }

            // Still no done key (see above)? Then the rows stay, and workers hear of them when this commits.
            var clean = await ScalarAsync<int>(conn, tx, $"SELECT count(*)::int FROM (SELECT pg_notify($2, $3) WHERE NOT {hasDoneSql}) n", cancellationToken, queueId, _channel, queue).ConfigureAwait(false);
            if (clean == 1)
            {
                return (long)copied;
            }
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            // A key the queue already has: roll the chunk back below.
        }

        await ExecAsync(conn, tx, "ROLLBACK TO SAVEPOINT ingestion_queue_direct", cancellationToken).ConfigureAwait(false);
        return null;
    }

    /// <summary>Merges a chunk the fast path could not take through staging, from its buffered items.</summary>
    private async Task<long> MergeBufferedAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string queue, int queueId, BulkChunk chunk, CancellationToken cancellationToken)
    {
        var items = chunk.ToRequests();
        var buffered = Buffered(items).GetAsyncEnumerator(cancellationToken);
        await using (buffered.ConfigureAwait(false))
        {
            await buffered.MoveNextAsync().ConfigureAwait(false);
            var (_, merged, _) = await BulkChunkAsync(conn, tx, queue, queueId, buffered, chunk.Start, items.Count, cancellationToken).ConfigureAwait(false);
            return merged;
        }
    }

    private static void WritePayload(NpgsqlBinaryImporter importer, ReadOnlyMemory<char>? payload)
    {
        if (payload is { } text)
        {
            importer.Write(text, NpgsqlDbType.Text);
        }
        else
        {
            importer.WriteNull();
        }
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
                importer.Write(item.Key, NpgsqlDbType.Text);
                WritePayload(importer, item.Payload?.AsMemory());
                importer.Write(item.Priority, NpgsqlDbType.Integer);
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
