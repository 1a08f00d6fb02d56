using System.Collections.Concurrent;
using System.Text;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Sql;
using Ingestion.Queue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Queue;

/// <summary>
/// The durable work queue in PostgreSQL (tables <c>queues</c>, <c>queue_items</c>, <c>queue_done</c> of the
/// library's schema). Claims use <c>FOR UPDATE SKIP LOCKED</c> under a lease; a claim completes the previous
/// batch in the same statement (one durable commit per round trip); finished items leave the hot table for
/// <c>queue_done</c>, which keeps their keys known; new work is announced with <c>NOTIFY</c>. Enqueue can join
/// the caller's transaction, and bulk enqueue and reconciliation stream through binary COPY.
/// </summary>
public sealed class PostgresWorkQueue : IWorkQueueStore, IAsyncDisposable
{
    private const int MaxKeyBytes = 2000;
    private const int BulkChunkRows = 500_000;
    private const int DirectChunkRows = 100_000;
    private const short Pending = 0;
    private const short Running = 1;
    private const short Dead = 3;
    private readonly IngestionDatabase _database;
    private readonly ConcurrentDictionary<string, int> _queueIds = new(StringComparer.Ordinal);
    private readonly QueueNotifier _notifier;
    private readonly string _channel;
    private readonly string _q;
    private readonly string _enqueueSql;
    private readonly string _claimSql;
    private readonly string _claimUpsertSql;
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _completeSql;

    /// <summary>Creates the queue store over the library's database.</summary>
    /// <param name="database">The database (its schema holds the queue tables; migrated on first use when <c>MigrateAtStart</c> is on).</param>
    /// <param name="logger">A logger, or <see langword="null"/>.</param>
    public PostgresWorkQueue(IngestionDatabase database, ILogger<PostgresWorkQueue>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
        _q = PgIdentifier.Quote(database.Schema, "Ingestion:Postgres:Schema");
        var channel = database.Schema + ".queue";
        _channel = Encoding.UTF8.GetByteCount(channel) <= PgIdentifier.MaxBytes ? channel : "ingestion.queue";
        _notifier = new QueueNotifier(database.DataSource, _channel, (ILogger?)logger ?? NullLogger.Instance);
        _dataSource = BuildDataSource(database.Options.ConnectionString ?? throw new ArgumentException("The database has no connection string.", nameof(database)));
        _enqueueSql = $"""
            WITH ins AS (
                INSERT INTO {_q}.queue_items (queue_id, key, payload, priority, run_after)
                SELECT $1, $2, $3, $4, coalesce($5, now())
                WHERE NOT EXISTS (SELECT 1 FROM {_q}.queue_done d WHERE d.queue_id = $1 AND d.key = $2)
                ON CONFLICT (queue_id, key) DO NOTHING
                RETURNING 1)
            SELECT count(*)::int FROM (SELECT pg_notify($6, $7) FROM ins) n
            """;
        _completeSql = $"""
            WITH done AS (
                DELETE FROM {_q}.queue_items i
                USING unnest($3::text[], $4::int[]) AS c(key, attempt)
                WHERE i.queue_id = $1 AND i.key = c.key AND i.attempts = c.attempt AND i.lease_owner = $2
                RETURNING i.key, i.attempts, i.enqueued_at)
            INSERT INTO {_q}.queue_done (queue_id, key, attempts, enqueued_at, completed_at)
            SELECT $1, key, attempts, enqueued_at, now() FROM done
            ON CONFLICT (queue_id, key) DO UPDATE SET attempts = excluded.attempts, completed_at = excluded.completed_at
            """;
        // The claim completes the previous batch and claims the next in one statement, run as its own implicit
        // transaction (one round trip, one durable commit). Completed rows are archived with a plain INSERT: a key can
        // already be in queue_done only after a race (re-enqueued while its completion committed), and then the
        // statement fails as a whole on queue_done's key and is run again with the ON CONFLICT form.
        // The claimed rows are found again by ctid (the row locked in "next", held until commit): no key lookups.
        // Candidates skip the keys being completed (a rescued item this worker completes now must not be claimed
        // again in the same statement); the owner test first keeps that check off rows this worker never leased.
        const string ArchiveUpsert = "ON CONFLICT (queue_id, key) DO UPDATE SET attempts = excluded.attempts, completed_at = excluded.completed_at";
        string Claim(string onConflict) => $"""
            WITH done AS (
                DELETE FROM {_q}.queue_items i
                USING unnest($4::text[], $5::int[]) AS c(key, attempt)
                WHERE i.queue_id = $1 AND i.key = c.key AND i.attempts = c.attempt AND i.lease_owner = $2
                RETURNING i.key, i.attempts, i.enqueued_at),
            archived AS (
                INSERT INTO {_q}.queue_done (queue_id, key, attempts, enqueued_at, completed_at)
                SELECT $1, key, attempts, enqueued_at, now() FROM done
                {onConflict}
                RETURNING 1),
            next AS (
                SELECT ctid FROM {_q}.queue_items
                WHERE queue_id = $1 AND state = 0 AND run_after <= now()
                  AND (lease_owner IS DISTINCT FROM $2 OR key <> ALL ($4::text[]))
                ORDER BY priority DESC, run_after
                LIMIT $3
                FOR UPDATE SKIP LOCKED),
            claimed AS (
                UPDATE {_q}.queue_items i
                SET state = 1, attempts = i.attempts + 1, lease_owner = $2, lease_until = now() + $6 * interval '1 millisecond'
                WHERE i.ctid = ANY (ARRAY(SELECT ctid FROM next))
                RETURNING i.key, i.attempts, i.payload, i.priority, i.enqueued_at, i.last_error)
            SELECT NULL::text, (SELECT count(*) FROM archived)::int, NULL::text, NULL::int, NULL::timestamptz, NULL::text
            UNION ALL
            SELECT key, attempts, payload, priority, enqueued_at, last_error FROM claimed
            """;
        _claimSql = Claim(string.Empty);
        _claimUpsertSql = Claim(ArchiveUpsert);
    }

