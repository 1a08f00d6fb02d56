using Ingestion.Postgres.Sql;
using Ingestion.Postgres.Stores;
using Ingestion.Sinks;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// What every transaction of the writer proves and records beside its rows: that the run still holds its source's
/// run lock (a fencing check, so a run that lost its lock commits nothing more), and the job's committed counts and
/// heartbeat (so a crash leaves a job row that tells what was committed and when the run was last alive).
/// </summary>
internal sealed partial class PostgresSinkWriter<TRecord>
{
    /// <summary>Begins a transaction on the writer's connection and proves the run still holds its lock in it.</summary>
    private async Task<NpgsqlTransaction> BeginFencedAsync(CancellationToken cancellationToken)
    {
        var tx = await _conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await CheckFenceAsync(_conn, tx, cancellationToken).ConfigureAwait(false);
            return tx;
        }
        catch
        {
            await tx.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Proves, in <paramref name="tx"/>, that the run still holds its source's lock (see <see cref="PostgresRunLockProvider"/>).</summary>
    private Task CheckFenceAsync(NpgsqlConnection conn, NpgsqlTransaction tx, CancellationToken cancellationToken) =>
        PostgresRunLockProvider.CheckFenceAsync(conn, tx, PgIdentifier.Quote(_storeSchema), _run.RunLock, cancellationToken);

    /// <summary>Adds a committing batch's counts to its job row, in the batch's transaction, and records the heartbeat.</summary>
    private async Task RecordJobProgressAsync(SinkBatch<TRecord> batch, Counts counts, long duplicates, int sinkRejected, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand(
            $"""
            UPDATE {PgIdentifier.Quote(_storeSchema)}.import_jobs SET read = read + $2, created = created + $3, updated = updated + $4,
                unchanged = unchanged + $5, duplicates = duplicates + $6, rejected = rejected + $7, heartbeat_at = now()
            WHERE id = $1
            """,
            _conn,
            _tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = _run.RunId, NpgsqlDbType = NpgsqlDbType.Uuid });
            foreach (var n in new long[] { batch.Records.Count + batch.Rejected.Count, counts.Created, counts.Updated, counts.Unchanged, duplicates, batch.Rejected.Count + sinkRejected })
            {
                cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = n, NpgsqlDbType = NpgsqlDbType.Bigint });
            }

            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
