using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

public class PostgresSinkSchemaTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly RecordSchema V1 = RecordSchema.Create(
    [
        new ColumnSchema("code", ColumnType.Text),
        new ColumnSchema("year", ColumnType.Int32),
        new ColumnSchema("amount", ColumnType.Decimal),
        new ColumnSchema("seen_at", ColumnType.TimestampTz),
    ], ["code", "year"]);

    private static readonly RecordSchema V2 = RecordSchema.Create(
    [
        new ColumnSchema("code", ColumnType.Text),
        new ColumnSchema("year", ColumnType.Int32),
        new ColumnSchema("amount", ColumnType.Decimal),
        new ColumnSchema("seen_at", ColumnType.TimestampTz),
        new ColumnSchema("label", ColumnType.Text),
    ], ["code", "year"]);

    private static DynamicRecord D(RecordSchema schema, params object?[] values) => new(schema, values);

    [Fact]
    public async Task Dynamic_records_merge_by_configured_key_and_evolve_the_table()
    {
        await using var h = new SinkHarness(db);
        var t = new DateTimeOffset(2024, 5, 1, 12, 0, 0, TimeSpan.FromHours(-4));
        void Options(SourceOptions o)
        {
            o.Table = "dyn_rows";
            o.KeyColumns.Add("code");
            o.KeyColumns.Add("year");
            o.SchemaEvolution = SchemaEvolution.Evolve;
        }

        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("dyn", Options)))
        {
            var r = await w.WriteBatchAsync(h.Batch<DynamicRecord>([D(V1, "a", 2024, 1.5m, t), D(V1, "a", 2023, 2m, t), D(V1, "b", 2024, null, null)]), default);
            Assert.Equal(3L, r.Created);

            // Ints given as long and decimals as double are converted to the column's type.
            r = await w.WriteBatchAsync(h.Batch<DynamicRecord>([D(V1, "a", 2024L, 1.5, t), D(V1, "b", 2024, 3m, null)]), default);
            Assert.Equal((0L, 1L, 1L), (r.Created, r.Updated, r.Unchanged));
            await w.CompleteAsync(default);
        }

        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("dyn", Options)))
        {
            var r = await w.WriteBatchAsync(h.Batch<DynamicRecord>([D(V2, "a", 2024, 1.5m, t, "new"), D(V2, "c", 2024, 1m, t, null)]), default);
            Assert.Equal((1L, 1L), (r.Created, r.Updated));
            await w.CompleteAsync(default);
        }

        Assert.Equal("a/2023/2/,a/2024/1.5/new,b/2024/3/,c/2024/1/", await db.ScalarAsync<string>("SELECT string_agg(concat_ws('/', code, year, amount, coalesce(label, '')), ',' ORDER BY code, year) FROM dyn_rows"));
        Assert.Equal(t.UtcDateTime, await db.ScalarAsync<DateTime>("SELECT seen_at FROM dyn_rows WHERE code = 'c'"));
    }

    [Fact]
    public async Task A_new_column_under_freeze_fails_naming_it_before_any_row_is_written()
    {
        await using var h = new SinkHarness(db);
        void Options(SourceOptions o)
        {
            o.Table = "frozen_rows";
            o.KeyColumns.Add("code");
            o.KeyColumns.Add("year");
        }

        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("frozen", Options)))
        {
            await w.WriteBatchAsync(h.Batch<DynamicRecord>([D(V1, "a", 2024, 1m, null)]), default);
            await w.CompleteAsync(default);
        }

        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("frozen", Options)))
        {
            var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<DynamicRecord>([D(V2, "z", 2024, 1m, null, "x")]), default));
            Assert.Equal("label", e.Field);
            Assert.Contains("'label'", e.Message);
            Assert.Contains("SchemaEvolution", e.Message);
        }

        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM frozen_rows"));
    }

    [Fact]
    public async Task An_incompatible_type_fails_before_any_row_is_written()
    {
        await db.ExecuteAsync("CREATE TABLE typed_clash (code text, year text, amount numeric, seen_at timestamptz, PRIMARY KEY (code, year))");
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("clash", o =>
        {
            o.Table = "typed_clash";
            o.KeyColumns.Add("code");
            o.KeyColumns.Add("year");
        }));
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<DynamicRecord>([D(V1, "a", 2024, 1m, null)]), default));
        Assert.Equal("year", e.Field);
        Assert.Contains("Int32", e.Message);
        Assert.Contains("text", e.Message);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM typed_clash"));
    }

    [Fact]
    public async Task A_missing_table_without_CreateTable_is_a_clear_error()
    {
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("missing", o => { o.Table = "no_such_table"; o.CreateTable = false; }));
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default));
        Assert.Contains("public.no_such_table does not exist", e.Message);
        Assert.Contains("CreateTable", e.Message);
    }

    [Fact]
    public async Task Created_tables_have_the_key_the_hash_column_and_the_fill_factor()
    {
        await using var h = new SinkHarness(db, o => o.CreatedTableFillFactor = 60);
        await using (var w = await h.OpenAsync<Row>(Run<Row>("created", o => o.Table = "created_rows")))
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default);
            await w.CompleteAsync(default);
        }

        Assert.Equal("{fillfactor=60}", await db.ScalarAsync<string>("SELECT reloptions::text FROM pg_class WHERE relname = 'created_rows'"));
        Assert.Equal("id,value,note,at,_ingestion_hash", await db.ScalarAsync<string>("SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'created_rows'::regclass AND attnum > 0"));
        Assert.Equal("id", await db.ScalarAsync<string>("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = 'created_rows'::regclass AND i.indisprimary"));
        Assert.Equal("NO", await db.ScalarAsync<string>("SELECT is_nullable FROM information_schema.columns WHERE table_name = 'created_rows' AND column_name = 'value'"));
    }
}
