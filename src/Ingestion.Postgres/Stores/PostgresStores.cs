using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Sql;
using Ingestion.Stores;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Stores;

/// <summary>The import-job history in <c>ingestion.import_jobs</c>, with rejected records in <c>ingestion.rejected_records</c>.</summary>
public sealed partial class PostgresImportJobStore : IImportJobStore
{
    private const int MaxErrorLength = 4000;
    private readonly IngestionDatabase _database;
    private readonly int _maxValueLength;

    /// <summary>Creates the store.</summary>
    /// <param name="database">The library's database.</param>
    /// <param name="maxRejectedValueLength">The most characters of a rejected raw value that are stored.</param>
    public PostgresImportJobStore(IngestionDatabase database, int maxRejectedValueLength = 1000)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
        _maxValueLength = maxRejectedValueLength;
    }

    private string Schema => PgIdentifier.Quote(_database.Schema);

    /// <inheritdoc />
    public async ValueTask StartAsync(ImportJob job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _database.DataSource.CreateCommand($"INSERT INTO {Schema}.import_jobs (id, source, trigger, mode, dry_run, host, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7)");
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = job.Id });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.SourceName });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.Trigger });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.Mode.ToString() });
            cmd.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = job.IsDryRun });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.Host });
            cmd.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = job.StartedAt.UtcDateTime, NpgsqlDbType = NpgsqlDbType.TimestampTz });
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask CompleteAsync(IngestionResult result, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(result);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _database.DataSource.CreateCommand(
            $"""
            UPDATE {Schema}.import_jobs SET status = $2, finished_at = $3, read = $4, created = $5, updated = $6, unchanged = $7,
                duplicates = $8, rejected = $9, deleted = $10, error = $11, linked = $12, for_review = $13
            WHERE id = $1
            """);
        await using (cmd.ConfigureAwait(false))
        {
            var c = result.Counts;
            cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = result.RunId });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = result.Status.ToString() });
            cmd.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = result.FinishedAt.UtcDateTime, NpgsqlDbType = NpgsqlDbType.TimestampTz });
            foreach (var n in new[] { c.Read, c.Created, c.Updated, c.Unchanged, c.Duplicates, c.Rejected, c.Deleted })
            {
                cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = n });
            }

            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)StoreSql.Clean(result.Error?.ToString(), MaxErrorLength) ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = c.Linked });
            cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = c.ForReview });
            if (await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                throw new InvalidOperationException($"Job {result.RunId} of source '{result.SourceName}' was never started.");
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask AddRejectedAsync(Guid jobId, string sourceName, IReadOnlyList<RejectedRecord> rejected, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rejected);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            await StoreSql.InsertRejectedAsync(conn, null, Schema, jobId, sourceName, rejected, _maxValueLength, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ImportJob>> ListRecentAsync(int count, string? sourceName, CancellationToken cancellationToken)
    {
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _database.DataSource.CreateCommand(
            $"""
            SELECT id, source, trigger, mode, dry_run, host, started_at, finished_at, status, read, created, updated, unchanged, duplicates, rejected, deleted, error, linked, for_review
            FROM {Schema}.import_jobs WHERE ($2::text IS NULL OR source = $2) ORDER BY started_at DESC, id LIMIT $1
            """);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = Math.Max(0, count) });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)sourceName ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            var jobs = new List<ImportJob>();
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var status = reader.GetString(8);
                    jobs.Add(new ImportJob
                    {
                        Id = reader.GetGuid(0),
                        SourceName = reader.GetString(1),
                        Trigger = reader.GetString(2),
                        Mode = Enum.TryParse<IngestionMode>(reader.GetString(3), out var mode) ? mode : IngestionMode.Incremental,
                        IsDryRun = reader.GetBoolean(4),
                        Host = reader.GetString(5),
                        StartedAt = new DateTimeOffset(reader.GetFieldValue<DateTime>(6), TimeSpan.Zero),
                        FinishedAt = reader.IsDBNull(7) ? null : new DateTimeOffset(reader.GetFieldValue<DateTime>(7), TimeSpan.Zero),
                        Status = Enum.TryParse<IngestionStatus>(status, out var s) ? s : null,
                        Counts = new IngestionCounts
                        {
                            Read = reader.GetInt64(9),
                            Created = reader.GetInt64(10),
                            Updated = reader.GetInt64(11),
                            Unchanged = reader.GetInt64(12),
                            Duplicates = reader.GetInt64(13),
                            Rejected = reader.GetInt64(14),
                            Deleted = reader.GetInt64(15),
                            Linked = reader.GetInt64(17),
                            ForReview = reader.GetInt64(18),
                        },
                        Error = reader.IsDBNull(16) ? null : reader.GetString(16),
                    });
                }
            }

            return jobs;
        }
    }
}

/// <summary>Source state in <c>ingestion.source_state</c>; the sink saves checkpoints there in each batch's transaction.</summary>
public sealed class PostgresSourceStateStore : ISourceStateStore
{
    private readonly IngestionDatabase _database;

    /// <summary>Creates the store.</summary>
    /// <param name="database">The library's database.</param>
    public PostgresSourceStateStore(IngestionDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
    }

    /// <inheritdoc />
    public async ValueTask<SourceState> GetAsync(string sourceName, CancellationToken cancellationToken)
    {
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            return await StoreSql.GetStateAsync(conn, PgIdentifier.Quote(_database.Schema), sourceName, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask SaveAsync(string sourceName, SourceState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(state);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            await StoreSql.SaveStateAsync(conn, null, PgIdentifier.Quote(_database.Schema), sourceName, state, cancellationToken).ConfigureAwait(false);
        }
    }
}

/// <summary>
/// Run locks as PostgreSQL session advisory locks: the lock of a source is held by a connection kept
/// open for the run, so two host processes never run the same source at once, and a crashed host's
/// lock is released by the server when its connection dies.
/// </summary>
public sealed class PostgresRunLockProvider : IRunLockProvider
{
    private readonly IngestionDatabase _database;

    /// <summary>Creates the provider.</summary>
    /// <param name="database">The library's database.</param>
    public PostgresRunLockProvider(IngestionDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
    }

    /// <inheritdoc />
    public async ValueTask<IAsyncDisposable?> TryAcquireAsync(string sourceName, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        var key = $"ingestion.run:{_database.Schema}:{sourceName}";
        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var cmd = new NpgsqlCommand("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", conn);
            await using (cmd.ConfigureAwait(false))
            {
                cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
                if ((bool)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
                {
                    return new Releaser(conn, key);
                }
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

    private sealed class Releaser(NpgsqlConnection conn, string key) : IAsyncDisposable
    {
        private int _released;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0)
            {
                return;
            }

            try
            {
                var cmd = new NpgsqlCommand("SELECT pg_advisory_unlock(hashtextextended($1, 0))", conn);
                await using (cmd.ConfigureAwait(false))
                {
                    cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
                    await cmd.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (NpgsqlException)
            {
                // The connection died: the server released the lock with it.
            }
            finally
            {
                await conn.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
