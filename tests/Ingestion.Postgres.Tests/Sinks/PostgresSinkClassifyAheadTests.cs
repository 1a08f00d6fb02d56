using Ingestion.Sinks;
using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// The writer classifies a prepared batch against the key index ahead of its write (on the runner's reading thread),
/// remembering its rows then. A batch that rolls back drops that index, and a batch classified ahead against it is
/// classified again: a row remembered for rolled-back work is never counted stored.
/// </summary>
public class PostgresSinkClassifyAheadTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static object? ClassifiedAhead(object? prepared) =>
        prepared?.GetType().GetProperty("Classified")?.GetValue(prepared);

    [Fact]
    public async Task A_batch_classified_ahead_is_classified_again_when_the_batch_before_it_rolls_back()
    {
        // Not copied ahead: an early copy would meet the refusal first and leave the batch nothing to roll back.
        await using var h = new SinkHarness(db, o => o.CopyAheadOnSecondConnection = false);
        await using var w = await h.OpenAsync<Row>(Run<Row>("classify-ahead", o => o.Table = "classify_ahead"));
        var preparer = Assert.IsAssignableFrom<IPreparingSinkWriter<Row>>(w);

        var first = h.Batch(Rows(1, 100));
        Assert.Null(preparer.PrepareBatch(first.Records, first.FirstRecordNumber)); // no table known yet
        Assert.Equal(100, (await w.WriteBatchAsync(first, default)).Created);

        // The table refuses k0150 once (a division by zero the first time; a sequence is not rolled back): its batch is
        // written again without it.
        await db.ExecuteAsync(
            """
            CREATE SEQUENCE classify_ahead_once;
            ALTER TABLE classify_ahead ADD CONSTRAINT k0150_refused_once CHECK (id <> 'k0150' OR length(id) / (nextval('classify_ahead_once') - 1) >= 0);
            """);

        // Both batches are classified ahead, the third against an index that already holds the second's rows, k0150
        // among them with the very row hash the third batch brings.
        var second = h.Batch(Rows(101, 200), budget: 1);
        var third = h.Batch([.. Rows(150, 150), .. Rows(201, 300)]);
        var secondPrepared = preparer.PrepareBatch(second.Records, second.FirstRecordNumber);
        var thirdPrepared = preparer.PrepareBatch(third.Records, third.FirstRecordNumber);
        Assert.NotNull(ClassifiedAhead(secondPrepared));
        Assert.NotNull(ClassifiedAhead(thirdPrepared));

        var written = await w.WriteBatchAsync(Prepared(second, secondPrepared), default);
        Assert.Equal(["record 150"], written.Rejected.Select(r => r.Position));
        Assert.Equal(99, written.Created);

        // The second batch's first try rolled back, so k0150 is not stored: the third batch creates it.
        var again = await w.WriteBatchAsync(Prepared(third, thirdPrepared), default);
        await w.CompleteAsync(default);

        Assert.Equal((101L, 0L, 0L), (again.Created, again.Updated, again.Unchanged));
        Assert.Equal(300, await db.ScalarAsync<long>("SELECT count(*) FROM classify_ahead"));
        Assert.Equal(150, await db.ScalarAsync<int>("SELECT value FROM classify_ahead WHERE id = 'k0150'"));
    }

    [Fact]
    public async Task Batches_classified_ahead_count_stored_changed_and_new_rows_exactly()
    {
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("classify-ahead-counts", o => o.Table = "classify_ahead_counts"));
        var preparer = Assert.IsAssignableFrom<IPreparingSinkWriter<Row>>(w);
        var first = h.Batch(Rows(1, 100));
        preparer.PrepareBatch(first.Records, first.FirstRecordNumber);
        await w.WriteBatchAsync(first, default);

        // Each batch repeats keys of the one before, unchanged and changed; each is classified before the one before
        // it is written, so it must see that batch's rows as stored.
        var second = h.Batch([.. Rows(51, 150)]);
        var third = h.Batch([.. Rows(101, 120), .. Rows(121, 140).Select(r => R(r.Id, -r.Value, r.Note)), .. Rows(141, 200)]);
        var secondPrepared = preparer.PrepareBatch(second.Records, second.FirstRecordNumber);
        var thirdPrepared = preparer.PrepareBatch(third.Records, third.FirstRecordNumber);
        Assert.NotNull(ClassifiedAhead(thirdPrepared));

        var a = await w.WriteBatchAsync(Prepared(second, secondPrepared), default);
        var b = await w.WriteBatchAsync(Prepared(third, thirdPrepared), default);
        await w.CompleteAsync(default);

        Assert.Equal((50L, 0L, 50L), (a.Created, a.Updated, a.Unchanged));
        Assert.Equal((50L, 20L, 30L), (b.Created, b.Updated, b.Unchanged));
        Assert.Equal(-130, await db.ScalarAsync<int>("SELECT value FROM classify_ahead_counts WHERE id = 'k0130'"));
        Assert.Equal(200, await db.ScalarAsync<long>("SELECT count(*) FROM classify_ahead_counts"));
    }

    [Fact]
    public async Task A_batch_prepared_before_the_one_ahead_of_it_was_classified_is_classified_by_its_write()
    {
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("classify-ahead-order", o => o.Table = "classify_ahead_order"));
        var preparer = Assert.IsAssignableFrom<IPreparingSinkWriter<Row>>(w);
        await w.WriteBatchAsync(h.Batch(Rows(1, 100)), default);

        // The second batch is prepared without a classification (the reader had no batch before it); the third,
        // which repeats half of the second's keys, may not be classified before the second is.
        var second = h.Batch(Rows(101, 200));
        var third = h.Batch(Rows(151, 250));
        var secondPrepared = preparer.PrepareBatch(second.Records, second.FirstRecordNumber);
        var thirdPrepared = preparer.PrepareBatch(third.Records, third.FirstRecordNumber);
        Assert.Null(ClassifiedAhead(secondPrepared));
        Assert.Null(ClassifiedAhead(thirdPrepared));

        var a = await w.WriteBatchAsync(Prepared(second, secondPrepared), default);
        var b = await w.WriteBatchAsync(Prepared(third, thirdPrepared), default);
        await w.CompleteAsync(default);

        Assert.Equal((100L, 0L), (a.Created, a.Unchanged));
        Assert.Equal((50L, 0L, 50L), (b.Created, b.Updated, b.Unchanged));
        Assert.Equal(250, await db.ScalarAsync<long>("SELECT count(*) FROM classify_ahead_order"));
    }
}
