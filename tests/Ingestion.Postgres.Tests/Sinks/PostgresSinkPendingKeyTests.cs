using Ingestion.Postgres.Sinks;
using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// Tables left without their key (a first load stopped before building it) meet other runs: the key is built before
/// anything can store a key twice, outside any run-long transaction, and a table keyed on other columns is refused.
/// </summary>
public class PostgresSinkPendingKeyTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly RecordSchema Coded = RecordSchema.Create(
    [
        new ColumnSchema("code", ColumnType.Text),
        new ColumnSchema("year", ColumnType.Int32),
        new ColumnSchema("amount", ColumnType.Decimal),
    ], ["code"]);

    private static DynamicRecord D(params object?[] values) => new(Coded, values);

    // A table the sink made with PRIMARY KEY (code); the source's key is then changed to (code, year).
    // It is refused before any row is written ("has no primary key or unique index on the key (code, year)").
    [Theory]
    [InlineData(WriteMode.Merge)]
    [InlineData(WriteMode.Replace)]
    public async Task A_sink_table_keyed_on_other_columns_is_refused_before_any_row_not_given_a_second_primary_key(WriteMode mode)
    {
        var table = $"pending_rekeyed_{mode}".ToLowerInvariant();
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>(table, o => { o.Table = table; o.KeyColumns.Add("code"); })))
        {
            await w.WriteBatchAsync(h.Batch<DynamicRecord>([D("a", 2024, 1m)]), default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(1L, await db.ScalarAsync<long>($"SELECT count(*) FROM pg_index WHERE indrelid = 'public.{table}'::regclass AND indisprimary"));

        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>(table, o => { o.Table = table; o.WriteMode = mode; o.KeyColumns.Add("code"); o.KeyColumns.Add("year"); })))
        {
            var e = await Record.ExceptionAsync(async () =>
            {
                await w.WriteBatchAsync(h.Batch<DynamicRecord>([D("b", 2024, 2m)]), default);
                await w.CompleteAsync(default);
            });

            Assert.NotNull(e);
            var rows = await db.ScalarAsync<long>($"SELECT count(*) FROM {table}");
            Assert.True(e is IngestionException, $"{e.GetType().FullName}: {e.Message} (rows now in the table: {rows})");
            Assert.Contains("has no primary key or unique index on the key (code, year)", e.Message);
        }

        Assert.Equal(1L, await db.ScalarAsync<long>($"SELECT count(*) FROM {table}"));
    }

    // A Merge first load stopped before its key was built; the source is then run in Append mode.
    // The key is built before the first append, so appending a key again fails ("Use WriteMode Merge").
    [Fact]
    public async Task Append_into_a_table_left_without_its_key_builds_the_key_first_and_never_stores_a_key_twice()
    {
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<Row>(Run<Row>("pending-append-pending", o => o.Table = "pending_append_pending")))
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2)]), default);

            // Stopped here without CompleteAsync.
        }

        await using (var w = await h.OpenAsync<Row>(Run<Row>("pending-append-pending", o => { o.Table = "pending_append_pending"; o.WriteMode = WriteMode.Append; })))
        {
            var e = await Record.ExceptionAsync(async () =>
            {
                await w.WriteBatchAsync(h.Batch<Row>([R("a", 10)]), default);
                await w.CompleteAsync(default);
            });

            Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM pending_append_pending WHERE id = 'a'"));
            Assert.NotNull(e);
        }
    }

    private async Task LeavePendingAsync(string table)
    {
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>(table, o => o.Table = table));
        await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2)]), default);

        // Stopped without CompleteAsync: the table stays without its key.
    }

    // Two whole-run writers (two sources sharing one table, disjoint keys) on a table left without its key.
    // The key is built at mapping time on a side connection, so neither run upgrades its lock at the end (a deadlock).
    [Fact]
    public async Task Two_whole_run_writers_of_a_table_left_without_its_key_both_commit()
    {
        await LeavePendingAsync("pending_deadlock");
        await using var h1 = new SinkHarness(db);
        await using var h2 = new SinkHarness(db);
        await using var w1 = await h1.OpenAsync<Row>(Run<Row>("pending-dl-1", o => { o.Table = "pending_deadlock"; o.Transaction = TransactionScope.WholeRun; }));
        await using var w2 = await h2.OpenAsync<Row>(Run<Row>("pending-dl-2", o => { o.Table = "pending_deadlock"; o.Transaction = TransactionScope.WholeRun; }));
        await w1.WriteBatchAsync(h1.Batch<Row>([R("x1", 1)]), default);
        await w2.WriteBatchAsync(h2.Batch<Row>([R("y1", 1)]), default);

        var c1 = Task.Run(async () => await w1.CompleteAsync(default));
        await Task.Delay(300);
        var c2 = Task.Run(async () => await w2.CompleteAsync(default));
        var e1 = await Record.ExceptionAsync(() => c1);
        var e2 = await Record.ExceptionAsync(() => c2);

        Assert.True(e1 is null && e2 is null, $"w1: {e1?.GetType().Name}: {e1?.Message} | w2: {e2?.GetType().Name}: {e2?.Message}");
    }

    // Replace builds the missing key on a side connection, committed at once: the run never holds ACCESS EXCLUSIVE.
    [Fact]
    public async Task A_replace_run_on_a_table_left_without_its_key_does_not_block_readers()
    {
        await LeavePendingAsync("pending_replace_lock");
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("pending-replace-lock", o => { o.Table = "pending_replace_lock"; o.WriteMode = WriteMode.Replace; }));
        await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default);

        await using var conn = db.DataSource.CreateConnection();
        await conn.OpenAsync();
        await using (var set = new Npgsql.NpgsqlCommand("SET lock_timeout = '1s'", conn))
        {
            await set.ExecuteNonQueryAsync();
        }

        await using var read = new Npgsql.NpgsqlCommand("SELECT count(*) FROM pending_replace_lock", conn);
        var readError = await Record.ExceptionAsync(() => read.ExecuteScalarAsync());
        await w.CompleteAsync(default);
        Assert.True(readError is null, readError?.Message);
    }
}