    /// <summary>The channel on which new work is announced (<c>NOTIFY</c>); the payload is the queue name.</summary>
    public string NotificationChannel => _channel;

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

    /// <inheritdoc />
    public async Task<ClaimResult> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfNegative(request.MaxItems);
        var queueId = await QueueIdAsync(request.Queue, cancellationToken).ConfigureAwait(false);
        var (keys, attempts) = Split(request.Complete);
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            try
            {
                return await ClaimCoreAsync(conn, _claimSql, queueId, request, keys, attempts, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation && keys.Length > 0)
            {
                // A completed key was already archived (see the constructor): nothing was applied; archive with the upsert.
                return await ClaimCoreAsync(conn, _claimUpsertSql, queueId, request, keys, attempts, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async Task<ClaimResult> ClaimCoreAsync(NpgsqlConnection conn, string sql, int queueId, ClaimRequest request, string[] keys, int[] attempts, CancellationToken cancellationToken)
    {
        var claim = new NpgsqlCommand(sql, conn);
        await using (claim.ConfigureAwait(false))
        {
            claim.Parameters.Add(new NpgsqlParameter<int> { TypedValue = queueId });
            claim.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.Owner, NpgsqlDbType = NpgsqlDbType.Text });
            claim.Parameters.Add(new NpgsqlParameter<int> { TypedValue = request.MaxItems });
            claim.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = keys, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            claim.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = attempts, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
            claim.Parameters.Add(new NpgsqlParameter<double> { TypedValue = request.Lease.TotalMilliseconds });
            await claim.PrepareAsync(cancellationToken).ConfigureAwait(false);
            var items = new List<WorkItem>(request.MaxItems);
            var completed = 0;
            var reader = await claim.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (reader.IsDBNull(0))
                    {
                        completed = reader.GetInt32(1);
                        continue;
                    }

                    items.Add(new WorkItem(request.Queue, reader.GetString(0), reader.GetInt32(1))
                    {
                        Payload = reader.IsDBNull(2) ? null : reader.GetString(2),
                        Priority = reader.GetInt32(3),
                        EnqueuedAt = reader.GetFieldValue<DateTimeOffset>(4),
                        LastError = reader.IsDBNull(5) ? null : reader.GetString(5),
                    });
                }
            }

            return new ClaimResult(items, completed);
        }
    }

    /// <inheritdoc />
    public async Task<int> CompleteAsync(string queue, string owner, IReadOnlyCollection<WorkItemHandle> items, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0)
        {
            return 0;
        }

        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var (keys, attempts) = Split(items);
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var cmd = new NpgsqlCommand(_completeSql, conn);
            await using (cmd.ConfigureAwait(false))
            {
                cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = queueId });
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = owner, NpgsqlDbType = NpgsqlDbType.Text });
                cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = keys, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
                cmd.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = attempts, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
                await cmd.PrepareAsync(cancellationToken).ConfigureAwait(false);
                return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc />
    public async Task<FailResult> FailAsync(string queue, string owner, int maxAttempts, IReadOnlyCollection<WorkItemFailure> failures, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(failures);
        if (failures.Count == 0)
        {
            return new FailResult(0, 0);
        }

        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var sql = $"""
            WITH f AS (
                UPDATE {_q}.queue_items i
                SET state = CASE WHEN i.attempts >= $3 THEN {Dead} ELSE {Pending} END,
                    run_after = now() + f.delay_ms * interval '1 millisecond',
                    last_error = f.error, failed_at = now(), lease_until = NULL
                FROM unnest($4::text[], $5::int[], $6::text[], $7::float8[]) AS f(key, attempt, error, delay_ms)
                WHERE i.queue_id = $1 AND i.key = f.key AND i.attempts = f.attempt AND i.lease_owner = $2 AND i.state = {Running}
                RETURNING i.state)
            SELECT count(*) FILTER (WHERE state = {Pending})::int, count(*) FILTER (WHERE state = {Dead})::int FROM f
            """;
        var list = failures.ToList();
        return await ReadRowAsync(sql, r => new FailResult(r.GetInt32(0), r.GetInt32(1)), cancellationToken,
            queueId, owner, maxAttempts,
            list.Select(f => f.Handle.Key).ToArray(), list.Select(f => f.Handle.Attempt).ToArray(),
            list.Select(f => f.Error.Replace("\0", string.Empty, StringComparison.Ordinal)).ToArray(),
            list.Select(f => Math.Max(0, f.RetryDelay.TotalMilliseconds)).ToArray()).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<int> ReleaseAsync(string queue, string owner, IReadOnlyCollection<WorkItemHandle> items, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0)
        {
            return 0;
        }

        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var (keys, attempts) = Split(items);
        var sql = $"""
            WITH r AS (
                UPDATE {_q}.queue_items i SET state = {Pending}, attempts = i.attempts - 1, lease_until = NULL
                FROM unnest($3::text[], $4::int[]) AS r(key, attempt)
                WHERE i.queue_id = $1 AND i.key = r.key AND i.attempts = r.attempt AND i.lease_owner = $2 AND i.state = {Running}
                RETURNING 1)
            SELECT count(*)::int FROM r
            """;
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var n = await ScalarAsync<int>(conn, null, sql, cancellationToken, queueId, owner, keys, attempts).ConfigureAwait(false);
            if (n > 0)
            {
                await NotifyAsync(conn, null, queue, cancellationToken).ConfigureAwait(false);
            }

            return n;
        }
    }

    /// <inheritdoc />
    public async Task<int> ExtendLeaseAsync(string queue, string owner, IReadOnlyCollection<WorkItemHandle> items, TimeSpan lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0)
        {
            return 0;
        }

        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var (keys, attempts) = Split(items);
        var sql = $"""
            UPDATE {_q}.queue_items i SET lease_until = now() + $5 * interval '1 millisecond'
            FROM unnest($3::text[], $4::int[]) AS r(key, attempt)
            WHERE i.queue_id = $1 AND i.key = r.key AND i.attempts = r.attempt AND i.lease_owner = $2 AND i.state = {Running}
            """;
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            return await ExecAsync(conn, null, sql, cancellationToken, queueId, owner, keys, attempts, lease.TotalMilliseconds).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async Task<RescueResult> RescueExpiredAsync(string queue, int maxAttempts, CancellationToken cancellationToken)
    {
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var sql = $"""
            WITH r AS (
                UPDATE {_q}.queue_items
                SET state = CASE WHEN attempts >= $2 THEN {Dead} ELSE {Pending} END,
                    last_error = 'the lease of worker ' || coalesce(lease_owner, '?') || ' expired at ' || lease_until
                        || ' during attempt ' || attempts || ' (the worker died or hung)',
                    failed_at = now(), lease_until = NULL
                WHERE queue_id = $1 AND state = {Running} AND lease_until < now()
                RETURNING state)
            SELECT count(*) FILTER (WHERE state = {Pending})::int, count(*) FILTER (WHERE state = {Dead})::int FROM r
            """;
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            RescueResult result = new(0, 0);
            var cmd = Command(conn, null, sql, queueId, maxAttempts);
            await using (cmd.ConfigureAwait(false))
            {
                var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        result = new RescueResult(reader.GetInt32(0), reader.GetInt32(1));
                    }
                }
            }

            if (result.Requeued > 0)
            {
                await NotifyAsync(conn, null, queue, cancellationToken).ConfigureAwait(false);
            }

            return result;
        }
    }

    /// <inheritdoc />
    public async Task<DateTimeOffset?> NextDueAsync(string queue, CancellationToken cancellationToken)
    {
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var cmd = Command(conn, null, $"SELECT min(run_after) FROM {_q}.queue_items WHERE queue_id = $1 AND state = {Pending}", queueId);
            await using (cmd.ConfigureAwait(false))
            {
                var v = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                return v is DateTime dt ? new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Utc)) : null;
            }
        }
    }

    /// <inheritdoc />
    public async Task<IAsyncDisposable> SubscribeAsync(string queue, Action onWork, CancellationToken cancellationToken)
    {
        WorkQueueOptions.ThrowIfInvalidQueueName(queue);
        ArgumentNullException.ThrowIfNull(onWork);
        await EnsureReadyAsync(cancellationToken).ConfigureAwait(false);
        return await _notifier.SubscribeAsync(queue, onWork, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<WorkQueueStats> GetStatsAsync(string queue, CancellationToken cancellationToken)
    {
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var sql = $"""
            SELECT count(*) FILTER (WHERE state = {Pending}),
                   count(*) FILTER (WHERE state = {Running}),
                   count(*) FILTER (WHERE state = {Pending} AND attempts > 0),
                   count(*) FILTER (WHERE state = {Dead}),
                   extract(epoch FROM now() - min(enqueued_at) FILTER (WHERE state = {Pending}))::float8,
                   (SELECT count(*) FROM {_q}.queue_done WHERE queue_id = $1),
                   (SELECT count(*) FROM {_q}.queue_done WHERE queue_id = $1 AND completed_at > now() - interval '1 minute')
            FROM {_q}.queue_items WHERE queue_id = $1
            """;
        return await ReadRowAsync(sql, r => new WorkQueueStats
        {
            Queue = queue,
            Pending = r.GetInt64(0),
            Running = r.GetInt64(1),
            Failed = r.GetInt64(2),
            Dead = r.GetInt64(3),
            OldestPendingAge = r.IsDBNull(4) ? null : TimeSpan.FromSeconds(Math.Max(0, r.GetDouble(4))),
            Done = r.GetInt64(5),
            ThroughputPerSecond = r.GetInt64(6) / 60.0,
        }, cancellationToken, queueId).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<DeadWorkItem>> ListDeadAsync(string queue, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var sql = $"""
            SELECT key, payload, attempts, last_error, failed_at, enqueued_at FROM {_q}.queue_items
            WHERE queue_id = $1 AND state = {Dead} ORDER BY failed_at DESC NULLS LAST, key LIMIT $2
            """;
        var list = new List<DeadWorkItem>();
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var cmd = Command(conn, null, sql, queueId, limit);
            await using (cmd.ConfigureAwait(false))
            {
                var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (r.ConfigureAwait(false))
                {
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        list.Add(new DeadWorkItem(
                            r.GetString(0),
                            r.IsDBNull(1) ? null : r.GetString(1),
                            r.GetInt32(2),
                            r.IsDBNull(3) ? null : r.GetString(3),
                            r.IsDBNull(4) ? null : r.GetFieldValue<DateTimeOffset>(4),
                            r.GetFieldValue<DateTimeOffset>(5)));
                    }
                }
            }
        }

        return list;
    }

    /// <inheritdoc />
    public async Task<int> RequeueDeadAsync(string queue, IReadOnlyCollection<string>? keys, CancellationToken cancellationToken)
    {
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var sql = $"""
            UPDATE {_q}.queue_items SET state = {Pending}, attempts = 0, run_after = now(), lease_owner = NULL, lease_until = NULL
            WHERE queue_id = $1 AND state = {Dead} AND ($2::text[] IS NULL OR key = ANY ($2::text[]))
            """;
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var cmd = Command(conn, null, sql, queueId);
            await using (cmd.ConfigureAwait(false))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = keys is null ? DBNull.Value : keys.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
                var n = await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                if (n > 0)
                {
                    await NotifyAsync(conn, null, queue, cancellationToken).ConfigureAwait(false);
                }

                return n;
            }
        }
    }

    /// <inheritdoc />
    public async Task<long> PruneAsync(string queue, DateTimeOffset completedBefore, CancellationToken cancellationToken)
    {
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            return await ExecAsync(conn, null, $"DELETE FROM {_q}.queue_done WHERE queue_id = $1 AND completed_at < $2", cancellationToken, queueId, completedBefore.ToUniversalTime()).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async Task<ReconcileResult> ReconcileAsync(string queue, IAsyncEnumerable<string> storageKeys, ReconcileOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(storageKeys);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { Count: > 0 } errors)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }

        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            // The listing goes to the server, one batch at a time: the client never holds more than one batch.
            await ExecAsync(conn, null, """
                DROP TABLE IF EXISTS pg_temp.ingestion_reconcile_seen, pg_temp.ingestion_reconcile_batch;
                CREATE TEMP TABLE ingestion_reconcile_seen (key text COLLATE "C");
                CREATE TEMP TABLE ingestion_reconcile_batch (key text COLLATE "C");
                """, cancellationToken).ConfigureAwait(false);
            try
            {
                var missingExpr = $"""
                    SELECT DISTINCT b.key FROM ingestion_reconcile_batch b
                    WHERE NOT EXISTS (SELECT 1 FROM {_q}.queue_items i WHERE i.queue_id = $1 AND i.key = b.key)
                      AND NOT EXISTS (SELECT 1 FROM {_q}.queue_done d WHERE d.queue_id = $1 AND d.key = b.key)
                    """;
                var batchSql = options.DryRun
                    ? $"""
                        WITH seen AS (INSERT INTO ingestion_reconcile_seen SELECT key FROM ingestion_reconcile_batch)
                        SELECT (SELECT count(*) FROM ({missingExpr}) m), 0::bigint
                        """
                    : $"""
                        WITH seen AS (INSERT INTO ingestion_reconcile_seen SELECT key FROM ingestion_reconcile_batch),
                        missing AS ({missingExpr}),
                        ins AS (
                            INSERT INTO {_q}.queue_items (queue_id, key, priority)
                            SELECT $1, key, $2 FROM missing
                            ON CONFLICT (queue_id, key) DO NOTHING
                            RETURNING 1)
                        SELECT (SELECT count(*) FROM missing), (SELECT count(*) FROM ins)
                        """;
                long total = 0, missing = 0, enqueued = 0;
                var batch = new List<string>(Math.Min(options.BatchSize, 100_000));
                await foreach (var key in storageKeys.WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    CheckKey(key, $"storage key {total + batch.Count + 1}");
                    batch.Add(key);
                    if (batch.Count >= options.BatchSize)
                    {
                        var (m, n) = await ReconcileBatchAsync(conn, batch, batchSql, queue, queueId, options.Priority, cancellationToken).ConfigureAwait(false);
                        total += batch.Count;
                        missing += m;
                        enqueued += n;
                        batch.Clear();
                    }
                }

                if (batch.Count > 0)
                {
                    var (m, n) = await ReconcileBatchAsync(conn, batch, batchSql, queue, queueId, options.Priority, cancellationToken).ConfigureAwait(false);
                    total += batch.Count;
                    missing += m;
                    enqueued += n;
                    batch.Clear();
                }

                await ExecAsync(conn, null, "ANALYZE ingestion_reconcile_seen", cancellationToken).ConfigureAwait(false);
                var orphanSql = $"""
                    SELECT k.key FROM (
                        SELECT key FROM {_q}.queue_items WHERE queue_id = $1
                        UNION ALL
                        SELECT key FROM {_q}.queue_done WHERE queue_id = $1) k
                    WHERE NOT EXISTS (SELECT 1 FROM ingestion_reconcile_seen s WHERE s.key = k.key)
                    ORDER BY k.key
                    """;
                long orphans = 0;
                var sample = new List<string>();
                var cmd = Command(conn, null, orphanSql, queueId);
                await using (cmd.ConfigureAwait(false))
                {
                    var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (r.ConfigureAwait(false))
                    {
                        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            orphans++;
                            if (sample.Count < options.MaxReported)
                            {
                                sample.Add(r.GetString(0));
                            }
                        }
                    }
                }

                return new ReconcileResult(total, missing, enqueued, orphans, sample);
            }
            finally
            {
                if (conn.State == System.Data.ConnectionState.Open)
                {
                    try
                    {
                        await ExecAsync(conn, null, "DROP TABLE IF EXISTS pg_temp.ingestion_reconcile_seen, pg_temp.ingestion_reconcile_batch", CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (NpgsqlException)
                    {
                        // The connection is broken; its temp tables die with it.
                    }
                }
            }
        }
    }

    private async Task<(long Missing, long Enqueued)> ReconcileBatchAsync(NpgsqlConnection conn, List<string> batch, string sql, string queue, int queueId, int priority, CancellationToken cancellationToken)
    {
        await ExecAsync(conn, null, "TRUNCATE ingestion_reconcile_batch", cancellationToken).ConfigureAwait(false);
        var importer = await conn.BeginBinaryImportAsync("COPY ingestion_reconcile_batch (key) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false);
        await using (importer.ConfigureAwait(false))
        {
            foreach (var key in batch)
            {
                await importer.StartRowAsync(cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(key, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
            }

            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        (long, long) result = (0, 0);
        var cmd = Command(conn, null, sql, queueId, priority);
        await using (cmd.ConfigureAwait(false))
        {
            var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (r.ConfigureAwait(false))
            {
                if (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    result = (r.GetInt64(0), r.GetInt64(1));
                }
            }
        }

        if (result.Item2 > 0)
        {
            await NotifyAsync(conn, null, queue, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _notifier.DisposeAsync().ConfigureAwait(false);
        await _dataSource.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The queue's own pool over the library's connection string. Its connections are not reset when returned
    /// (the queue leaves no session state behind: no session settings, temp tables dropped or ON COMMIT DROP, no
    /// LISTEN; the notifier listens on the library's pool), which saves the reset statements Npgsql would send
    /// with every claim, and its statements run their generic plans: the claim, prepared, is otherwise planned
    /// anew at every call (its empty completion arrays make each custom plan look cheaper), and planning costs
    /// more than running it. Every queue statement is keyed by the queue id, so a generic plan serves them all.
    /// </summary>
    private static NpgsqlDataSource BuildDataSource(string connectionString)
    {
        const string GenericPlans = "-c plan_cache_mode=force_generic_plan";
        var csb = new NpgsqlConnectionStringBuilder(connectionString) { NoResetOnClose = true };
        csb.Options = string.IsNullOrWhiteSpace(csb.Options) ? GenericPlans : csb.Options + " " + GenericPlans;
        return new NpgsqlDataSourceBuilder(csb.ConnectionString).Build();
    }

    private async Task EnsureReadyAsync(CancellationToken cancellationToken)
    {
        if (_database.Options.MigrateAtStart)
        {
            await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask<int> QueueIdAsync(string queue, CancellationToken cancellationToken)
    {
        if (_queueIds.TryGetValue(queue, out var id))
        {
            return id;
        }

        WorkQueueOptions.ThrowIfInvalidQueueName(queue);
        await EnsureReadyAsync(cancellationToken).ConfigureAwait(false);
        var sql = $"""
            WITH ins AS (INSERT INTO {_q}.queues (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id)
            SELECT id FROM ins UNION ALL SELECT id FROM {_q}.queues WHERE name = $1
            """;
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            // A concurrent creator may commit between our snapshot and our insert: then neither half sees the row; ask again.
            for (var attempt = 0; attempt < 3; attempt++)
            {
                var v = await ScalarAsync<object?>(conn, null, sql, cancellationToken, queue).ConfigureAwait(false);
                if (v is int found)
                {
                    return _queueIds.GetOrAdd(queue, found);
                }
            }
        }

        throw new InvalidOperationException($"Queue '{queue}' could not be created in schema '{_database.Schema}'.");
    }

    private async Task NotifyAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string queue, CancellationToken cancellationToken) =>
        await ExecAsync(conn, tx, "SELECT pg_notify($1, $2)", cancellationToken, _channel, queue).ConfigureAwait(false);

    private static void CheckKey(string? key, string what)
    {
        if (string.IsNullOrEmpty(key))
        {
            throw new ArgumentException($"Queue key of {what} is empty; every item needs a key (a path, a URL).", "items");
        }

        if (key.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Queue key of {what} ('{key.Replace("\0", "\\0", StringComparison.Ordinal)}') contains a NUL character, which PostgreSQL text cannot hold.", "items");
        }

        if (key.Length > MaxKeyBytes / 3 && Encoding.UTF8.GetByteCount(key) > MaxKeyBytes)
        {
            throw new ArgumentException($"Queue key of {what} ('{key[..40]}...') is longer than {MaxKeyBytes} bytes.", "items");
        }
    }

    private static (string[] Keys, int[] Attempts) Split(IReadOnlyCollection<WorkItemHandle> handles)
    {
        var keys = new string[handles.Count];
        var attempts = new int[handles.Count];
        var i = 0;
        foreach (var h in handles)
        {
            keys[i] = h.Key;
            attempts[i] = h.Attempt;
            i++;
        }

        return (keys, attempts);
    }

    private static NpgsqlCommand Command(NpgsqlConnection conn, NpgsqlTransaction? tx, string sql, params object[] args)
    {
        var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = a });
        }

        return cmd;
    }

    private static async Task<int> ExecAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string sql, CancellationToken cancellationToken, params object[] args)
    {
        var cmd = Command(conn, tx, sql, args);
        await using (cmd.ConfigureAwait(false))
        {
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, NpgsqlTransaction? tx, string sql, CancellationToken cancellationToken, params object[] args)
    {
        var cmd = Command(conn, tx, sql, args);
        await using (cmd.ConfigureAwait(false))
        {
            var v = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            return v is DBNull ? default! : (T)v!;
        }
    }

    private async Task<T> ReadRowAsync<T>(string sql, Func<NpgsqlDataReader, T> map, CancellationToken cancellationToken, params object[] args)
    {
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var cmd = Command(conn, null, sql, args);
            await using (cmd.ConfigureAwait(false))
            {
                var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (r.ConfigureAwait(false))
                {
                    if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        throw new InvalidOperationException("The query returned no row.");
                    }

                    return map(r);
                }
            }
        }
    }
}
