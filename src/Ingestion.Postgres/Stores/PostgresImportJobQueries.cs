using Ingestion.Stores;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Stores;

/// <summary>The read side of the job history: one job, filtered pages of jobs, a job's rejected records.</summary>
public sealed partial class PostgresImportJobStore
{
    private const string JobColumns = "id, source, trigger, mode, dry_run, host, started_at, finished_at, status, read, created, updated, unchanged, duplicates, rejected, deleted, error, linked, for_review";

    /// <inheritdoc />
    public async ValueTask<ImportJob?> GetAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _database.DataSource.CreateCommand($"SELECT {JobColumns} FROM {Schema}.import_jobs WHERE id = $1");
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
            var jobs = await ReadJobsAsync(cmd, cancellationToken).ConfigureAwait(false);
            return jobs.Count == 0 ? null : jobs[0];
        }
    }

    /// <inheritdoc />
    public async ValueTask<Page<ImportJob>> QueryAsync(ImportJobQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        query.ThrowIfInvalid();
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);

        // A running job has no finish time; its status column holds the default 'Running'.
        const string where = """
            WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR (status = $2 AND finished_at IS NOT NULL))
              AND (NOT $3 OR finished_at IS NULL) AND ($4::timestamptz IS NULL OR started_at >= $4) AND ($5::timestamptz IS NULL OR started_at < $5)
            """;
        var cmd = _database.DataSource.CreateCommand(
            $"SELECT {JobColumns}, count(*) OVER () FROM {Schema}.import_jobs {where} ORDER BY started_at DESC, id LIMIT $6 OFFSET $7");
        await using (cmd.ConfigureAwait(false))
        {
            AddFilters(cmd, query);
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = query.Limit });
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = query.Offset });
            long total = 0;
            var jobs = await ReadJobsAsync(cmd, cancellationToken, r => total = r.GetInt64(19)).ConfigureAwait(false);
            if (jobs.Count == 0 && query.Offset > 0)
            {
                // Past the last page the window count is not seen: count on its own.
                total = await CountJobsAsync(where, query, cancellationToken).ConfigureAwait(false);
            }

            return new Page<ImportJob>(jobs, total, query.Offset, query.Limit);
        }
    }

    /// <inheritdoc />
    public async ValueTask<Page<StoredRejectedRecord>> ListRejectedAsync(Guid jobId, int offset, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _database.DataSource.CreateCommand(
            $"""
            SELECT job_id, source, position, field, reason, raw_value, (SELECT count(*) FROM {Schema}.rejected_records WHERE job_id = $1)
            FROM {Schema}.rejected_records WHERE job_id = $1 ORDER BY id LIMIT $2 OFFSET $3
            """);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = offset });
            var items = new List<StoredRejectedRecord>();
            long total = 0;
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    items.Add(new StoredRejectedRecord(
                        reader.GetGuid(0),
                        reader.GetString(1),
                        reader.GetString(2),
                        reader.IsDBNull(3) ? null : reader.GetString(3),
                        reader.GetString(4),
                        reader.IsDBNull(5) ? null : reader.GetString(5)));
                    total = reader.GetInt64(6);
                }
            }

            if (items.Count == 0 && offset > 0)
            {
                var count = _database.DataSource.CreateCommand($"SELECT count(*) FROM {Schema}.rejected_records WHERE job_id = $1");
                await using (count.ConfigureAwait(false))
                {
                    count.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId });
                    total = (long)(await count.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                }
            }

            return new Page<StoredRejectedRecord>(items, total, offset, limit);
        }
    }

    private async Task<long> CountJobsAsync(string where, ImportJobQuery query, CancellationToken cancellationToken)
    {
        var cmd = _database.DataSource.CreateCommand($"SELECT count(*) FROM {Schema}.import_jobs {where}");
        await using (cmd.ConfigureAwait(false))
        {
            AddFilters(cmd, query);
            return (long)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }

    private static void AddFilters(NpgsqlCommand cmd, ImportJobQuery query)
    {
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)query.Source ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)query.Status?.ToString() ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = query.RunningOnly });
        cmd.Parameters.Add(new NpgsqlParameter { Value = query.StartedFrom is { } f ? f.UtcDateTime : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new NpgsqlParameter { Value = query.StartedBefore is { } b ? b.UtcDateTime : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
    }

    private static async Task<List<ImportJob>> ReadJobsAsync(NpgsqlCommand cmd, CancellationToken cancellationToken, Action<NpgsqlDataReader>? extra = null)
    {
        var jobs = new List<ImportJob>();
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                jobs.Add(ReadJob(reader));
                extra?.Invoke(reader);
            }
        }

        return jobs;
    }

    /// <summary>Reads a job from a row whose first columns are <see cref="JobColumns"/>.</summary>
    private static ImportJob ReadJob(NpgsqlDataReader reader)
    {
        var finished = reader.IsDBNull(7) ? (DateTimeOffset?)null : new DateTimeOffset(reader.GetFieldValue<DateTime>(7), TimeSpan.Zero);
        return new ImportJob
        {
            Id = reader.GetGuid(0),
            SourceName = reader.GetString(1),
            Trigger = reader.GetString(2),
            Mode = Enum.TryParse<IngestionMode>(reader.GetString(3), out var mode) ? mode : IngestionMode.Incremental,
            IsDryRun = reader.GetBoolean(4),
            Host = reader.GetString(5),
            StartedAt = new DateTimeOffset(reader.GetFieldValue<DateTime>(6), TimeSpan.Zero),
            FinishedAt = finished,
            Status = finished is not null && Enum.TryParse<IngestionStatus>(reader.GetString(8), out var s) ? s : null,
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
        };
    }
}
