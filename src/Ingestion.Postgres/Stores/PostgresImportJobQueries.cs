using Ingestion.Stores;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Stores;

/// <summary>The read side of the job history: one job, filtered pages of jobs, a job's rejected records.</summary>
public sealed partial class PostgresImportJobStore
{
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
            $"SELECT {JobColumns} FROM {Schema}.import_jobs {where} ORDER BY started_at DESC, id LIMIT $6 OFFSET $7");
        await using (cmd.ConfigureAwait(false))
        {
            AddFilters(cmd, query);
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = query.Limit });
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = query.Offset });
            var jobs = await ReadJobsAsync(cmd, cancellationToken).ConfigureAwait(false);
            var total = jobs.Count < query.Limit && (jobs.Count > 0 || query.Offset == 0)
                ? query.Offset + jobs.Count
                : await CountJobsAsync(where, query, cancellationToken).ConfigureAwait(false);
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
}
