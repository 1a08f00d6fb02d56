using System.Globalization;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Sql;
using Ingestion.Stores;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Stores;

/// <summary>
/// Run locks in PostgreSQL, fenced. Taking a source's lock takes a session advisory lock on a connection kept open for
/// the run (a crashed host's lock is released by the server with its connection) and then increments the source's
/// fencing token in <c>ingestion.run_locks</c>. Every batch transaction of the sink reads that token with a share lock
/// and fails when it is not the run's own, so a run whose lock connection died and whose lock another host took writes
/// nothing more: the new holder's increment waits for the old holder's open batch to end, and every later batch of the
/// old holder sees the new token. The lock connection opts out of <c>idle_session_timeout</c> and is checked every
/// <see cref="PostgresIngestionOptions.RunLockKeepAliveInterval"/>: a lock whose connection died is taken again when
/// nobody else took it, else the run is told through <see cref="IRunLock.Lost"/>.
/// </summary>
public sealed partial class PostgresRunLockProvider : IRunLockProvider
{
    private readonly IngestionDatabase _database;
    private readonly ILogger _logger;
    private readonly string _hostName;

    /// <summary>Creates the provider.</summary>
    /// <param name="database">The library's database.</param>
    /// <param name="logger">Logs lost and re-taken locks.</param>
    /// <param name="options">The runtime's settings (the host name recorded with a lock).</param>
    public PostgresRunLockProvider(IngestionDatabase database, ILogger<PostgresRunLockProvider>? logger = null, IOptions<IngestionOptions>? options = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _hostName = options?.Value.HostName ?? $"{Environment.MachineName}:{Environment.ProcessId}";
    }

    private string Schema => PgIdentifier.Quote(_database.Schema);

    /// <inheritdoc />
    public async ValueTask<IRunLock?> TryAcquireAsync(string sourceName, Guid runId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var generation = await TakeAsync(conn, sourceName, runId, cancellationToken).ConfigureAwait(false);
            if (generation is { } g)
            {
                return new Handle(this, conn, sourceName, runId, g);
            }
        }
        catch
        {
            await conn.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        await conn.DisposeAsync().ConfigureAwait(false);
        return null;
    }

    /// <inheritdoc />
    public async ValueTask<RunLockHolder?> GetHolderAsync(string sourceName, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            return await ReadHolderAsync(conn, null, Schema, sourceName, forShare: false, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The SQL expression of the advisory-lock key of a source (a text expression) in a schema.</summary>
    /// <param name="schema">The library's schema (unquoted).</param>
    /// <param name="sourceExpression">A SQL text expression giving the source name.</param>
    /// <returns>The bigint expression.</returns>
    internal static string LockKeySql(string schema, string sourceExpression) =>
        $"hashtextextended('ingestion.run:{schema.Replace("'", "''", StringComparison.Ordinal)}:' || {sourceExpression}, 0)";

    /// <summary>
    /// Proves, inside a writer's transaction, that <paramref name="runLock"/> still holds its source's lock: reads the
    /// fencing token with a share lock (so a takeover waits for this transaction) and throws when it changed.
    /// </summary>
    /// <param name="conn">The writer's connection.</param>
    /// <param name="tx">The writer's transaction.</param>
    /// <param name="quotedSchema">The library's schema, quoted.</param>
    /// <param name="runLock">The run's lock; nothing is checked when it does not fence.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>A task that completes when the lock is proven held.</returns>
    /// <exception cref="RunLockLostException">Another run took the lock.</exception>
    internal static async Task CheckFenceAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string quotedSchema, IRunLock? runLock, CancellationToken cancellationToken)
    {
        if (runLock?.FencingToken is not { } token)
        {
            return;
        }

        var holder = await ReadHolderAsync(conn, tx, quotedSchema, runLock.SourceName, forShare: true, cancellationToken).ConfigureAwait(false);
        ThrowIfNotHeld(runLock, token, holder);
    }

    /// <summary>Throws <see cref="RunLockLostException"/> unless <paramref name="holder"/> is <paramref name="runLock"/>'s own acquisition.</summary>
    /// <param name="runLock">The run's lock.</param>
    /// <param name="token">Its fencing token.</param>
    /// <param name="holder">What the lock's record says, read with a share lock in the writer's transaction.</param>
    internal static void ThrowIfNotHeld(IRunLock runLock, long token, RunLockHolder? holder)
    {
        if (holder is null || holder.FencingToken != token || holder.RunId != runLock.RunId)
        {
            throw new RunLockLostException(LostMessage(runLock, holder)) { SourceName = runLock.SourceName, Holder = holder };
        }
    }

    private static string LostMessage(IRunLock runLock, RunLockHolder? holder) =>
        $"Source '{runLock.SourceName}': run {runLock.RunId} no longer holds the source's run lock"
        + (holder is null ? string.Empty : $" (taken by run {holder.RunId} on host '{holder.Host}' at {holder.AcquiredAt.UtcDateTime.ToString("u", CultureInfo.InvariantCulture)}, fencing token {holder.FencingToken}; this run had {runLock.FencingToken})")
        + "; its lock connection was lost and another run took over. It stopped and wrote nothing more; batches committed before stay committed.";

