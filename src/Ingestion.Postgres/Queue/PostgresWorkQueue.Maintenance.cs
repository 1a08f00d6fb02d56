using Ingestion.Queue;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Queue;

/// <summary>Statistics, dead items, requeue and pruning of done keys.</summary>
public sealed partial class PostgresWorkQueue
{
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
}
