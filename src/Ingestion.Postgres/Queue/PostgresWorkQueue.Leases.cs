using Ingestion.Queue;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Queue;

/// <summary>Claims, completions, failures, releases and leases of work items, and the wake-up subscription.</summary>
public sealed partial class PostgresWorkQueue
{
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
        // The heartbeat runs beside the worker's own claims, completions and failures, which lock the same rows in
        // another order: waiting on those locks deadlocked, and when the claim was the victim its completions failed.
        // So a row locked at this moment is skipped (it is being completed, failed or released; a row being rescued
        // has lost its lease anyway) and still counted as held: the next beat renews it if it is still there.
        var sql = $"""
            WITH mine AS (
                SELECT i.ctid FROM {_q}.queue_items i
                JOIN unnest($3::text[], $4::int[]) AS r(key, attempt) ON i.key = r.key AND i.attempts = r.attempt
                WHERE i.queue_id = $1 AND i.lease_owner = $2 AND i.state = {Running}),
            free AS (
                SELECT i.ctid FROM {_q}.queue_items i
                WHERE i.ctid = ANY (ARRAY(SELECT ctid FROM mine)) AND i.lease_owner = $2 AND i.state = {Running}
                FOR UPDATE SKIP LOCKED),
            renew AS (
                UPDATE {_q}.queue_items i SET lease_until = now() + $5 * interval '1 millisecond'
                WHERE i.ctid = ANY (ARRAY(SELECT ctid FROM free))
                RETURNING 1)
            SELECT count(*)::int FROM mine
            """;
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            // The update runs whether or not the query reads it (a data-modifying WITH always runs to completion).
            return await ScalarAsync<int>(conn, null, sql, cancellationToken, queueId, owner, keys, attempts, lease.TotalMilliseconds).ConfigureAwait(false);
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
}
