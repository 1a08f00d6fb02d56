using Ingestion.Sinks;
using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

public class PostgresSinkMergeTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task Merge_counts_created_updated_unchanged_and_duplicates_exactly()
    {
        await using var h = new SinkHarness(db);
        var run = Run<Row>("merge-counts", o => o.Table = "merge_counts");
        await using (var w = await h.OpenAsync<Row>(run))
        {
            var r = await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2), R("c", 3)]), default);
            Assert.Equal((3L, 0L, 0L, 0L), (r.Created, r.Updated, r.Unchanged, r.Duplicates));

            // b changes, c is the same, d is new, a appears twice (the last wins).
            r = await w.WriteBatchAsync(h.Batch<Row>([R("a", 10), R("b", 20), R("c", 3), R("d", 4), R("a", 1)]), default);
            Assert.Equal((1L, 1L, 2L, 1L), (r.Created, r.Updated, r.Unchanged, r.Duplicates));
            await w.CompleteAsync(default);
        }

        Assert.Equal("a=1,b=20,c=3,d=4", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM merge_counts"));

        // A new writer (a new run) loads the key index from the table: everything unchanged, nothing rewritten.
        var xmins = await db.ScalarAsync<string>("SELECT string_agg(xmin::text, ',' ORDER BY id) FROM merge_counts");
        await using (var w = await h.OpenAsync<Row>(Run<Row>("merge-counts", o => o.Table = "merge_counts")))
        {
            var r = await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 20), R("c", 3), R("d", 4)]), default);
            Assert.Equal((0L, 0L, 4L), (r.Created, r.Updated, r.Unchanged));
            r = await w.WriteBatchAsync(h.Batch<Row>([R("d", 5, "x")]), default);
            Assert.Equal((0L, 1L, 0L), (r.Created, r.Updated, r.Unchanged));
            await w.CompleteAsync(default);
        }

        Assert.Equal(xmins.Split(',')[..3], (await db.ScalarAsync<string>("SELECT string_agg(xmin::text, ',' ORDER BY id) FROM merge_counts")).Split(',')[..3]);
    }

    [Fact]
    public async Task Unchanged_rows_are_not_rewritten_n_tup_upd_counts_only_changes()
    {
        await using var h = new SinkHarness(db);
        var rows = Enumerable.Range(1, 50).Select(i => R($"k{i}", i)).ToList();
        await using (var w = await h.OpenAsync<Row>(Run<Row>("tup-upd", o => o.Table = "tup_upd")))
        {
            await w.WriteBatchAsync(h.Batch<Row>(rows), default);
            await w.CompleteAsync(default);
        }

        var before = await StableUpdatesAsync("tup_upd");
        rows[7] = R("k8", 800);
        rows[9] = R("k10", 1000);
        await using (var w = await h.OpenAsync<Row>(Run<Row>("tup-upd", o => o.Table = "tup_upd")))
        {
            var r = await w.WriteBatchAsync(h.Batch<Row>(rows), default);
            Assert.Equal((0L, 2L, 48L), (r.Created, r.Updated, r.Unchanged));
            await w.CompleteAsync(default);
        }

        Assert.Equal(before + 2, await StableUpdatesAsync("tup_upd", before + 2));
    }

    [Fact]
    public async Task A_table_without_the_hash_column_is_merged_by_comparing_values()
    {
        await db.ExecuteAsync("CREATE TABLE plain_rows (id text PRIMARY KEY, value int NOT NULL, note text, at timestamptz)");
        await db.ExecuteAsync("INSERT INTO plain_rows VALUES ('a', 1, NULL, NULL), ('b', 2, 'x', NULL)");
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("plain", o => { o.Table = "plain_rows"; o.CreateTable = false; }));
        var r = await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2, "y"), R("c", 3), R("c", 4)]), default);
        await w.CompleteAsync(default);
        Assert.Equal((1L, 1L, 1L, 1L), (r.Created, r.Updated, r.Unchanged, r.Duplicates));
        Assert.Equal("a=1,b=2y,c=4", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value || coalesce(note, ''), ',' ORDER BY id) FROM plain_rows"));
    }

    [Fact]
    public async Task Keys_written_by_someone_else_since_the_index_was_read_are_merged_not_duplicated()
    {
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<Row>(Run<Row>("stale", o => o.Table = "stale_index")))
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default);
            await w.CompleteAsync(default);
        }

        await using (var w = await h.OpenAsync<Row>(Run<Row>("stale", o => o.Table = "stale_index")))
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default);
            await db.ExecuteAsync("INSERT INTO stale_index (id, value) VALUES ('b', 7), ('c', 3)");
            var r = await w.WriteBatchAsync(h.Batch<Row>([R("b", 2), R("c", 3), R("d", 4)]), default);
            await w.CompleteAsync(default);

            // b existed with another value (updated); c had no hash yet (updated to store it); d is new.
            Assert.Equal((1L, 2L, 0L), (r.Created, r.Updated, r.Unchanged));
        }

        Assert.Equal("a=1,b=2,c=3,d=4", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM stale_index"));
    }

    [Fact]
    public async Task A_small_key_index_still_gives_exact_counts()
    {
        await using var h = new SinkHarness(db, o => o.KeyIndexMaxRows = 2);
        var rows = Enumerable.Range(1, 10).Select(i => R($"k{i}", i)).ToList();
        await using (var w = await h.OpenAsync<Row>(Run<Row>("small-index", o => o.Table = "small_index")))
        {
            Assert.Equal(10L, (await w.WriteBatchAsync(h.Batch<Row>(rows), default)).Created);
            var again = await w.WriteBatchAsync(h.Batch<Row>(rows.Select(r => R(r.Id, r.Id == "k5" ? 55 : r.Value)).ToList()), default);

            // A first load past what the index remembers copies forgotten keys as new; completing recounts them.
            var c = await w.CompleteAsync(default);
            var recounted = c.RecountedAsUpdated + c.RecountedAsUnchanged;
            Assert.Equal((0L, 1L, 9L), (again.Created - recounted, again.Updated + c.RecountedAsUpdated, again.Unchanged + c.RecountedAsUnchanged));
        }

        await using (var w = await h.OpenAsync<Row>(Run<Row>("small-index", o => o.Table = "small_index")))
        {
            var r = await w.WriteBatchAsync(h.Batch<Row>([.. rows.Take(3).Select(r => R(r.Id, r.Value + 1)), R("k11", 11)]), default);
            Assert.Equal((1L, 3L, 0L), (r.Created, r.Updated, r.Unchanged));
            await w.CompleteAsync(default);
        }
    }

    [Fact]
    public async Task Dry_run_merges_for_real_counts_then_rolls_back()
    {
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<Row>(Run<Row>("dry", o => o.Table = "dry_rows")))
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2)]), default);
            await w.CompleteAsync(default);
        }

        await using (var w = await h.OpenAsync<Row>(Run<Row>("dry", o => o.Table = "dry_rows", dryRun: true)))
        {
            var r1 = await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 3), R("c", 4)], state: new SourceState { Cursor = "dry" }), default);
            var r2 = await w.WriteBatchAsync(h.Batch<Row>([R("c", 5)]), default);
            await w.CompleteAsync(default);
            Assert.Equal((1L, 1L, 1L), (r1.Created, r1.Updated, r1.Unchanged));
            Assert.Equal((0L, 1L, 0L), (r2.Created, r2.Updated, r2.Unchanged));
        }

        Assert.Equal("a=1,b=2", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM dry_rows"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM ingestion.source_state WHERE source = 'dry'"));
    }

    [Fact]
    public async Task Dry_run_on_a_missing_table_creates_nothing()
    {
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<Row>(Run<Row>("dry-new", o => o.Table = "dry_new", dryRun: true)))
        {
            Assert.Equal(2L, (await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2)]), default)).Created);
            await w.CompleteAsync(default);
        }

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'dry_new'"));
    }

    [Fact]
    public async Task Checkpoint_state_and_rejects_commit_with_their_batch()
    {
        await using var h = new SinkHarness(db);
        var run = Run<Row>("state", o => o.Table = "state_rows");
        await using (var w = await h.OpenAsync<Row>(run))
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)], budget: 5, state: new SourceState { Cursor = "c1", ETag = "e1", Values = new Dictionary<string, string> { ["k"] = "v" } }, rejected: [new RejectedRecord("line 3", "x", "bad\0value", "raw\0")]), default);
            await w.CompleteAsync(default);
        }

        Assert.Equal("c1|e1|v", await db.ScalarAsync<string>("SELECT cursor || '|' || etag || '|' || (\"values\"->>'k') FROM ingestion.source_state WHERE source = 'state'"));
        Assert.Equal("line 3|bad\\0value|raw\\0", await db.ScalarAsync<string>($"SELECT position || '|' || reason || '|' || raw_value FROM ingestion.rejected_records WHERE job_id = '{run.RunId}'"));
        var state = await new Ingestion.Postgres.Stores.PostgresSourceStateStore(h.Database).GetAsync("state", default);
        Assert.Equal(("c1", "e1", "v"), (state.Cursor, state.ETag, state.Values["k"]));
    }

    [Fact]
    public async Task Whole_run_transaction_commits_at_completion_only()
    {
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<Row>(Run<Row>("whole", o => { o.Table = "whole_rows"; o.Transaction = TransactionScope.WholeRun; })))
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default);
            await w.WriteBatchAsync(h.Batch<Row>([R("b", 1)], state: new SourceState { Cursor = "x" }), default);

            // Not completed: disposing rolls everything back.
        }

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'whole_rows'"));
        await using (var w = await h.OpenAsync<Row>(Run<Row>("whole", o => { o.Table = "whole_rows"; o.Transaction = TransactionScope.WholeRun; })))
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default);
            await w.WriteBatchAsync(h.Batch<Row>([R("b", 1), R("a", 2)]), default);
            await w.CompleteAsync(default);
        }

        Assert.Equal("a=2,b=1", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM whole_rows"));
    }

    [Fact]
    public async Task Replace_swaps_content_atomically_and_counts_deletions()
    {
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<Row>(Run<Row>("replace", o => { o.Table = "replace_rows"; o.WriteMode = WriteMode.Replace; })))
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2), R("c", 3)]), default);
            Assert.Equal(0L, (await w.CompleteAsync(default)).Deleted);
        }

        await using (var w = await h.OpenAsync<Row>(Run<Row>("replace", o => { o.Table = "replace_rows"; o.WriteMode = WriteMode.Replace; })))
        {
            var r1 = await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 20)]), default);

            // Readers still see the old content while the run is open.
            Assert.Equal("a=1,b=2,c=3", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM replace_rows"));
            var r2 = await w.WriteBatchAsync(h.Batch<Row>([R("d", 4)]), default);
            var done = await w.CompleteAsync(default);
            Assert.Equal((0L, 1L, 1L), (r1.Created, r1.Updated, r1.Unchanged));
            Assert.Equal(1L, r2.Created);
            Assert.Equal(1L, done.Deleted);
        }

        Assert.Equal("a=1,b=20,d=4", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM replace_rows"));
    }

    [Fact]
    public async Task Append_inserts_and_a_key_violation_names_the_key()
    {
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<Row>(Run<Row>("append", o => { o.Table = "append_rows"; o.WriteMode = WriteMode.Append; })))
        {
            Assert.Equal(2L, (await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2)]), default)).Created);
            var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Row>([R("c", 3), R("a", 5)]), default));
            Assert.Contains("(key id='a')", e.Message);
            Assert.Contains("append", e.Message);
            Assert.Equal("record 4", e.Position);
        }

        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM append_rows"));
    }

    private async Task<long> StableUpdatesAsync(string table, long expect = 0)
    {
        // Statistics reach the shared counters when the writing backend reports them (after a second, or up to ten
        // when its connection sits idle in the pool, later on a loaded machine); a transaction's counts arrive
        // together, so the first value at or above the expected one is final.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var value = await db.ScalarAsync<long>($"SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = '{table}'");
            if (value >= expect || DateTime.UtcNow > deadline)
            {
                return value;
            }

            await Task.Delay(100);
        }
    }
}
