using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// A first load larger than the key index (<c>KeyIndexMaxRows</c>) keeps copying into the table without its key: keys
/// past what the index remembers are copied as new, the table is marked as possibly holding repeats, and building the
/// key at the end keeps the newest row of a key copied twice and recounts it as updated or unchanged.
/// </summary>
public class PostgresSinkFirstLoadPastIndexTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task Keys_repeated_past_the_index_are_resolved_at_the_key_build_keeping_the_newest_and_recounted()
    {
        await using var h = new SinkHarness(db, o => o.KeyIndexMaxRows = 3);
        await using var w = await h.OpenAsync<Row>(Run<Row>("past-index", o => o.Table = "past_index"));
        var first = await w.WriteBatchAsync(h.Batch<Row>([R("k1", 1), R("k2", 2), R("k3", 3), R("k4", 4), R("k5", 5)]), default);
        var second = await w.WriteBatchAsync(h.Batch<Row>([R("k4", 4), R("k5", 50), R("k6", 6)]), default);

        // Still no key: the repeats were copied as new rows, and the table says it may hold repeats.
        Assert.Equal((5L, 3L), (first.Created, second.Created));
        Assert.Equal(8L, await db.ScalarAsync<long>("SELECT count(*) FROM past_index"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_index WHERE indrelid = 'past_index'::regclass AND indisprimary"));
        Assert.EndsWith("(may hold repeats)", await db.ScalarAsync<string>(HashColumnCommentSql("past_index")));

        var completion = await w.CompleteAsync(default);

        // k4 came again unchanged, k5 with a new value: one each, moved from created.
        Assert.Equal((1L, 1L), (completion.RecountedAsUpdated, completion.RecountedAsUnchanged));
        Assert.Equal("k1=1,k2=2,k3=3,k4=4,k5=50,k6=6", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM past_index"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_index WHERE indrelid = 'past_index'::regclass AND indisprimary"));
    }

    [Fact]
    public async Task The_batch_that_fills_the_key_index_does_not_mark_the_table_only_a_new_key_after_it_does()
    {
        await using var h = new SinkHarness(db, o => o.KeyIndexMaxRows = 3);
        await using var w = await h.OpenAsync<Row>(Run<Row>("fills-index", o => o.Table = "fills_index"));
        var comment = HashColumnCommentSql("fills_index");

        // Its keys were all looked up while every earlier key was remembered: none can be a repeat.
        await w.WriteBatchAsync(h.Batch<Row>([R("k1", 1), R("k2", 2), R("k3", 3), R("k4", 4), R("k5", 5)]), default);
        Assert.DoesNotContain("(may hold repeats)", await db.ScalarAsync<string>(comment) ?? string.Empty, StringComparison.Ordinal);

        await w.WriteBatchAsync(h.Batch<Row>([R("k6", 6)]), default);
        Assert.EndsWith("(may hold repeats)", await db.ScalarAsync<string>(comment));
        var completion = await w.CompleteAsync(default);
        Assert.Equal((0L, 0L), (completion.RecountedAsUpdated, completion.RecountedAsUnchanged));
    }

    [Fact]
    public async Task A_run_resuming_a_first_load_that_copied_repeats_resolves_them_before_writing()
    {
        await using var h = new SinkHarness(db, o => o.KeyIndexMaxRows = 2);
        await using (var crashed = await h.OpenAsync<Row>(Run<Row>("past-index-resume", o => o.Table = "past_index_resume")))
        {
            await crashed.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2), R("c", 3)]), default);
            await crashed.WriteBatchAsync(h.Batch<Row>([R("c", 30), R("d", 4)]), default);

            // Disposed without completing: the run stopped before building the key.
        }

        await using var w = await h.OpenAsync<Row>(Run<Row>("past-index-resume", o => o.Table = "past_index_resume"));
        var r = await w.WriteBatchAsync(h.Batch<Row>([R("d", 4), R("e", 5)]), default);
        var completion = await w.CompleteAsync(default);

        // The key was built before this run's batch (it had to look keys up: the table holds more than it remembers),
        // keeping c=30; the earlier run counted its own rows, so nothing is recounted here.
        Assert.Equal((1L, 0L, 1L), (r.Created, r.Updated, r.Unchanged));
        Assert.Equal((0L, 0L), (completion.RecountedAsUpdated, completion.RecountedAsUnchanged));
        Assert.Equal("a=1,b=2,c=30,d=4,e=5", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM past_index_resume"));
    }

    [Fact]
    public async Task A_run_over_a_table_larger_than_its_key_index_writes_with_exact_counts()
    {
        // 100,000 rows, a 100-key index: loading the index stops remembering long before the export ends. It used to
        // cancel the export inside the batch's transaction, which then refused every command (25P02).
        await using (var load = new SinkHarness(db))
        {
            await using var w = await load.OpenAsync<Row>(Run<Row>("past-index-large", o => o.Table = "past_index_large"));
            for (var b = 0; b < 10; b++)
            {
                await w.WriteBatchAsync(load.Batch<Row>([.. Enumerable.Range(b * 10_000, 10_000).Select(i => R($"k{i:D6}", i))]), default);
            }

            await w.CompleteAsync(default);
        }

        await using var h = new SinkHarness(db, o => o.KeyIndexMaxRows = 100);
        await using var rerun = await h.OpenAsync<Row>(Run<Row>("past-index-large", o => o.Table = "past_index_large"));
        var r = await rerun.WriteBatchAsync(h.Batch<Row>([R("k000001", 1), R("k050000", -1), R("new", 7)]), default);
        await rerun.CompleteAsync(default);

        Assert.Equal((1L, 1L, 1L), (r.Created, r.Updated, r.Unchanged));
        Assert.Equal(100_001L, await db.ScalarAsync<long>("SELECT count(*) FROM past_index_large"));
        Assert.Equal("-1", await db.ScalarAsync<string>("SELECT value::text FROM past_index_large WHERE id = 'k050000'"));
    }

    [Fact]
    public async Task Without_copies_past_the_index_a_key_stored_twice_still_fails_the_key_build_naming_it()
    {
        await using var h = new SinkHarness(db, o => o.KeyIndexMaxRows = 100);
        await using var w = await h.OpenAsync<Row>(Run<Row>("past-index-foreign", o => o.Table = "past_index_foreign"));
        await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2)]), default);
        await db.ExecuteAsync("INSERT INTO past_index_foreign (id, value) VALUES ('a', 9)");

        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.CompleteAsync(default));
        Assert.Contains("holds 1 key value(s) of (id) stored more than once", e.Message);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM past_index_foreign"));
    }
}
