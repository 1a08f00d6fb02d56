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
        var cmd = _database.DataSource.CreateCommand($"INSERT INTO {Schema}.import_jobs (id, source, trigger, mode, dry_run, host, started_at, heartbeat_at, requested_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)");
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = job.Id });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.SourceName });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.Trigger });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.Mode.ToString() });
            cmd.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = job.IsDryRun });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job.Host });
            cmd.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = job.StartedAt.UtcDateTime, NpgsqlDbType = NpgsqlDbType.TimestampTz });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)StoreSql.Clean(job.RequestedBy, 200) ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ImportJob>> CloseAbandonedAsync(string? sourceName, Guid? exceptRunId, TimeSpan staleAfter, CancellationToken cancellationToken)
    {
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);

        // Without a source: only jobs silent for longer than staleAfter whose source lock nobody holds (a live run on a
        // slow clock keeps its job). The closing time is the last sign of life, so the row says when the run died.
        var cmd = _database.DataSource.CreateCommand(
            $"""
            UPDATE {Schema}.import_jobs j SET status = 'Abandoned', finished_at = COALESCE(j.heartbeat_at, j.started_at),
                error = format($4, j.host, to_char(COALESCE(j.heartbeat_at, j.started_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || 'Z')
            WHERE j.status = 'Running' AND j.id <> COALESCE($2, '00000000-0000-0000-0000-000000000000'::uuid)
              AND (($1::text IS NOT NULL AND j.source = $1)
                OR ($1::text IS NULL AND COALESCE(j.heartbeat_at, j.started_at) < now() - $3::interval
                    AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                        AND ((l.classid::bigint << 32) | l.objid::bigint) = {PostgresRunLockProvider.LockKeySql(_database.Schema, "j.source")})))
            RETURNING {JobColumns}
            """);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)sourceName ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)exceptRunId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
            cmd.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = staleAfter, NpgsqlDbType = NpgsqlDbType.Interval });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = AbandonedJob.ErrorTemplate, NpgsqlDbType = NpgsqlDbType.Text });
            return await ReadJobsAsync(cmd, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask HeartbeatAsync(Guid runId, CancellationToken cancellationToken)
    {
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);

        // SKIP LOCKED: a batch transaction holding the row records the heartbeat itself when it commits.
        var cmd = _database.DataSource.CreateCommand(
            $"UPDATE {Schema}.import_jobs SET heartbeat_at = now() WHERE id = (SELECT id FROM {Schema}.import_jobs WHERE id = $1 AND status = 'Running' FOR UPDATE SKIP LOCKED)");
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = runId });
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
            SELECT {JobColumns}
            FROM {Schema}.import_jobs WHERE ($2::text IS NULL OR source = $2) ORDER BY started_at DESC, id LIMIT $1
            """);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = Math.Max(0, count) });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)sourceName ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            return await ReadJobsAsync(cmd, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The columns <see cref="ReadJobsAsync"/> reads, in its order.</summary>
    internal const string JobColumns = "id, source, trigger, mode, dry_run, host, started_at, finished_at, status, read, created, updated, unchanged, duplicates, rejected, deleted, error, linked, for_review, heartbeat_at, requested_by";

    /// <summary>Reads the jobs a command selecting <see cref="JobColumns"/> returns.</summary>
    internal static async Task<IReadOnlyList<ImportJob>> ReadJobsAsync(NpgsqlCommand cmd, CancellationToken cancellationToken)
    {
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
                    HeartbeatAt = reader.IsDBNull(19) ? null : new DateTimeOffset(reader.GetFieldValue<DateTime>(19), TimeSpan.Zero),
                    RequestedBy = reader.IsDBNull(20) ? null : reader.GetString(20),
                });
            }
        }

        return jobs;
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
