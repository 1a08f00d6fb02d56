using Ingestion.Dedup;
using Ingestion.Postgres.Dedup;
using Ingestion.Postgres.Hosting;
using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Dedup.PostgresDedupTests;

namespace Ingestion.Postgres.Tests.Dedup;

/// <summary>
/// A batch's records are first inserted with a plain INSERT under a savepoint; a record filed already fails it, and the
/// batch is inserted again skipping the records filed. What that second path must keep: every new record filed once, the
/// filed ones refreshed in place, nothing left of the undone insert.
/// </summary>
public class DedupPlainInsertTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly DateTimeOffset T0 = new(2026, 8, 1, 19, 0, 0, TimeSpan.FromHours(-4));

    private IngestionDatabase Database(string schema) => PostgresDedupTests.DedupDatabase(db.ConnectionString, schema);

    [Fact]
    public async Task A_batch_whose_last_record_is_filed_already_files_the_new_ones_once_and_refreshes_the_filed_one_in_place()
    {
        await using var database = Database("dedup_plain_mixed");
        var store = new PostgresDedupStore(database);
        var m = PostgresDedupTests.Matcher();
        await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "a", "old", "Marché de Noël", T0)], null, false, default);
        var oldId = await db.ScalarAsync<long>("SELECT id FROM dedup_plain_mixed.dedup_records WHERE source_id = 'old'");

        // 39 new records, then the one filed above under a new title: the plain insert files the 39 before it fails on
        // the last one, and is undone.
        List<MatchProfile> batch = [.. Enumerable.Range(0, 39).Select(i => P(m, "a", $"n{i}", $"Conférence sur les abeilles numéro {i}", T0.AddDays(i + 1)))];
        batch.Add(P(m, "a", "old", "Festival de jazz", T0));
        await store.MatchBatchAsync(m, DedupPolicy.Link, batch, null, false, default);

        Assert.Equal(40L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_plain_mixed.dedup_records"));
        Assert.Equal(40L, await db.ScalarAsync<long>("SELECT count(DISTINCT source_id) FROM dedup_plain_mixed.dedup_records"));
        Assert.Equal(oldId, await db.ScalarAsync<long>("SELECT id FROM dedup_plain_mixed.dedup_records WHERE source_id = 'old'"));
        Assert.Contains("jazz", await db.ScalarAsync<string>("SELECT match_text FROM dedup_plain_mixed.dedup_records WHERE source_id = 'old'"), StringComparison.Ordinal);

        // Every block belongs to a record that exists (none left by the undone insert), and each record has exactly its
        // own keys.
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_plain_mixed.dedup_blocks b WHERE NOT EXISTS (SELECT 1 FROM dedup_plain_mixed.dedup_records r WHERE r.id = b.record_id)"));
        var expected = batch.Sum(p => m.Blocking.FileKeys(p).Count);
        Assert.Equal(expected, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_plain_mixed.dedup_blocks"));

        // Found by its new title, not by the old one.
        Assert.Equal(0L, (await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "b", "1", "MARCHE DE NOEL", T0)], null, false, default)).Linked);
        Assert.Equal(1L, (await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "b", "2", "FESTIVAL DE JAZZ", T0)], null, false, default)).Linked);
    }

    [Fact]
    public async Task A_record_twice_in_one_batch_is_filed_once()
    {
        await using var database = Database("dedup_plain_twice");
        var store = new PostgresDedupStore(database);
        var m = PostgresDedupTests.Matcher();
        var result = await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "a", "1", "Salon du livre", T0), P(m, "a", "2", "Nuit blanche", T0.AddDays(3)), P(m, "a", "1", "Salon du livre", T0)], null, false, default);
        Assert.Equal(0L, result.Linked);
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_plain_twice.dedup_records"));
        Assert.Equal(1L, (await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "b", "9", "SALON DU LIVRE", T0)], null, false, default)).Linked);
    }
}
