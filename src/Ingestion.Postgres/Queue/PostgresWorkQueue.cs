using System.Collections.Concurrent;
using System.Text;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Sql;
using Ingestion.Queue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Ingestion.Postgres.Queue;

/// <summary>
/// The durable work queue in PostgreSQL (tables <c>queues</c>, <c>queue_items</c>, <c>queue_done</c> of the
/// library's schema). Claims use <c>FOR UPDATE SKIP LOCKED</c> under a lease; a claim completes the previous
/// batch in the same statement (one durable commit per round trip); finished items leave the hot table for
/// <c>queue_done</c>, which keeps their keys known; new work is announced with <c>NOTIFY</c>. Enqueue can join
/// the caller's transaction, and bulk enqueue and reconciliation stream through binary COPY.
/// </summary>
public sealed partial class PostgresWorkQueue : IWorkQueueStore, IAsyncDisposable
{
    private const int MaxKeyBytes = 2000;
    private const int BulkChunkRows = 500_000;
    private const int DirectChunkRows = 100_000;
    private const int FirstDirectChunkRows = 12_500;
    private const int DirectChunkChars = 16 << 20;
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
