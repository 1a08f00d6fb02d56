using Ingestion.Dedup;
using Ingestion.Postgres.Dedup;
using Ingestion.Postgres.Hosting;
using Ingestion.TestSupport;
using Npgsql;

using static Ingestion.Postgres.Tests.Dedup.PostgresDedupTests;

namespace Ingestion.Postgres.Tests.Dedup;

/// <summary>
/// A batch of one source queries its candidates on a second connection while its records are staged: what it must still
/// see (other sources' records committed before it), what it falls back on (a pool of one connection, a batch of two
/// sources), and a staging failure while the query runs.
/// </summary>
public class DedupQueryAheadTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly DateTimeOffset T0 = new(2026, 7, 1, 20, 0, 0, TimeSpan.FromHours(-4));
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private IngestionDatabase Database(string schema, string? connectionString = null) => PostgresDedupTests.DedupDatabase(connectionString ?? db.ConnectionString, schema);

    private static List<MatchProfile> Festivals(RecordMatcher<EventRow> m, string source, string prefix, Func<int, string> title) =>
        [.. Enumerable.Range(0, 40).Select(i => P(m, source, $"{prefix}{i}", title(i), T0.AddDays(i)))];

    [Fact]
    public async Task A_one_source_batch_queries_its_candidates_on_a_second_connection_while_its_records_are_staged()
    {
        await using var database = Database("dedup_ahead");
        var store = new PostgresDedupStore(database);
        var m = PostgresDedupTests.Matcher();
        await store.MatchBatchAsync(m, DedupPolicy.Link, Festivals(m, "legacy", "l", i => $"Festival des lumières numéro {i}"), null, false, default);

        // Another session holds the blocks table: the staging's copy of the blocks waits for it, and so does a candidate
        // query. Both wait at once only if the query runs on its own connection beside the staging.
        await using var conn = await db.DataSource.OpenConnectionAsync();
        var holder = await conn.BeginTransactionAsync();
        await using (var hold = new NpgsqlCommand("LOCK TABLE dedup_ahead.dedup_blocks IN ACCESS EXCLUSIVE MODE", conn, holder))
        {
            await hold.ExecuteNonQueryAsync();
        }

        var batch = store.MatchBatchAsync(m, DedupPolicy.Link, Festivals(m, "ics", "u", i => $"FESTIVAL DES LUMIERES NUMERO {i}"), null, false, default);
        var waiting = await WaitForLockWaitersAsync(2);
        Assert.Contains(waiting, q => q.Contains("COPY", StringComparison.Ordinal));
        Assert.Contains(waiting, q => q.Contains("CROSS JOIN LATERAL", StringComparison.Ordinal));
        await holder.RollbackAsync();

        var result = await batch.WaitAsync(Patience);
        Assert.Equal(40L, result.Linked);
        Assert.Equal(40L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_ahead.record_links l JOIN dedup_ahead.dedup_records r ON r.id = l.record_id JOIN dedup_ahead.dedup_records t ON t.id = l.target_id WHERE l.status = 'linked' AND r.source = 'ics' AND t.source = 'legacy' AND substr(r.source_id, 2) = substr(t.source_id, 2)"));
    }

    [Fact]
    public async Task A_pool_of_one_connection_matches_on_the_batch_connection_without_waiting_for_a_second()
    {
        var single = new NpgsqlConnectionStringBuilder(db.ConnectionString) { MaxPoolSize = 1 }.ConnectionString;
        await using var database = Database("dedup_pool_one", single);
        var store = new PostgresDedupStore(database);
        var m = PostgresDedupTests.Matcher();
        await store.MatchBatchAsync(m, DedupPolicy.Link, Festivals(m, "legacy", "l", i => $"Concert au parc numéro {i}"), null, false, default);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = await store.MatchBatchAsync(m, DedupPolicy.Link, Festivals(m, "ics", "u", i => $"CONCERT AU PARC NUMERO {i}"), null, false, default);
        Assert.Equal(40L, result.Linked);

        // The batch never asked the pool for a connection it cannot have (it would have waited a second for it).
        Assert.True(clock.Elapsed < DedupMatching.SecondConnectionWait, $"the batch took {clock.Elapsed}");
    }

    [Fact]
    public async Task A_batch_of_two_sources_links_its_own_records_to_each_other_once_into_one_group()
    {
        await using var database = Database("dedup_two_sources");
        var store = new PostgresDedupStore(database);
        var m = PostgresDedupTests.Matcher();

        // Records of one batch from two sources: the candidate query must see the batch's own rows, so it runs after them.
        var both = Festivals(m, "legacy", "l", i => $"Marché de nuit numéro {i}").Concat(Festivals(m, "ics", "u", i => $"MARCHE DE NUIT NUMERO {i}")).ToList();
        Assert.True(DedupMatching.MayQueryAhead(database.DataSource, both[..40]));
        Assert.False(DedupMatching.MayQueryAhead(database.DataSource, both));
        var result = await store.MatchBatchAsync(m, DedupPolicy.Link, both, null, false, default);
        Assert.Equal(40L, result.Linked);

        // Each pair ends in one group (linked one way only: the second record of a pair finds the first already in its group).
        Assert.Equal(40L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_two_sources.dedup_records l JOIN dedup_two_sources.dedup_records u ON u.source = 'ics' AND substr(u.source_id, 2) = substr(l.source_id, 2) WHERE l.source = 'legacy' AND l.canonical_id = u.canonical_id"));
    }

    [Fact]
    public async Task Batches_of_two_sources_matched_at_once_link_every_pair_once()
    {
        await using var database = Database("dedup_concurrent");
        var store = new PostgresDedupStore(database);
        var m = PostgresDedupTests.Matcher();
        await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "seed", "0", "Ouverture", T0.AddYears(-1))], null, false, default);

        // Each round, two sources file the same event at the same moment: whichever takes the lock second must find the
        // other's record, committed before its candidate query.
        for (var round = 0; round < 10; round++)
        {
            var title = $"Soirée contes et légendes {round}";
            var at = T0.AddDays(round);
            var a = store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "mairie", $"m{round}", title, at)], null, false, default);
            var b = store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "agenda", $"a{round}", title.ToUpperInvariant(), at)], null, false, default);
            var results = await Task.WhenAll(a, b).WaitAsync(Patience);
            Assert.Equal(1L, results.Sum(r => r.Linked));
        }

        Assert.Equal(10L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_concurrent.record_links WHERE status = 'linked'"));
    }

    [Fact]
    public async Task A_staging_that_fails_while_the_query_runs_ahead_reports_its_own_error_and_commits_nothing()
    {
        await using var database = Database("dedup_ahead_fail", db.ConnectionString + ";Command Timeout=1");
        var store = new PostgresDedupStore(database);
        var m = PostgresDedupTests.Matcher();
        await store.MatchBatchAsync(m, DedupPolicy.Link, Festivals(m, "legacy", "l", i => $"Vente de garage numéro {i}"), null, false, default);

        // Both the staging and the query ahead wait on the held table past the 1 s command timeout: the staging's is the error.
        await using var conn = await db.DataSource.OpenConnectionAsync();
        await using (var holder = await conn.BeginTransactionAsync())
        {
            await using (var hold = new NpgsqlCommand("LOCK TABLE dedup_ahead_fail.dedup_blocks IN ACCESS EXCLUSIVE MODE", conn, holder))
            {
                await hold.ExecuteNonQueryAsync();
            }

            var e = await Assert.ThrowsAsync<IngestionException>(() => store.MatchBatchAsync(m, DedupPolicy.Link, Festivals(m, "ics", "u", i => $"VENTE DE GARAGE NUMERO {i}"), null, false, default));
            Assert.Contains("Dedup of 'events': staging 40 records timed out", e.Message);
            await holder.RollbackAsync();
        }

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_ahead_fail.dedup_records WHERE source = 'ics'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_ahead_fail.record_links"));

        // The store is still usable: the same batch, once the table is free, links every record.
        var again = await store.MatchBatchAsync(m, DedupPolicy.Link, Festivals(m, "ics", "u", i => $"VENTE DE GARAGE NUMERO {i}"), null, false, default);
        Assert.Equal(40L, again.Linked);
    }

    /// <summary>Waits until at least <paramref name="count"/> sessions of this database wait for a lock, and returns their statements.</summary>
    private async Task<List<string>> WaitForLockWaitersAsync(int count)
    {
        var until = DateTime.UtcNow + Patience;
        while (true)
        {
            var waiting = new List<string>();
            await using (var cmd = db.DataSource.CreateCommand("SELECT query FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))
            await using (var reader = await cmd.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    waiting.Add(reader.GetString(0));
                }
            }

            if (waiting.Count >= count)
            {
                return waiting;
            }

            Assert.True(DateTime.UtcNow < until, $"only {waiting.Count} sessions waited for a lock within {Patience}: {string.Join(" | ", waiting)}");
            await Task.Delay(50);
        }
    }
}
