using Ingestion.Postgres.Sinks;
using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// <see cref="PostgresSinkOptions.BuildKeyIndexAfterFirstLoad"/>: a table the sink creates for a Merge source gets its
/// primary key when the first run ends, or as soon as a batch needs the server to look keys up; counts stay exact and no
/// key is ever stored twice; a load that stops early leaves the key to the next run; duplicates added by another writer
/// make the build fail naming the key.
/// </summary>
public class PostgresSinkFirstLoadTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task A_first_merge_load_fills_the_table_first_and_builds_its_primary_key_when_the_run_ends()
    {
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("first-load-end", o => o.Table = "first_load_end"));

        var first = await w.WriteBatchAsync(h.Batch<Row>([R("c", 3), R("a", 1), R("b", 2)]), default);
        var second = await w.WriteBatchAsync(h.Batch<Row>([R("d", 4), R("e", 5)]), default);

        Assert.Equal((3L, 0L), (first.Created, first.Updated));
        Assert.Equal((2L, 0L), (second.Created, second.Updated));
        Assert.False(await HasPrimaryKeyAsync("first_load_end"));
        Assert.Equal(5L, await db.ScalarAsync<long>("SELECT count(*) FROM first_load_end"));

        await w.CompleteAsync(default);

        Assert.Equal("id", await PrimaryKeyAsync("first_load_end"));

        // Its leaf pages leave the created table's share free (CreatedTableFillFactor), like the table's own pages.
        Assert.Equal("fillfactor=70", await db.ScalarAsync<string>("SELECT array_to_string(c.reloptions, ',') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'public.first_load_end'::regclass AND i.indisprimary"));
    }

    [Fact]
    public async Task A_key_sent_again_by_a_later_batch_gets_the_key_index_built_first_and_is_merged_not_duplicated()
    {
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<Row>(Run<Row>("first-load-again", o => o.Table = "first_load_again")))
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2), R("c", 3)]), default);
            Assert.False(await HasPrimaryKeyAsync("first_load_again"));

            var again = await w.WriteBatchAsync(h.Batch<Row>([R("b", 20), R("c", 3), R("d", 4)]), default);

            Assert.Equal((1L, 1L, 1L), (again.Created, again.Updated, again.Unchanged));
            Assert.Equal("id", await PrimaryKeyAsync("first_load_again"));
            await w.CompleteAsync(default);
        }

        Assert.Equal("a=1,b=20,c=3,d=4", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM first_load_again"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_first_load_that_stops_early_keeps_its_rows_and_the_next_run_builds_the_key(bool deferAgain)
    {
        var table = $"first_load_stopped_{deferAgain}".ToLowerInvariant();
        await using (var h = new SinkHarness(db))
        {
            await using var w = await h.OpenAsync<Row>(Run<Row>("first-load-stopped", o => o.Table = table));
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2)]), default);

            // The run ends here, without CompleteAsync (a crash, a source failure): the committed batch stays.
        }

        Assert.False(await HasPrimaryKeyAsync(table));
        Assert.Equal(2L, await db.ScalarAsync<long>($"SELECT count(*) FROM {table}"));

        await using (var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = deferAgain))
        {
            await using var w = await h.OpenAsync<Row>(Run<Row>("first-load-stopped", o => o.Table = table));
            var r = await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 22), R("c", 3)]), default);

            Assert.Equal((1L, 1L, 1L), (r.Created, r.Updated, r.Unchanged));
            Assert.Equal("id", await PrimaryKeyAsync(table));
            await w.CompleteAsync(default);
        }

        Assert.Equal("a=1,b=22,c=3", await db.ScalarAsync<string>($"SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM {table}"));
    }

    [Fact]
    public async Task Rows_another_writer_added_under_a_key_of_the_load_make_the_build_fail_naming_the_key_and_keep_the_rows()
    {
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("first-load-clash", o => o.Table = "first_load_clash"));
        await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2)]), default);
        await db.ExecuteAsync("INSERT INTO first_load_clash (id, value) VALUES ('b', 99)");

        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.CompleteAsync(default));

        Assert.Equal("first-load-clash", e.SourceName);
        Assert.Equal("id", e.Field);
        Assert.Contains("table public.first_load_clash holds 1 key value(s) of (id) stored more than once", e.Message);
        Assert.Contains("(id)=(b)", e.Message);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM first_load_clash"));
        Assert.False(await HasPrimaryKeyAsync("first_load_clash"));
    }

    [Theory]
    [InlineData(WriteMode.Merge, false)]
    [InlineData(WriteMode.Replace, true)]
    [InlineData(WriteMode.Append, true)]
    public async Task With_the_option_off_or_in_another_mode_a_created_table_has_its_primary_key_before_any_row(WriteMode mode, bool option)
    {
        var table = $"first_load_key_{mode}_{option}".ToLowerInvariant();
        await using var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = option);
        await using var w = await h.OpenAsync<Row>(Run<Row>(table, o => { o.Table = table; o.WriteMode = mode; }));
        await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default);
        if (mode != WriteMode.Replace)
        {
            // Replace writes the whole run in one transaction: the table is not visible before it ends.
            Assert.Equal("id", await PrimaryKeyAsync(table));
        }

        await w.CompleteAsync(default);
        Assert.Equal("id", await PrimaryKeyAsync(table));
    }

    private async Task<bool> HasPrimaryKeyAsync(string table) =>
        await db.ScalarAsync<long>($"SELECT count(*) FROM pg_index WHERE indrelid = 'public.{table}'::regclass AND indisprimary") > 0;

    private Task<string> PrimaryKeyAsync(string table) => db.ScalarAsync<string>(
        $"SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE i.indrelid = 'public.{table}'::regclass AND i.indisprimary");
}
