using Ingestion.Queue;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Queue;

/// <summary>Reconciliation of the queue with a storage listing.</summary>
public sealed partial class PostgresWorkQueue
{
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
}