    private static async Task<RunLockHolder?> ReadHolderAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string quotedSchema, string sourceName, bool forShare, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand($"SELECT {HolderColumns} FROM {quotedSchema}.run_locks WHERE source = $1{(forShare ? " FOR SHARE" : string.Empty)}", conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sourceName, NpgsqlDbType = NpgsqlDbType.Text });
            return await ReadHolderAsync(cmd, sourceName, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The columns of <c>run_locks</c> that <see cref="ReadHolderAsync(NpgsqlCommand, string, CancellationToken)"/> reads, in its order.</summary>
    internal const string HolderColumns = "generation, run_id, host, acquired_at";

    /// <summary>Runs a command selecting <see cref="HolderColumns"/> and reads the holder of <paramref name="sourceName"/>'s lock it returns, if any.</summary>
    /// <param name="cmd">The command.</param>
    /// <param name="sourceName">The source.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The holder, or <see langword="null"/> when the command returned no row.</returns>
    internal static async Task<RunLockHolder?> ReadHolderAsync(NpgsqlCommand cmd, string sourceName, CancellationToken cancellationToken)
    {
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            return await ReadHolderAsync(reader, sourceName, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads the holder of <paramref name="sourceName"/>'s lock from the current result of <paramref name="reader"/>, which selects <see cref="HolderColumns"/>.</summary>
    /// <param name="reader">The reader, on the result that selects the holder.</param>
    /// <param name="sourceName">The source.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The holder, or <see langword="null"/> when the result has no row.</returns>
    internal static async Task<RunLockHolder?> ReadHolderAsync(NpgsqlDataReader reader, string sourceName, CancellationToken cancellationToken) =>
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new RunLockHolder(sourceName, reader.GetGuid(1), reader.GetString(2), new DateTimeOffset(reader.GetFieldValue<DateTime>(3), TimeSpan.Zero), reader.GetInt64(0))
            : null;

    /// <summary>Takes the advisory lock on <paramref name="conn"/> and a new fencing token; <see langword="null"/> when the source is busy.</summary>
    private async Task<long?> TakeAsync(NpgsqlConnection conn, string sourceName, Guid runId, CancellationToken cancellationToken)
    {
        await KeepSessionAsync(conn, cancellationToken).ConfigureAwait(false);
        if (!await TryAdvisoryLockAsync(conn, sourceName, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        try
        {
            var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                var timeout = (long)Math.Max(1, _database.Options.RunLockTakeoverTimeout.TotalMilliseconds);
                var set = new NpgsqlCommand($"SET LOCAL lock_timeout = {timeout.ToString(CultureInfo.InvariantCulture)}", conn, tx);
                await using (set.ConfigureAwait(false))
                {
                    await set.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                var cmd = new NpgsqlCommand(
                    $"""
                    INSERT INTO {Schema}.run_locks AS l (source, generation, run_id, host, acquired_at) VALUES ($1, 1, $2, $3, now())
                    ON CONFLICT (source) DO UPDATE SET generation = l.generation + 1, run_id = EXCLUDED.run_id, host = EXCLUDED.host, acquired_at = EXCLUDED.acquired_at
                    RETURNING generation
                    """,
                    conn,
                    tx);
                long generation;
                await using (cmd.ConfigureAwait(false))
                {
                    cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sourceName, NpgsqlDbType = NpgsqlDbType.Text });
                    cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = runId });
                    cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _hostName, NpgsqlDbType = NpgsqlDbType.Text });
                    generation = (long)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                }

                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                return generation;
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable)
        {
            // The previous holder lost its lock connection but is still inside a batch: it is alive, the source is busy.
            LogTakeoverBusy(_logger, sourceName);
            await UnlockQuietlyAsync(conn, sourceName).ConfigureAwait(false);
            return null;
        }
        catch
        {
            await UnlockQuietlyAsync(conn, sourceName).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Keeps the lock's session from being closed as idle by the server (PostgreSQL 14+; older servers lack the setting).</summary>
    private static async Task KeepSessionAsync(NpgsqlConnection conn, CancellationToken cancellationToken)
    {
        if (conn.PostgreSqlVersion.Major < 14)
        {
            return;
        }

        var cmd = new NpgsqlCommand("SET idle_session_timeout = 0", conn);
        await using (cmd.ConfigureAwait(false))
        {
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<bool> TryAdvisoryLockAsync(NpgsqlConnection conn, string sourceName, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand($"SELECT pg_try_advisory_lock({LockKeySql(_database.Schema, "$1")})", conn);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sourceName, NpgsqlDbType = NpgsqlDbType.Text });
            return (bool)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }

    private async Task UnlockQuietlyAsync(NpgsqlConnection conn, string sourceName)
    {
        try
        {
            var cmd = new NpgsqlCommand($"SELECT pg_advisory_unlock({LockKeySql(_database.Schema, "$1")})", conn);
            await using (cmd.ConfigureAwait(false))
            {
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sourceName, NpgsqlDbType = NpgsqlDbType.Text });
                await cmd.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            // The connection died: the server released the lock with it.
        }
    }

    [LoggerMessage(2101, LogLevel.Information, "Run lock of source {SourceName} is free but its previous holder is still committing a batch; the source counts as running")]
    private static partial void LogTakeoverBusy(ILogger logger, string sourceName);

    [LoggerMessage(2102, LogLevel.Warning, "The run lock connection of source {SourceName} (run {RunId}) died; the lock was taken again (nobody else had taken it)")]
    private static partial void LogRetaken(ILogger logger, Exception exception, string sourceName, Guid runId);

    [LoggerMessage(2104, LogLevel.Warning, "Could not check the run lock of source {SourceName} (run {RunId}); trying again")]
    private static partial void LogCheckFailed(ILogger logger, Exception exception, string sourceName, Guid runId);

    [LoggerMessage(2103, LogLevel.Error, "Run {RunId} of source {SourceName} lost its run lock: {Reason}")]
    private static partial void LogLost(ILogger logger, string sourceName, Guid runId, string reason);

    /// <summary>A held lock: its connection, its fencing token, and the keep-alive that watches both.</summary>
    private sealed class Handle : IRunLock
    {
        private readonly PostgresRunLockProvider _owner;
        private readonly CancellationTokenSource _lost = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _keepAlive;
        private NpgsqlConnection _conn;
        private int _released;

        public Handle(PostgresRunLockProvider owner, NpgsqlConnection conn, string sourceName, Guid runId, long generation)
        {
            _owner = owner;
            _conn = conn;
            SourceName = sourceName;
            RunId = runId;
            FencingToken = generation;
            _keepAlive = Task.Run(KeepAliveAsync);
        }

        public string SourceName { get; }

        public Guid RunId { get; }

        public long? FencingToken { get; }

        public CancellationToken Lost => _lost.Token;

        public string? LostReason { get; private set; }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0)
            {
                return;
            }

            await _stop.CancelAsync().ConfigureAwait(false);
            await _keepAlive.ConfigureAwait(false);
            await _owner.UnlockQuietlyAsync(_conn, SourceName).ConfigureAwait(false);
            await _conn.DisposeAsync().ConfigureAwait(false);
            _stop.Dispose();
            _lost.Dispose();
        }

        private async Task KeepAliveAsync()
        {
            var interval = _owner._database.Options.RunLockKeepAliveInterval;
            try
            {
                while (!_lost.IsCancellationRequested)
                {
                    await Task.Delay(interval, _stop.Token).ConfigureAwait(false);
                    string? reason;
                    try
                    {
                        reason = await CheckAsync(_stop.Token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException or IOException && !_stop.IsCancellationRequested)
                    {
                        // The server cannot be reached now: try again at the next tick. Meanwhile the sink's fencing
                        // check keeps a taken-over run from committing anything.
                        LogCheckFailed(_owner._logger, e, SourceName, RunId);
                        continue;
                    }

                    if (reason is not null)
                    {
                        LostReason = reason;
                        LogLost(_owner._logger, SourceName, RunId, reason);
                        await _lost.CancelAsync().ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                // Released.
            }
        }

        /// <summary>Checks the lock; returns why it is lost, or <see langword="null"/> while it is held.</summary>
        private async Task<string?> CheckAsync(CancellationToken cancellationToken)
        {
            try
            {
                var holder = await ReadHolderAsync(_conn, null, _owner.Schema, SourceName, forShare: false, cancellationToken).ConfigureAwait(false);
                return holder?.FencingToken == FencingToken ? null : LostMessage(this, holder);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException && !cancellationToken.IsCancellationRequested)
            {
                // The lock connection died (server restart, terminated backend, a proxy): take the lock again if
                // nobody else did, on a new connection.
                var conn = await _owner._database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    await KeepSessionAsync(conn, cancellationToken).ConfigureAwait(false);
                    if (await _owner.TryAdvisoryLockAsync(conn, SourceName, cancellationToken).ConfigureAwait(false))
                    {
                        var holder = await ReadHolderAsync(conn, null, _owner.Schema, SourceName, forShare: false, cancellationToken).ConfigureAwait(false);
                        if (holder?.FencingToken == FencingToken)
                        {
                            var dead = _conn;
                            _conn = conn;
                            conn = null;
                            await dead.DisposeAsync().ConfigureAwait(false);
                            LogRetaken(_owner._logger, e, SourceName, RunId);
                            return null;
                        }

                        await _owner.UnlockQuietlyAsync(conn, SourceName).ConfigureAwait(false);
                        return LostMessage(this, holder);
                    }

                    return LostMessage(this, await ReadHolderAsync(conn, null, _owner.Schema, SourceName, forShare: false, cancellationToken).ConfigureAwait(false));
                }
                finally
                {
                    if (conn is not null)
                    {
                        await conn.DisposeAsync().ConfigureAwait(false);
                    }
                }
            }
        }
    }
}
