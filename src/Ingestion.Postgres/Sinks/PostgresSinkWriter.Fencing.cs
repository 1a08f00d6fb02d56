using Ingestion.Postgres.Sql;
using Ingestion.Postgres.Stores;
using Ingestion.Sinks;
using Ingestion.Stores;
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
    /// <summary>
    /// Begins a transaction on the writer's connection. A run-long transaction (whole run, replace, dry run) proves at
    /// once that the run holds its lock (its share lock then keeps a takeover waiting until the run ends); a batch
    /// transaction proves it just before it commits, in <see cref="FenceAndRecordBatchAsync"/>.
    /// </summary>
    private async Task<NpgsqlTransaction> BeginFencedAsync(CancellationToken cancellationToken)
    {
        var tx = await _conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        if (!_deferred)
        {
            return tx;
        }

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

    /// <summary>
    /// Just before a batch transaction commits, in one round trip: saves the checkpoint <paramref name="state"/> (when
    /// there is one), reads the source's fencing token with a share lock (a takeover then waits for this commit, and a
    /// token already taken fails the batch, which rolls back), and adds the batch's counts to its job row with a
    /// heartbeat.
    /// </summary>
    private async Task FenceAndRecordBatchAsync(SourceState? state, JobIncrement increment, bool asynchronousCommit, CancellationToken cancellationToken)
    {
        var schema = PgIdentifier.Quote(_storeSchema);
        const string progress = "read = read + $2, created = created + $3, updated = updated + $4, unchanged = unchanged + $5, duplicates = duplicates + $6, rejected = rejected + $7, heartbeat_at = now()";
        var fenced = _run.RunLock is { FencingToken: { } } runLock ? runLock : null;

        // This transaction only (is_local): see CommitsAsynchronously and FlushCommitsAsync.
        var asynchronous = asynchronousCommit ? ", set_config('synchronous_commit', 'off', true)" : string.Empty;
        var record = new NpgsqlBatchCommand(
            fenced is null
                ? $"WITH job AS (UPDATE {schema}.import_jobs SET {progress} WHERE id = $1 RETURNING 1) SELECT 1{asynchronous}"
                : $"""
                  WITH fence AS (SELECT {PostgresRunLockProvider.HolderColumns} FROM {schema}.run_locks WHERE source = $8 FOR SHARE),
                  job AS (UPDATE {schema}.import_jobs SET {progress} WHERE id = $1 AND EXISTS (SELECT 1 FROM fence WHERE generation = $9 AND run_id = $10) RETURNING 1)
                  SELECT {PostgresRunLockProvider.HolderColumns}{asynchronous} FROM fence
                  """);
        _commitsToFlush |= asynchronousCommit;
        record.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = _run.RunId, NpgsqlDbType = NpgsqlDbType.Uuid });
        foreach (var n in new long[] { increment.Read, increment.Created, increment.Updated, increment.Unchanged, increment.Duplicates, increment.Rejected })
        {
            record.Parameters.Add(new NpgsqlParameter<long> { TypedValue = n, NpgsqlDbType = NpgsqlDbType.Bigint });
        }

        // The checkpoint goes first in the same round trip: when it fails, the statements after it are not run.
        var batch = new NpgsqlBatch(_conn, _tx);
        if (state is not null)
        {
            batch.BatchCommands.Add(StoreSql.SaveStateCommand(schema, Source, state));
        }

        batch.BatchCommands.Add(record);
        await using (batch.ConfigureAwait(false))
        {
            if (fenced is null)
            {
                await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                return;
            }

            record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = fenced.SourceName, NpgsqlDbType = NpgsqlDbType.Text });
            record.Parameters.Add(new NpgsqlParameter<long> { TypedValue = fenced.FencingToken!.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
            record.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = fenced.RunId, NpgsqlDbType = NpgsqlDbType.Uuid });
            RunLockHolder? holder;
            var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                // On to the fence's result: past the checkpoint's, which has no columns (where the reader does not skip it).
                while (reader.FieldCount == 0 && await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
                {
                }

                holder = await PostgresRunLockProvider.ReadHolderAsync(reader, fenced.SourceName, cancellationToken).ConfigureAwait(false);
            }

            PostgresRunLockProvider.ThrowIfNotHeld(fenced, fenced.FencingToken.Value, holder);
        }
    }

    /// <summary>
    /// Commits what batches that wrote nothing left for later (see <see cref="PostgresSinkOptions.QuietBatchCommitInterval"/>):
    /// their counts into the job row and their last checkpoint, fenced, in one transaction.
    /// </summary>
    private async Task CommitDeferredAsync(CancellationToken cancellationToken)
    {
        if (!HasDeferred)
        {
            return;
        }

        _tx ??= await BeginFencedAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await SaveStateAndCommitAsync(null, default, CommitsAsynchronously(null), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await RollbackQuietlyAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The end of every batch transaction: saves the checkpoint (<paramref name="state"/>, else the last one a deferred
    /// batch left) and, unless the run is one transaction, proves the run lock, adds <paramref name="increment"/> and the
    /// deferred batches' counts to the job row, and commits: without waiting for the disk when
    /// <paramref name="asynchronousCommit"/> (see <see cref="CommitsAsynchronously"/>).
    /// </summary>
    private async Task SaveStateAndCommitAsync(SourceState? state, JobIncrement increment, bool asynchronousCommit, CancellationToken cancellationToken)
    {
        var saved = state ?? _deferredState;
        if (_deferred)
        {
            if (saved is not null)
            {
                await StoreSql.SaveStateAsync(_conn, _tx, PgIdentifier.Quote(_storeSchema), Source, saved, cancellationToken).ConfigureAwait(false);
            }

            return; // a run-long transaction commits at completion
        }

        await FenceAndRecordBatchAsync(saved, _deferredCounts + increment, asynchronousCommit, cancellationToken).ConfigureAwait(false);
        await _tx!.CommitAsync(cancellationToken).ConfigureAwait(false);
        await EndTransactionAsync().ConfigureAwait(false);
        _deferredCounts = default;
        _deferredState = null;
        _lastCommit = _time.GetTimestamp();
    }

    /// <summary>
    /// Ends the transaction that batches which wrote nothing left open for the next commit (it holds nothing of theirs:
    /// their counts and checkpoint are kept here until then), so that work outside a batch does not run inside it.
    /// </summary>
    private async Task EndQuietTransactionAsync()
    {
        if (!_deferred && _tx is not null)
        {
            // Disposing rolls it back; nothing was written in it, so the key index stays true.
            await EndTransactionAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Whether a batch that wrote nothing must commit all the same: the last commit is <see cref="PostgresSinkOptions.QuietBatchCommitInterval"/> old.</summary>
    private bool QuietCommitDue() =>
        _options.QuietBatchCommitInterval <= TimeSpan.Zero || _time.GetElapsedTime(_lastCommit) >= _options.QuietBatchCommitInterval;

    /// <summary>Whether batches that wrote nothing wait for a commit (their counts or checkpoint).</summary>
    private bool HasDeferred => _deferredCounts != default || _deferredState is not null;

    /// <summary>What one transaction adds to its job row.</summary>
    private readonly record struct JobIncrement(long Read, long Created, long Updated, long Unchanged, long Duplicates, long Rejected)
    {
        public static JobIncrement operator +(JobIncrement a, JobIncrement b) =>
            new(a.Read + b.Read, a.Created + b.Created, a.Updated + b.Updated, a.Unchanged + b.Unchanged, a.Duplicates + b.Duplicates, a.Rejected + b.Rejected);
    }

    /// <summary>
    /// Whether a batch writing into <paramref name="mapping"/>'s table (none for a batch that wrote no table) commits
    /// without waiting for the disk: every batch with <see cref="PostgresSinkOptions.AsynchronousBatchCommits"/>, a first
    /// load's with <see cref="PostgresSinkOptions.AsynchronousFirstLoadCommits"/>.
    /// </summary>
    private bool CommitsAsynchronously(TableMapping<TRecord>? mapping) =>
        _options.AsynchronousBatchCommits || (_options.AsynchronousFirstLoadCommits && mapping is not null && IsFirstLoadInto(mapping));

    /// <summary>
    /// Waits until every batch this writer committed asynchronously is on disk: a transaction that takes a transaction
    /// id commits synchronously, flushing the write-ahead log up to its commit record, so everything committed before it.
    /// </summary>
    private async Task FlushCommitsAsync(CancellationToken cancellationToken)
    {
        if (!_commitsToFlush || _run.IsDryRun)
        {
            return;
        }

        var cmd = new NpgsqlCommand("SELECT pg_current_xact_id()", _conn);
        await using (cmd.ConfigureAwait(false))
        {
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        _commitsToFlush = false;
    }
}
