using Ingestion.Postgres.Sinks;
using Ingestion.TestSupport;
using Npgsql;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// <see cref="PostgresSinkOptions.SendRowsInKeyOrder"/>: Merge and Replace batches reach the table in key order (seen in
/// the physical order of a fresh table, <c>ctid</c>), Append batches and the opted-out sink in arrival order, and every
/// error still names the record by its arrival position.
/// </summary>
public class PostgresSinkKeyOrderTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly string[] Shuffled = ["k07", "k03", "k10", "k01", "k09", "k02", "k08", "k05", "k04", "k06"];

    private static readonly RecordSchema TwoPartKey = RecordSchema.Create(
    [
        new ColumnSchema("zone", ColumnType.Text),
        new ColumnSchema("seq", ColumnType.Int32),
        new ColumnSchema("reading", ColumnType.Float64),
    ], ["zone", "seq"]);

    [Theory]
    [InlineData(WriteMode.Merge, true, true)]
    [InlineData(WriteMode.Replace, true, true)]
    [InlineData(WriteMode.Merge, false, false)]
    [InlineData(WriteMode.Append, true, false)]
    public async Task A_batch_reaches_the_table_in_key_order_unless_appended_or_opted_out(WriteMode mode, bool keyOrder, bool expectSorted)
    {
        var table = $"key_order_{mode}_{keyOrder}".ToLowerInvariant();
        await using var h = new SinkHarness(db, o => o.SendRowsInKeyOrder = keyOrder);
        await using (var w = await h.OpenAsync<Row>(Run<Row>(table, o => { o.Table = table; o.WriteMode = mode; })))
        {
            var r = await w.WriteBatchAsync(h.Batch<Row>([.. Shuffled.Select((k, i) => R(k, i))]), default);
            Assert.Equal(10L, r.Created);
            await w.CompleteAsync(default);
        }

        var expected = expectSorted ? Shuffled.Order(StringComparer.Ordinal) : Shuffled.AsEnumerable();
        Assert.Equal(string.Join(",", expected), await db.ScalarAsync<string>($"SELECT string_agg(id, ',' ORDER BY ctid) FROM {table}"));

        // The values still belong to their keys: k07 arrived first (value 0), k06 last (value 9).
        Assert.Equal("k01=3,k06=9,k07=0", await db.ScalarAsync<string>($"SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM {table} WHERE id IN ('k01', 'k06', 'k07')"));
    }

    [Fact]
    public async Task After_a_batch_that_sent_few_rows_the_rows_sent_are_still_in_key_order()
    {
        // The second batch is all unchanged, so the third is not sorted ahead of its write: the write sorts what it sends.
        await using var h = new SinkHarness(db);
        var later = Shuffled.Select(k => "m" + k[1..]).ToArray();
        await using (var w = await h.OpenAsync<Row>(Run<Row>("key-order-after-few", o => o.Table = "key_order_after_few")))
        {
            await w.WriteBatchAsync(h.Batch<Row>([.. Shuffled.Select((k, i) => R(k, i))]), default);
            Assert.Equal(10L, (await w.WriteBatchAsync(h.Batch<Row>([.. Shuffled.Select((k, i) => R(k, i))]), default)).Unchanged);
            Assert.Equal(10L, (await w.WriteBatchAsync(h.Batch<Row>([.. later.Select((k, i) => R(k, i))]), default)).Created);
            await w.CompleteAsync(default);
        }

        Assert.Equal(string.Join(",", later.Order(StringComparer.Ordinal)), await db.ScalarAsync<string>("SELECT string_agg(id, ',' ORDER BY ctid) FROM key_order_after_few WHERE id LIKE 'm%'"));
    }

    [Fact]
    public async Task Dynamic_records_with_a_two_part_key_are_sent_ordered_by_both_parts()
    {
        await using var h = new SinkHarness(db);
        var records = new[] { ("b", 2), ("a", 10), ("b", 1), ("a", 9), ("c", 1), ("a", 2) }
            .Select(k => new DynamicRecord(TwoPartKey, [k.Item1, k.Item2, 1.5])).ToList();
        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("two-part", o => { o.Table = "key_order_two_part"; o.KeyColumns.Add("zone"); o.KeyColumns.Add("seq"); })))
        {
            await w.WriteBatchAsync(h.Batch<DynamicRecord>(records), default);
            await w.CompleteAsync(default);
        }

        // seq compares as a number (2 before 9 before 10), not as text.
        Assert.Equal("a2,a9,a10,b1,b2,c1", await db.ScalarAsync<string>("SELECT string_agg(zone || seq, ',' ORDER BY ctid) FROM key_order_two_part"));
    }

    [Theory]
    [InlineData(5)] // few zones: grouped by zone (counting sort), each zone then sorted by seq
    [InlineData(400)] // about one zone per row: sorted outright
    public async Task A_large_batch_is_sent_in_full_key_order_whether_its_first_key_field_repeats_or_not(int zones)
    {
        var random = new Random(zones);
        var keys = Enumerable.Range(0, 600).Select(i => ($"z{random.Next(zones):D3}", random.Next(100_000))).Distinct().ToList();
        var table = $"key_order_large_{zones}";
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>(table, o => { o.Table = table; o.KeyColumns.Add("zone"); o.KeyColumns.Add("seq"); })))
        {
            var r = await w.WriteBatchAsync(h.Batch<DynamicRecord>([.. keys.Select(k => new DynamicRecord(TwoPartKey, [k.Item1, k.Item2, (double)k.Item2]))]), default);
            Assert.Equal(keys.Count, r.Created);
            await w.CompleteAsync(default);
        }

        var expected = keys.OrderBy(k => k.Item1, StringComparer.Ordinal).ThenBy(k => k.Item2).Select(k => $"{k.Item1}:{k.Item2}");
        Assert.Equal(string.Join(",", expected), await db.ScalarAsync<string>($"SELECT string_agg(zone || ':' || seq, ',' ORDER BY ctid) FROM {table}"));
        Assert.Equal(0L, await db.ScalarAsync<long>($"SELECT count(*) FROM {table} WHERE reading <> seq"));
    }

    [Fact]
    public async Task A_row_refused_in_a_reordered_batch_is_named_by_its_arrival_position()
    {
        await db.ExecuteAsync("CREATE TABLE key_order_checked (id text PRIMARY KEY, value int CONSTRAINT value_small CHECK (value < 100), note text, at timestamptz, _ingestion_hash bigint)");
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("key-order-checked", o => { o.Table = "key_order_checked"; o.CreateTable = false; }));

        // Sent as a, m, z: the refused row is line 2 of the COPY but record 1 of the batch.
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Row>([R("m", 500), R("z", 1), R("a", 3)]), default));

        Assert.Equal("record 1", e.Position);
        Assert.Contains("record 1 (key id='m') violates constraint value_small", e.Message);
        Assert.Equal("23514", Assert.IsType<PostgresException>(e.InnerException).SqlState);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM key_order_checked"));
    }
}
