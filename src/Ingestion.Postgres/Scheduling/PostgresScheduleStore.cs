using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Sql;
using Ingestion.Scheduling;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Scheduling;

/// <summary>
/// Slot claims and schedule history in PostgreSQL, shared by every host on the database: a slot is claimed by
/// inserting its row (the primary key makes exactly one host win), under a per-schedule transaction-level advisory
/// lock so that the overlap check and the claim are one atomic step.
/// </summary>
public sealed class PostgresScheduleStore : IScheduleStore
{
    private readonly IngestionDatabase _db;
    private readonly string _slots;
    private readonly string _runs;
    private readonly string _pauses;

    /// <summary>Creates the store.</summary>
    /// <param name="database">The library's database.</param>
    public PostgresScheduleStore(IngestionDatabase database)
    {
        _db = database ?? throw new ArgumentNullException(nameof(database));
        _slots = PgIdentifier.Qualify(database.Schema, "schedule_slots");
        _runs = PgIdentifier.Qualify(database.Schema, "schedule_runs");
        _pauses = PgIdentifier.Qualify(database.Schema, "schedule_pauses");
    }

    /// <inheritdoc />
    public async ValueTask<ClaimResult> TryClaimAsync(SlotClaim claim, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(claim);
        await _db.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var conn = await _db.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", conn, tx);
                await using (lockCmd.ConfigureAwait(false))
                {
                    lockCmd.Parameters.AddWithValue($"ingestion.schedule:{_db.Schema}:{claim.Schedule}");
                    await lockCmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                var sql = $"""
                    INSERT INTO {_slots} (schedule, slot_time, source, trigger, host, attempt, status, lease_until, claimed_at)
                    SELECT $1, $2, $3, $4, $5, $6,
                           CASE WHEN EXISTS (SELECT 1 FROM {_slots} WHERE schedule = $1 AND status = 'running' AND lease_until > $7) THEN 'skipped' ELSE 'running' END,
                           $8, $7
                    ON CONFLICT (schedule, slot_time) DO NOTHING
                    RETURNING status
                    """;
                string? status;
                var cmd = new NpgsqlCommand(sql, conn, tx);
                await using (cmd.ConfigureAwait(false))
                {
                    cmd.Parameters.AddWithValue(claim.Schedule);
                    cmd.Parameters.AddWithValue(claim.Slot.ToUniversalTime());
                    cmd.Parameters.AddWithValue(claim.Source);
                    cmd.Parameters.AddWithValue(claim.Trigger);
                    cmd.Parameters.AddWithValue(claim.Host);
                    cmd.Parameters.AddWithValue(claim.Attempt);
                    cmd.Parameters.AddWithValue(now.ToUniversalTime());
                    cmd.Parameters.AddWithValue(leaseUntil.ToUniversalTime());
                    status = (string?)await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                }

                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                return status switch
                {
                    null => ClaimResult.AlreadyClaimed,
                    "skipped" => ClaimResult.Overlapping,
                    _ => ClaimResult.Claimed,
                };
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask<bool> RenewAsync(SlotClaim claim, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(claim);
        var n = await ExecuteAsync(
            $"UPDATE {_slots} SET lease_until = $4, attempt = $5 WHERE schedule = $1 AND slot_time = $2 AND host = $3 AND status = 'running'",
            cancellationToken,
            claim.Schedule,
            claim.Slot.ToUniversalTime(),
            claim.Host,
            leaseUntil.ToUniversalTime(),
            claim.Attempt).ConfigureAwait(false);
        return n == 1;
    }

    /// <inheritdoc />
    public async ValueTask CompleteAsync(SlotClaim claim, ScheduleRunStatus status, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(claim);
        await ExecuteAsync(
            $"UPDATE {_slots} SET status = $4, finished_at = $5, attempt = $6 WHERE schedule = $1 AND slot_time = $2 AND host = $3",
            cancellationToken,
            claim.Schedule,
            claim.Slot.ToUniversalTime(),
            claim.Host,
            ToText(status),
            now.ToUniversalTime(),
            claim.Attempt).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ExpiredClaim>> TakeOverExpiredAsync(string host, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
    {
        await _db.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var taken = new List<(ExpiredClaim Claim, DateTimeOffset PreviousLease)>();
        var conn = await _db.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                var sql = $"""
                    WITH expired AS (
                        SELECT schedule, slot_time, host, lease_until FROM {_slots}
                        WHERE status = 'running' AND lease_until <= $2 AND host <> $1
                        FOR UPDATE SKIP LOCKED)
                    UPDATE {_slots} s SET host = $1, lease_until = $3
                    FROM expired e
                    WHERE s.schedule = e.schedule AND s.slot_time = e.slot_time
                    RETURNING s.schedule, s.slot_time, s.source, s.trigger, s.attempt, e.host, e.lease_until
                    """;
                var cmd = new NpgsqlCommand(sql, conn, tx);
                await using (cmd.ConfigureAwait(false))
                {
                    cmd.Parameters.AddWithValue(host);
                    cmd.Parameters.AddWithValue(now.ToUniversalTime());
                    cmd.Parameters.AddWithValue(leaseUntil.ToUniversalTime());
                    var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            var claim = new SlotClaim
                            {
                                Schedule = reader.GetString(0),
                                Slot = reader.GetFieldValue<DateTimeOffset>(1),
                                Source = reader.GetString(2),
                                Trigger = reader.GetString(3),
                                Attempt = reader.GetInt32(4),
                                Host = host,
                            };
                            taken.Add((new ExpiredClaim(claim, reader.GetString(5)), reader.GetFieldValue<DateTimeOffset>(6)));
                        }
                    }
                }

                foreach (var (e, lease) in taken)
                {
                    var abandon = new NpgsqlCommand(
                        $"UPDATE {_runs} SET status = 'abandoned', finished_at = $3, error = $4 WHERE schedule = $1 AND slot_time = $2 AND status = 'running'", conn, tx);
                    await using var abandonScope = abandon.ConfigureAwait(false);
                    abandon.Parameters.AddWithValue(e.Claim.Schedule);
                    abandon.Parameters.AddWithValue(e.Claim.Slot.ToUniversalTime());
                    abandon.Parameters.AddWithValue(now.ToUniversalTime());
                    abandon.Parameters.AddWithValue(InMemoryScheduleStore.AbandonedMessage(e.PreviousHost, lease));
                    await abandon.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        return taken.Select(t => t.Claim).ToList();
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<RunningClaim>> ListRunningClaimsAsync(string source, CancellationToken cancellationToken)
    {
        await _db.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _db.DataSource.CreateCommand(
            $"SELECT schedule, slot_time, trigger, host, attempt, lease_until FROM {_slots} WHERE source = $1 AND status = 'running' ORDER BY slot_time DESC");
        await using var cmdScope = cmd.ConfigureAwait(false);
        cmd.Parameters.AddWithValue(source);
        var list = new List<RunningClaim>();
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var claim = new SlotClaim
                {
                    Schedule = reader.GetString(0),
                    Source = source,
                    Slot = reader.GetFieldValue<DateTimeOffset>(1),
                    Trigger = reader.GetString(2),
                    Host = reader.GetString(3),
                    Attempt = reader.GetInt32(4),
                };
                list.Add(new RunningClaim(claim, reader.GetFieldValue<DateTimeOffset>(5)));
            }
        }

        return list;
    }

    /// <inheritdoc />
    public async ValueTask<DateTimeOffset?> GetLastSlotAsync(string schedule, CancellationToken cancellationToken)
    {
        await _db.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _db.DataSource.CreateCommand($"SELECT max(slot_time) FROM {_slots} WHERE schedule = $1 AND trigger = $2");
        await using var cmdScope = cmd.ConfigureAwait(false);
        cmd.Parameters.AddWithValue(schedule);
        cmd.Parameters.AddWithValue(ScheduleTriggers.Schedule);
        var value = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is DateTime dt ? new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Utc)) : null;
    }

