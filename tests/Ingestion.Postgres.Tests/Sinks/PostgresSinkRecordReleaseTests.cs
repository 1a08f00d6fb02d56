using Ingestion.Postgres.Sinks;
using Ingestion.Sinks;
using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// A first load's batch that the runner gives over (<see cref="IPreparingSinkWriter{TRecord}.PrepareReleasableBatch"/>)
/// has its rows encoded whole and its records released, by its copy ahead before the copy is sent or else on the reading
/// thread: every later use of its rows (the copy rolled back and written again, a value the table refuses) is served by
/// those bytes.
/// </summary>
public class PostgresSinkRecordReleaseTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    /// <summary>Opens a writer of <paramref name="source"/> into <paramref name="table"/> (made by the sink, its key built after the load) and writes k0001-k0100.</summary>
    private static async Task<PostgresSinkWriter<Row>> OpenWithFirstBatchAsync(SinkHarness h, string source, string table)
    {
        var w = Assert.IsType<PostgresSinkWriter<Row>>(await h.OpenAsync<Row>(Run<Row>(source, o => o.Table = table)));
        var first = h.Batch(Rows(1, 100).ToArray());
        w.PrepareReleasableBatch((Row[])first.Records, first.FirstRecordNumber);
        Assert.Equal(100, (await w.WriteBatchAsync(first, default)).Created);
        return w;
    }

    /// <summary>Waits (up to 5 s) until the records after the first are all released; whether they were.</summary>
    private static async Task<bool> ReleasedAsync(Row[] records)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (records.Skip(1).Any(r => r is not null) && DateTime.UtcNow < until)
        {
            await Task.Delay(10);
        }

        return records.Skip(1).All(r => r is null);
    }

    [Fact]
    public async Task A_first_load_batch_copied_ahead_releases_its_records_once_encoded_and_its_rows_land_as_read()
    {
        await using var h = new SinkHarness(db);
        await using var w = await OpenWithFirstBatchAsync(h, "release-first-load", "release_first_load");

        var second = h.Batch(Rows(101, 200).ToArray());
        var records = (Row[])second.Records;
        var prepared = w.PrepareReleasableBatch(records, second.FirstRecordNumber);
        Assert.True(await ReleasedAsync(records), "the copied-ahead batch kept its records");
        Assert.NotNull(records[0]); // kept: the write finds the batch's mapping by it

        var written = await w.WriteBatchAsync(Prepared(second, prepared), default);
        await w.CompleteAsync(default);

        Assert.Equal((100L, 0L, 0L), (written.Created, written.Updated, written.Unchanged));
        Assert.Equal(200, await db.ScalarAsync<long>("SELECT count(*) FROM release_first_load"));
        Assert.Equal(Enumerable.Range(1, 200).Sum(), await db.ScalarAsync<long>("SELECT sum(value) FROM release_first_load"));
        Assert.Equal("note 173", await db.ScalarAsync<string>("SELECT note FROM release_first_load WHERE id = 'k0173'"));
        Assert.True(await db.ScalarAsync<bool>(HasPrimaryKeySql("release_first_load")));
    }

    [Fact]
    public async Task A_first_load_batch_not_copied_ahead_is_encoded_on_the_reading_thread_and_written_from_its_bytes()
    {
        // No copy ahead (as when two are already ahead of the writes): the records are released all the same.
        await using var h = new SinkHarness(db, o => o.CopyAheadOnSecondConnection = false);
        await using var w = await OpenWithFirstBatchAsync(h, "release-no-copy-ahead", "release_no_copy_ahead");

        var second = h.Batch(Rows(101, 200).ToArray());
        var records = (Row[])second.Records;
        var prepared = w.PrepareReleasableBatch(records, second.FirstRecordNumber);
        Assert.All(records.Skip(1), r => Assert.Null(r));
        Assert.False(w.HoldsUnclaimedCopyAhead);

        var written = await w.WriteBatchAsync(Prepared(second, prepared), default);
        await w.CompleteAsync(default);

        Assert.Equal(100L, written.Created);
        Assert.Equal(Enumerable.Range(1, 200).Sum(), await db.ScalarAsync<long>("SELECT sum(value) FROM release_no_copy_ahead"));
        Assert.Equal("note 199", await db.ScalarAsync<string>("SELECT note FROM release_no_copy_ahead WHERE id = 'k0199'"));
        Assert.True(await db.ScalarAsync<bool>(HasPrimaryKeySql("release_no_copy_ahead")));
    }

    [Fact]
    public async Task Records_the_runner_does_not_give_over_are_never_released()
    {
        // A hook beside the sink reads the batch's records after its write: the runner then calls PrepareBatch.
        await using var h = new SinkHarness(db);
        await using var w = await OpenWithFirstBatchAsync(h, "release-not-owned", "release_not_owned");

        var second = h.Batch(Rows(101, 200).ToArray());
        var prepared = w.PrepareBatch(second.Records, second.FirstRecordNumber);
        Assert.Equal(100, (await w.WriteBatchAsync(Prepared(second, prepared), default)).Created);

        Assert.All(second.Records, r => Assert.NotNull(r));
        Assert.Equal(200, await db.ScalarAsync<long>("SELECT count(*) FROM release_not_owned"));
    }

    [Fact]
    public async Task Released_records_whose_copy_ahead_is_rolled_back_are_written_from_their_bytes()
    {
        await using var h = new SinkHarness(db);
        await using var w = await OpenWithFirstBatchAsync(h, "release-rolled-back", "release_rolled_back");

        // The second batch changes rows of the first, so its write builds the table's key, which first rolls back the
        // copy ahead of the third: all new, released once encoded.
        var second = h.Batch(Rows(1, 10, sign: -1).Concat(Rows(101, 110)).ToArray());
        var secondPrepared = w.PrepareReleasableBatch((Row[])second.Records, second.FirstRecordNumber);
        var third = h.Batch(Rows(201, 300).ToArray());
        var thirdRecords = (Row[])third.Records;
        var thirdPrepared = w.PrepareReleasableBatch(thirdRecords, third.FirstRecordNumber);
        Assert.True(await ReleasedAsync(thirdRecords), "the third batch was not copied ahead and released");

        var a = await w.WriteBatchAsync(Prepared(second, secondPrepared), default);
        Assert.False(w.HoldsUnclaimedCopyAhead, "the key build left the third batch's copy ahead");
        Assert.True(await db.ScalarAsync<bool>(HasPrimaryKeySql("release_rolled_back")));
        var b = await w.WriteBatchAsync(Prepared(third, thirdPrepared), default);
        await w.CompleteAsync(default);

        Assert.Equal((10L, 10L), (a.Created, a.Updated));
        Assert.Equal((100L, 0L, 0L), (b.Created, b.Updated, b.Unchanged));
        Assert.Equal(210, await db.ScalarAsync<long>("SELECT count(*) FROM release_rolled_back"));
        Assert.Equal(Enumerable.Range(201, 100).Sum(), await db.ScalarAsync<long>("SELECT sum(value) FROM release_rolled_back WHERE id >= 'k0201'"));
        Assert.Equal("note 250", await db.ScalarAsync<string>("SELECT note FROM release_rolled_back WHERE id = 'k0250'"));
        Assert.Equal(-5, await db.ScalarAsync<int>("SELECT value FROM release_rolled_back WHERE id = 'k0005'"));
    }

    [Fact]
    public async Task A_value_the_table_refuses_in_a_released_batch_fails_it_by_position_and_commits_nothing_of_it()
    {
        await using var h = new SinkHarness(db);
        await using var w = await OpenWithFirstBatchAsync(h, "release-refused", "release_refused");

        // A rule the client cannot know: the copy ahead fails on k0150 after the records were released, and the write
        // copies the batch again from its bytes to find the record.
        await db.ExecuteAsync("ALTER TABLE release_refused ADD CONSTRAINT value_below_150 CHECK (value < 150)");
        var second = h.Batch(Rows(101, 200).ToArray());
        var records = (Row[])second.Records;
        var prepared = w.PrepareReleasableBatch(records, second.FirstRecordNumber);
        Assert.True(await ReleasedAsync(records), "the copied-ahead batch kept its records");

        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(Prepared(second, prepared), default));

        Assert.Equal("record 150", e.Position);
        Assert.Contains("release-refused", e.Message, StringComparison.Ordinal);
        Assert.Contains("value_below_150", e.Message, StringComparison.Ordinal);
        Assert.Contains("released once its row was encoded", e.Message, StringComparison.Ordinal);
        Assert.Equal(100, await db.ScalarAsync<long>("SELECT count(*) FROM release_refused"));
    }
}
