using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// Once batches send few of their rows (a re-run of unchanged rows), two threads check and hash a batch: rejected
/// records keep their order and positions, counts stay exact, and a record of another schema is named as before.
/// </summary>
public class PostgresSinkParallelPrepareTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private const int Size = 5000;

    private static readonly RecordSchema Reading = RecordSchema.Create(
    [
        new ColumnSchema("id", ColumnType.Text),
        new ColumnSchema("reading", ColumnType.Float64),
    ], ["id"]);

    private static readonly RecordSchema OtherReading = RecordSchema.Create(
    [
        new ColumnSchema("id", ColumnType.Text),
        new ColumnSchema("reading", ColumnType.Float64),
        new ColumnSchema("unit", ColumnType.Text),
    ], ["id"]);

    private static List<Row> Rows(Func<int, Row?>? change = null) =>
        [.. Enumerable.Range(1, Size).Select(i => change?.Invoke(i) ?? R($"k{i:D5}", i, $"note {i}"))];

    [Fact]
    public async Task Rejected_records_of_both_halves_keep_their_order_and_the_counts_stay_exact()
    {
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("parallel-prepare", o => o.Table = "parallel_prepare"));
        await w.WriteBatchAsync(h.Batch(Rows()), default);
        var unchanged = await w.WriteBatchAsync(h.Batch(Rows()), default);
        Assert.Equal(Size, unchanged.Unchanged);

        // Bad values near both ends of each half, a changed row in each half, a key repeated across the halves.
        var third = Rows(i => i switch
        {
            3 or 2600 => R($"k{i:D5}", i, "bad\0note"),
            2400 or 4999 => R($"k{i:D5}", -i, $"note {i}"),
            4000 => R("k00010", 10, "note 10"),
            _ => null,
        });
        var written = await w.WriteBatchAsync(h.Batch(third, budget: 10), default);
        await w.CompleteAsync(default);

        Assert.Equal(["record 10003", "record 12600"], written.Rejected.Select(r => r.Position));
        Assert.All(written.Rejected, r => Assert.Equal("note", r.Field));
        Assert.Equal((0L, 2L, 1L), (written.Created, written.Updated, written.Duplicates));
        Assert.Equal(Size - 2 - 2 - 1, written.Unchanged);
        Assert.Equal(-2400, await db.ScalarAsync<int>("SELECT value FROM parallel_prepare WHERE id = 'k02400'"));
        Assert.Equal("note 3", await db.ScalarAsync<string>("SELECT note FROM parallel_prepare WHERE id = 'k00003'"));
    }

    [Fact]
    public async Task A_record_of_another_schema_in_the_second_half_is_named_by_its_position()
    {
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("parallel-schema", o => { o.Table = "parallel_schema"; o.KeyColumns.Add("id"); }));
        List<DynamicRecord> Batch() => [.. Enumerable.Range(1, Size).Select(i => new DynamicRecord(Reading, [$"k{i:D5}", (double)i]))];
        await w.WriteBatchAsync(h.Batch(Batch()), default);
        await w.WriteBatchAsync(h.Batch(Batch()), default);

        var mixed = Batch();
        mixed[4321] = new DynamicRecord(OtherReading, ["k04322", 4322.0, "kPa"]);
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch(mixed), default));

        Assert.Equal("record 14322", e.Position);
        Assert.Contains("different schema than the first record of its batch", e.Message, StringComparison.Ordinal);
    }
}
