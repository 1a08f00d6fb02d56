using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// Materialized views listed in <see cref="SourceOptions.RefreshMaterializedViews"/> are refreshed after a
/// run that changed rows: CONCURRENTLY when the view has a unique index (the view keeps its storage, only
/// changed rows are rewritten), plainly otherwise (PostgreSQL swaps in new storage: a new relfilenode).
/// </summary>
public class PostgresSinkMaterializedViewTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private async Task SetUpAsync(string table)
    {
        await db.ExecuteAsync($"""
            CREATE TABLE {table} (id text PRIMARY KEY, value int NOT NULL, note text, at timestamptz, _ingestion_hash bigint);
            CREATE MATERIALIZED VIEW {table}_doubled AS SELECT id, value * 2 AS doubled FROM {table};
            CREATE UNIQUE INDEX ON {table}_doubled (id);
            CREATE MATERIALIZED VIEW {table}_total AS SELECT count(*) AS n, coalesce(sum(value), 0) AS total FROM {table};
            """);
    }

    private async Task<(long Doubled, long Total)> FilesAsync(string table) =>
        (await db.ScalarAsync<long>($"SELECT relfilenode::bigint FROM pg_class WHERE relname = '{table}_doubled'"),
         await db.ScalarAsync<long>($"SELECT relfilenode::bigint FROM pg_class WHERE relname = '{table}_total'"));

    private async Task RunAsync(SinkHarness h, string table, IReadOnlyList<Row> rows, bool dryRun = false, string[]? views = null)
    {
        await using var w = await h.OpenAsync<Row>(Run<Row>(table, o =>
        {
            o.Table = table;
            o.CreateTable = false;
            foreach (var v in views ?? [$"{table}_doubled", $"public.{table}_total"])
            {
                o.RefreshMaterializedViews.Add(v);
            }
        }, dryRun));
        await w.WriteBatchAsync(h.Batch(rows), default);
        await w.CompleteAsync(default);
    }

    [Fact]
    public async Task A_run_that_changed_rows_refreshes_the_views_concurrently_when_one_has_a_unique_index()
    {
        await SetUpAsync("mv_rows");
        await using var h = new SinkHarness(db);
        var before = await FilesAsync("mv_rows");

        await RunAsync(h, "mv_rows", [R("a", 1), R("b", 2)]);

        Assert.Equal("a=2,b=4", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || doubled, ',' ORDER BY id) FROM mv_rows_doubled"));
        Assert.Equal("2/3", await db.ScalarAsync<string>("SELECT n || '/' || total FROM mv_rows_total"));
        var after = await FilesAsync("mv_rows");
        Assert.Equal(before.Doubled, after.Doubled);
        Assert.NotEqual(before.Total, after.Total);

        // One changed row: refreshed again.
        await RunAsync(h, "mv_rows", [R("a", 1), R("b", 20)]);
        Assert.Equal("a=2,b=40", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || doubled, ',' ORDER BY id) FROM mv_rows_doubled"));
        Assert.Equal("2/21", await db.ScalarAsync<string>("SELECT n || '/' || total FROM mv_rows_total"));
    }

    [Fact]
    public async Task A_run_with_only_unchanged_rows_or_a_dry_run_does_not_refresh()
    {
        await SetUpAsync("mv_same");
        await using var h = new SinkHarness(db);
        await RunAsync(h, "mv_same", [R("a", 1), R("b", 2)]);

        // A row written behind the sink's back shows whether a later run refreshed the views.
        await db.ExecuteAsync("INSERT INTO mv_same (id, value) VALUES ('z', 100)");
        var files = await FilesAsync("mv_same");
        await RunAsync(h, "mv_same", [R("a", 1), R("b", 2)]);
        await RunAsync(h, "mv_same", [R("c", 3)], dryRun: true);

        Assert.Equal(files, await FilesAsync("mv_same"));
        Assert.Equal("2/3", await db.ScalarAsync<string>("SELECT n || '/' || total FROM mv_same_total"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM mv_same_doubled WHERE id IN ('z', 'c')"));
    }

    [Theory]
    [InlineData("mv_other", "is a table")]
    [InlineData("mv_other_view", "is a plain view")]
    [InlineData("no_such_view", "does not exist")]
    [InlineData("a\";DROP TABLE t;--", "is hostile")]
    [InlineData("public.mv_other; DROP TABLE t", "is hostile and qualified")]
    public async Task A_name_that_is_not_a_materialized_view_is_a_clear_error_after_the_rows_are_committed(string view, string why)
    {
        await db.ExecuteAsync("""
            CREATE TABLE IF NOT EXISTS mv_other (id text PRIMARY KEY, value int NOT NULL, note text, at timestamptz, _ingestion_hash bigint);
            CREATE OR REPLACE VIEW mv_other_view AS SELECT id FROM mv_other;
            CREATE TABLE IF NOT EXISTS t (x int);
            TRUNCATE mv_other;
            """);
        await using var h = new SinkHarness(db);
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await RunAsync(h, "mv_other", [R("a", 1)], views: [view]));

        Assert.Contains($"'{view}' (Ingestion:Sources:mv_other:RefreshMaterializedViews) is not a materialized view; the rows are committed", e.Message);
        Assert.Equal("mv_other", e.SourceName);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM mv_other"));
        Assert.True(await db.ScalarAsync<bool>("SELECT to_regclass('public.t') IS NOT NULL"), why);
    }
}