    /// <inheritdoc />
    public async ValueTask AddRunAsync(ScheduleRun run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        await _db.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _db.DataSource.CreateCommand(
            $"INSERT INTO {_runs} (id, schedule, source, slot_time, host, trigger, attempt, status, started_at, finished_at, error, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)");
        await using var cmdScope = cmd.ConfigureAwait(false);
        cmd.Parameters.AddWithValue(run.Id);
        cmd.Parameters.AddWithValue(run.Schedule);
        cmd.Parameters.AddWithValue(run.Source);
        cmd.Parameters.AddWithValue(run.Slot.ToUniversalTime());
        cmd.Parameters.AddWithValue(run.Host);
        cmd.Parameters.AddWithValue(run.Trigger);
        cmd.Parameters.AddWithValue(run.Attempt);
        cmd.Parameters.AddWithValue(ToText(run.Status));
        cmd.Parameters.AddWithValue(run.StartedAt.ToUniversalTime());
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.TimestampTz, Value = (object?)run.FinishedAt?.ToUniversalTime() ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)run.Error ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Jsonb, Value = (object?)run.Details ?? DBNull.Value });
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask UpdateRunAsync(ScheduleRun run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(run);
        await _db.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        // A run already marked abandoned by the host that took its slot over keeps that status.
        var cmd = _db.DataSource.CreateCommand(
            $"UPDATE {_runs} SET status = $2, finished_at = $3, error = $4, details = $5 WHERE id = $1 AND status <> 'abandoned'");
        await using var cmdScope = cmd.ConfigureAwait(false);
        cmd.Parameters.AddWithValue(run.Id);
        cmd.Parameters.AddWithValue(ToText(run.Status));
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.TimestampTz, Value = (object?)run.FinishedAt?.ToUniversalTime() ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)run.Error ?? DBNull.Value });
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Jsonb, Value = (object?)run.Details ?? DBNull.Value });
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ScheduleRun>> ListRunsAsync(int count, string? schedule, CancellationToken cancellationToken)
    {
        await _db.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _db.DataSource.CreateCommand(
            $"SELECT id, schedule, source, slot_time, host, trigger, attempt, status, started_at, finished_at, error, details::text FROM {_runs} WHERE ($1::text IS NULL OR schedule = $1) ORDER BY started_at DESC, attempt DESC LIMIT $2");
        await using var cmdScope = cmd.ConfigureAwait(false);
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)schedule ?? DBNull.Value });
        cmd.Parameters.AddWithValue(count);
        var list = new List<ScheduleRun>();
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new ScheduleRun
                {
                    Id = reader.GetGuid(0),
                    Schedule = reader.GetString(1),
                    Source = reader.GetString(2),
                    Slot = reader.GetFieldValue<DateTimeOffset>(3),
                    Host = reader.GetString(4),
                    Trigger = reader.GetString(5),
                    Attempt = reader.GetInt32(6),
                    Status = FromText(reader.GetString(7)),
                    StartedAt = reader.GetFieldValue<DateTimeOffset>(8),
                    FinishedAt = reader.IsDBNull(9) ? null : reader.GetFieldValue<DateTimeOffset>(9),
                    Error = reader.IsDBNull(10) ? null : reader.GetString(10),
                    Details = reader.IsDBNull(11) ? null : reader.GetString(11),
                });
            }
        }

        return list;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ScheduleRunStatus>> GetRecentOutcomesAsync(string schedule, int count, CancellationToken cancellationToken)
    {
        await _db.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _db.DataSource.CreateCommand(
            $"SELECT status FROM {_slots} WHERE schedule = $1 AND status IN ('succeeded', 'failed', 'cancelled') ORDER BY finished_at DESC NULLS LAST, slot_time DESC LIMIT $2");
        await using var cmdScope = cmd.ConfigureAwait(false);
        cmd.Parameters.AddWithValue(schedule);
        cmd.Parameters.AddWithValue(count);
        var list = new List<ScheduleRunStatus>();
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(FromText(reader.GetString(0)));
            }
        }

        return list;
    }

    /// <inheritdoc />
    public async ValueTask SetPauseAsync(string schedule, SchedulePause? pause, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(schedule);
        if (pause is null)
        {
            await ExecuteAsync($"DELETE FROM {_pauses} WHERE schedule = $1", cancellationToken, schedule).ConfigureAwait(false);
            return;
        }

        await _db.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _db.DataSource.CreateCommand(
            $"INSERT INTO {_pauses} (schedule, paused_at, paused_by) VALUES ($1, $2, $3) ON CONFLICT (schedule) DO UPDATE SET paused_at = EXCLUDED.paused_at, paused_by = EXCLUDED.paused_by");
        await using var cmdScope = cmd.ConfigureAwait(false);
        cmd.Parameters.AddWithValue(schedule);
        cmd.Parameters.AddWithValue(pause.PausedAt.ToUniversalTime());
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)pause.PausedBy ?? DBNull.Value });
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyDictionary<string, SchedulePause>> GetPausesAsync(CancellationToken cancellationToken)
    {
        await _db.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _db.DataSource.CreateCommand($"SELECT schedule, paused_at, paused_by FROM {_pauses}");
        await using var cmdScope = cmd.ConfigureAwait(false);
        var pauses = new Dictionary<string, SchedulePause>(StringComparer.Ordinal);
        var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                pauses[reader.GetString(0)] = new SchedulePause(reader.GetFieldValue<DateTimeOffset>(1), reader.IsDBNull(2) ? null : reader.GetString(2));
            }
        }

        return pauses;
    }

    private static string ToText(ScheduleRunStatus status) => status.ToString().ToLowerInvariant();

    private static ScheduleRunStatus FromText(string text) =>
        Enum.TryParse<ScheduleRunStatus>(text, ignoreCase: true, out var s) ? s : throw new InvalidOperationException($"Unknown schedule status '{text}' in the database.");

    private async Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken, params object[] args)
    {
        await _db.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _db.DataSource.CreateCommand(sql);
        await using var cmdScope = cmd.ConfigureAwait(false);
        foreach (var a in args)
        {
            cmd.Parameters.AddWithValue(a);
        }

        return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
