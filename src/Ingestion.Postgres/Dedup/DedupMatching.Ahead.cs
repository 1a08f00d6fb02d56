using Ingestion.Dedup;
using Npgsql;

namespace Ingestion.Postgres.Dedup;

/// <summary>
/// A batch of one source staged and matched with its candidate query on a second connection, run while the batch's own
/// connection writes the records and their blocks: the server then works on both at once instead of one after the
/// other.
/// </summary>
internal sealed partial class DedupMatching
{
    /// <summary>How long a batch waits for a second connection from the pool before it queries its candidates on its own connection, after the staging.</summary>
    internal static readonly TimeSpan SecondConnectionWait = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Whether a batch may query its candidates on a second connection: its records all come from one source (records
    /// of one source are never candidates of one another, so the query need not see the batch's own uncommitted rows),
    /// and the pool can give a second connection (a pool of one connection cannot).
    /// </summary>
    internal static bool MayQueryAhead(NpgsqlDataSource dataSource, IReadOnlyList<MatchProfile> records)
    {
        var pool = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        if (pool.Pooling && pool.MaxPoolSize < 2)
        {
            return false;
        }

        for (var i = 1; i < records.Count; i++)
        {
            if (!string.Equals(records[i].Source, records[0].Source, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Stages a batch of one source's records as matched and matches them, in the caller's transaction. The record
    /// type's lock is taken first, so the candidate query, whose snapshot is taken after it on a second connection,
    /// sees every record another batch committed under the lock, as it would after the staging. It runs while the
    /// records and their blocks are written; when no second connection is free within
    /// <see cref="SecondConnectionWait"/>, it runs on the batch's connection after the staging. A failure of either
    /// fails the batch, and nothing of it is committed.
    /// </summary>
    internal async Task<DedupBatchResult> StageAndMatchAsync(NpgsqlDataSource dataSource, NpgsqlConnection conn, NpgsqlTransaction tx, RecordMatcher matcher, DedupPolicy policy, IReadOnlyList<MatchProfile> records, Guid? runId, Action<string> stepIs, CancellationToken cancellationToken)
    {
        stepIs($"waiting for the dedup lock of '{matcher.RecordType}'");
        var canonicals = new Dictionary<long, long>(records.Count);
        var sources = await LockAsync(conn, tx, matcher, null, canonicals, cancellationToken).ConfigureAwait(false);

        // Each probe is owned by the record's position in the batch until the staging gives the records their row ids. The
        // probe keys are computed by the query ahead, on another core, while this one prepares the records' rows.
        var probes = new (long Record, MatchProfile Profile, IReadOnlyList<BlockEntry> Keys)[records.Count];
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var ahead = Task.Run(
            () =>
            {
                for (var i = 0; i < records.Count; i++)
                {
                    probes[i] = (i, records[i], DedupBlocksSql.ProbeEntries(matcher, records[i], sources));
                }

                return CandidatesOnSecondConnectionAsync(dataSource, matcher, probes, stop.Token);
            },
            stop.Token);
        StagedRecord[] staged;
        try
        {
            stepIs($"staging {records.Count} records");
            staged = await DedupBlocksSql.StageAsync(conn, tx, _schema, matcher, records, matched: true, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // The staging's failure is the one reported: the query ahead is stopped, and its own outcome ignored.
            await stop.CancelAsync().ConfigureAwait(false);
            await ahead.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            throw;
        }

        var found = await ahead.ConfigureAwait(false);
        if (found is null)
        {
            stepIs(CandidateStep(probes));
            found = await DedupBlocksSql.CandidatesAsync(conn, tx, _schema, matcher, probes, cancellationToken).ConfigureAwait(false);
        }

        var byRecord = new Dictionary<long, List<DedupRow>>(found.Value.ByRecord.Count);
        foreach (var (position, list) in found.Value.ByRecord)
        {
            byRecord[staged[(int)position].Id] = list;
        }

        foreach (var r in staged)
        {
            canonicals[r.Id] = r.Canonical;
        }

        // A record whose row the staging just inserted has no links yet: only the others' links are read.
        var linkable = staged.Where(r => !r.Inserted).Select(r => r.Id).ToArray();
        stepIs($"reading the links of {linkable.Length} records");
        var (rejected, settled) = await LinkStateAsync(conn, tx, linkable, cancellationToken).ConfigureAwait(false);
        var open = Enumerable.Range(0, staged.Length)
            .Where(i => !settled.Contains(staged[i].Id))
            .Select(i => (staged[i].Id, records[i]));
        return await DecideAsync(conn, tx, matcher, policy, open, canonicals, rejected, byRecord, found.Value.CutBlocks, null, runId, stepIs, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The candidate query on a connection of its own (a read-only transaction with the query's settings), or null when
    /// the pool gives none within <see cref="SecondConnectionWait"/>. A timeout fails with the error that names it.
    /// </summary>
    private async Task<(Dictionary<long, List<DedupRow>> ByRecord, long CutBlocks)?> CandidatesOnSecondConnectionAsync(NpgsqlDataSource dataSource, RecordMatcher matcher, IReadOnlyList<(long Record, MatchProfile Profile, IReadOnlyList<BlockEntry> Keys)> probes, CancellationToken cancellationToken)
    {
        NpgsqlConnection conn;
        using (var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            wait.CancelAfter(SecondConnectionWait);
            try
            {
                conn = await dataSource.OpenConnectionAsync(wait.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && wait.IsCancellationRequested && e is OperationCanceledException or NpgsqlException { InnerException: OperationCanceledException or TimeoutException })
            {
                return null;
            }
        }

        await using (conn.ConfigureAwait(false))
        {
            try
            {
                var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (tx.ConfigureAwait(false))
                {
                    var settings = new NpgsqlBatch(conn, tx);
                    await using (settings.ConfigureAwait(false))
                    {
                        settings.BatchCommands.Add(new NpgsqlBatchCommand("SET TRANSACTION READ ONLY"));
                        AddCandidateSettings(settings);
                        await settings.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    var found = await DedupBlocksSql.CandidatesAsync(conn, tx, _schema, matcher, probes, cancellationToken).ConfigureAwait(false);
                    await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                    return found;
                }
            }
            catch (Exception e) when (DedupTimeouts.IsTimeout(e, cancellationToken))
            {
                throw DedupTimeouts.Describe(e, matcher.RecordType, CandidateStep(probes) + " on a second connection");
            }
        }
    }
}
