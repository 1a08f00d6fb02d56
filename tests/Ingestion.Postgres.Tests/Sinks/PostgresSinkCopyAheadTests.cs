using Ingestion.Postgres.Sinks;
using Ingestion.Sinks;
using Ingestion.TestSupport;
using Npgsql;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// A batch of new keys (or of changed rows whose keys the batch before does not have) for a keyed table is written on
/// the writer's second connection while the batch before it is written
/// (<see cref="PostgresSinkOptions.CopyAheadOnSecondConnection"/>): seen on the server as a second session holding the
/// COPY (or the UPDATE) in an open transaction, committed by the batch's own write, and rolled back whenever that write
/// does not take it.
/// </summary>
public class PostgresSinkCopyAheadTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private const string CopyHeldOpen =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction' AND query LIKE 'COPY %'";

    private const string UpdateHeldOpen =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction' AND query LIKE 'UPDATE %'";

    /// <summary>Waits (up to 5 s) until a session of this database holds a COPY (or, with <paramref name="query"/>, that) in an open transaction; whether one did.</summary>
    private async Task<bool> CopyHeldOpenAsync(TimeSpan? within = null, string query = CopyHeldOpen) =>
        await WaitForCountAsync(query, 1, within) > 0;

    /// <summary>Waits (up to 5 s) until <paramref name="countSql"/> gives at least <paramref name="count"/>; gives what it gave last.</summary>
    private async Task<long> WaitForCountAsync(string countSql, long count, TimeSpan? within = null)
    {
        var until = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(5));
        long seen;
        while ((seen = await db.ScalarAsync<long>(countSql)) < count && DateTime.UtcNow < until)
        {
            await Task.Delay(20);
        }

        return seen;
    }

    /// <summary>Opens a writer of <paramref name="source"/> into <paramref name="table"/> and writes k0001-k0100 as its first batch.</summary>
    private static async Task<PostgresSinkWriter<Row>> OpenWithFirstBatchAsync(SinkHarness h, string source, string table)
    {
        var w = Assert.IsType<PostgresSinkWriter<Row>>(await h.OpenAsync<Row>(Run<Row>(source, o => o.Table = table)));
        var first = h.Batch(Rows(1, 100));
        w.PrepareBatch(first.Records, first.FirstRecordNumber);
        await w.WriteBatchAsync(first, default);
        return w;
    }

    /// <summary>Locks <paramref name="table"/> in <paramref name="mode"/> in a transaction of its own, held until released or disposed.</summary>
    private async Task<TableHold> HoldAsync(string table, string mode)
    {
        var conn = new NpgsqlConnection(db.ConnectionString);
        await conn.OpenAsync();
        var tx = await conn.BeginTransactionAsync();
        await using (var lockTable = new NpgsqlCommand($"LOCK TABLE {table} IN {mode} MODE", conn, tx))
        {
            await lockTable.ExecuteNonQueryAsync();
        }

        return new TableHold(conn, tx);
    }

    /// <summary>A transaction holding a table lock.</summary>
    private sealed class TableHold(NpgsqlConnection conn, NpgsqlTransaction tx) : IAsyncDisposable
    {
        public Task ReleaseAsync() => tx.CommitAsync();

        public async ValueTask DisposeAsync()
        {
            await tx.DisposeAsync();
            await conn.DisposeAsync();
        }
    }

    [Fact]
    public async Task New_keys_for_a_keyed_table_are_copied_ahead_on_a_second_connection_and_committed_by_their_write()
    {
        await using var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = false);
        await using var w = await h.OpenAsync<Row>(Run<Row>("copy-ahead", o => o.Table = "copy_ahead"));
        var preparer = Assert.IsAssignableFrom<IPreparingSinkWriter<Row>>(w);
        var first = h.Batch(Rows(1, 100));
        preparer.PrepareBatch(first.Records, first.FirstRecordNumber);
        Assert.Equal(100, (await w.WriteBatchAsync(first, default)).Created);

        // Prepared while nothing else is written: its rows are all new, so they are copied at once, not yet committed.
        var second = h.Batch(Rows(101, 200));
        var secondPrepared = preparer.PrepareBatch(second.Records, second.FirstRecordNumber);
        Assert.True(await CopyHeldOpenAsync(), "no second session holds the batch's COPY open");
        Assert.Equal(100, await db.ScalarAsync<long>("SELECT count(*) FROM copy_ahead"));
        Assert.Equal(1, await db.ScalarAsync<long>(CopyHeldOpen + " AND application_name LIKE '%:copy-ahead'")); // named after the source, as the writer's own session

        // Two copies ahead at a time (as when the runner hands a batch over behind the one being written): the third
        // batch is copied on a third session.
        var third = h.Batch([.. Rows(201, 300)]);
        var thirdPrepared = preparer.PrepareBatch(third.Records, third.FirstRecordNumber);
        Assert.Equal(2, await WaitForCountAsync(CopyHeldOpen, 2));

        var a = await w.WriteBatchAsync(Prepared(second, secondPrepared), default);
        Assert.Equal((100L, 0L, 0L), (a.Created, a.Updated, a.Unchanged));
        Assert.Equal(200, await db.ScalarAsync<long>("SELECT count(*) FROM copy_ahead"));
        var b = await w.WriteBatchAsync(Prepared(third, thirdPrepared), default);
        Assert.Equal((100L, 0L, 0L), (b.Created, b.Updated, b.Unchanged));

        // The batches after it read the rows the copy ahead wrote as stored.
        var fourth = h.Batch([.. Rows(151, 160), .. Rows(161, 170, sign: -1), .. Rows(301, 310)]);
        var fourthPrepared = preparer.PrepareBatch(fourth.Records, fourth.FirstRecordNumber);
        var c = await w.WriteBatchAsync(Prepared(fourth, fourthPrepared), default);
        await w.CompleteAsync(default);

        Assert.Equal((10L, 10L, 10L), (c.Created, c.Updated, c.Unchanged));
        Assert.Equal(310, await db.ScalarAsync<long>("SELECT count(*) FROM copy_ahead"));
        Assert.Equal(-165, await db.ScalarAsync<int>("SELECT value FROM copy_ahead WHERE id = 'k0165'"));
        Assert.Equal(0, await db.ScalarAsync<long>(CopyHeldOpen));
    }

    [Fact]
    public async Task The_next_batch_is_copied_ahead_while_the_batch_before_it_is_still_being_written_on_the_server()
    {
        await using var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = false);
        await using var w = await OpenWithFirstBatchAsync(h, "copy-ahead-overlap", "copy_ahead_overlap");

        // Writes to the table wait while the test holds it: the second batch's copy ahead is still on the server when
        // its write claims it.
        await using var hold = await HoldAsync("copy_ahead_overlap", "SHARE");

        var second = h.Batch(Rows(101, 200));
        var secondPrepared = w.PrepareBatch(second.Records, second.FirstRecordNumber);
        var writing = w.WriteBatchAsync(Prepared(second, secondPrepared), default).AsTask();
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (w.HoldsUnclaimedCopyAhead && DateTime.UtcNow < until)
        {
            await Task.Delay(10);
        }

        Assert.False(w.HoldsUnclaimedCopyAhead, "the second batch's write did not claim its copy");

        // Claimed, not finished: the third batch is copied ahead on the connection the second batch's write left.
        var third = h.Batch(Rows(201, 300));
        var thirdPrepared = w.PrepareBatch(third.Records, third.FirstRecordNumber);
        Assert.Equal(2, await WaitForCountAsync("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '%:copy-ahead-overlap' AND wait_event_type = 'Lock' AND query LIKE 'COPY %'", 2));
        Assert.False(writing.IsCompleted);
        await hold.ReleaseAsync();

        var a = await writing;
        var b = await w.WriteBatchAsync(Prepared(third, thirdPrepared), default);
        await w.CompleteAsync(default);
        Assert.Equal((100L, 100L), (a.Created, b.Created));
        Assert.Equal(300, await db.ScalarAsync<long>("SELECT count(*) FROM copy_ahead_overlap"));
        Assert.Equal(0, await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"));
    }

    [Fact]
    public async Task A_copy_ahead_is_rolled_back_when_the_batch_before_it_fails_and_a_new_run_writes_it_again()
    {
        await using var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = false);
        var run = Run<Row>("copy-ahead-fails", o => o.Table = "copy_ahead_fails");
        await using (var w = await h.OpenAsync<Row>(run))
        {
            var preparer = Assert.IsAssignableFrom<IPreparingSinkWriter<Row>>(w);
            var first = h.Batch(Rows(1, 100));
            preparer.PrepareBatch(first.Records, first.FirstRecordNumber);
            await w.WriteBatchAsync(first, default);
            await db.ExecuteAsync("ALTER TABLE copy_ahead_fails ADD CONSTRAINT no_minus_seven CHECK (value <> -7)");

            // The second batch changes stored rows (so it is merged, not copied ahead), one of them to a value the table
            // refuses; the third, all new, is copied ahead while the second is written.
            var second = h.Batch([.. Rows(1, 10, sign: -1), .. Rows(101, 150)]);
            var third = h.Batch(Rows(151, 250));
            var secondPrepared = preparer.PrepareBatch(second.Records, second.FirstRecordNumber);
            var thirdPrepared = preparer.PrepareBatch(third.Records, third.FirstRecordNumber);
            Assert.True(await CopyHeldOpenAsync(), "the third batch was not copied ahead");

            var failure = await Assert.ThrowsAnyAsync<IngestionException>(async () => await w.WriteBatchAsync(Prepared(second, secondPrepared), default));
            Assert.Contains("no_minus_seven", failure.ToString(), StringComparison.Ordinal);
            Assert.Equal(0, await db.ScalarAsync<long>(CopyHeldOpen));
        }

        // Nothing of the failed batch nor of the one copied ahead was committed.
        Assert.Equal(100, await db.ScalarAsync<long>("SELECT count(*) FROM copy_ahead_fails"));
        Assert.Equal(0, await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"));

        // The next run writes them (without the refused value) and counts them exactly.
        await using var again = await h.OpenAsync<Row>(Run<Row>("copy-ahead-fails", o => o.Table = "copy_ahead_fails"));
        var p = Assert.IsAssignableFrom<IPreparingSinkWriter<Row>>(again);
        var b1 = h.Batch([.. Rows(1, 6, sign: -1), .. Rows(8, 10, sign: -1), .. Rows(101, 150)]);
        p.PrepareBatch(b1.Records, b1.FirstRecordNumber);
        var r1 = await again.WriteBatchAsync(b1, default);
        var b2 = h.Batch(Rows(151, 250));
        var r2 = await again.WriteBatchAsync(Prepared(b2, p.PrepareBatch(b2.Records, b2.FirstRecordNumber)), default);
        await again.CompleteAsync(default);
        Assert.Equal((50L, 9L), (r1.Created, r1.Updated));
        Assert.Equal(100, r2.Created);
        Assert.Equal(250, await db.ScalarAsync<long>("SELECT count(*) FROM copy_ahead_fails"));
    }

    [Theory]
    [InlineData("trigger")]
    [InlineData("option off")]
    public async Task A_table_with_a_trigger_or_the_option_off_is_never_copied_ahead(string why)
    {
        var table = why == "trigger" ? "copy_ahead_trigger" : "copy_ahead_off";
        await using var h = new SinkHarness(db, o =>
        {
            o.BuildKeyIndexAfterFirstLoad = false;
            o.CopyAheadOnSecondConnection = why != "option off";
        });
        await using var w = await h.OpenAsync<Row>(Run<Row>($"copy-ahead-{why.Replace(' ', '-')}", o => o.Table = table));
        var preparer = Assert.IsAssignableFrom<IPreparingSinkWriter<Row>>(w);
        if (why == "trigger")
        {
            // A trigger's own writes could lock rows of other tables in either batch's order: no early copy there.
            await db.ExecuteAsync($"CREATE TABLE {table} (id text PRIMARY KEY, value integer, note text, at timestamptz, _ingestion_hash bigint)");
            await db.ExecuteAsync($"CREATE FUNCTION {table}_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$");
            await db.ExecuteAsync($"CREATE TRIGGER {table}_touch BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {table}_touch()");
        }

        var first = h.Batch(Rows(1, 100));
        preparer.PrepareBatch(first.Records, first.FirstRecordNumber);
        await w.WriteBatchAsync(first, default);
        var second = h.Batch(Rows(101, 200));
        var secondPrepared = preparer.PrepareBatch(second.Records, second.FirstRecordNumber);
        Assert.False(await CopyHeldOpenAsync(TimeSpan.FromMilliseconds(500)), $"{why}: a batch was copied ahead");
        Assert.Equal(100, (await w.WriteBatchAsync(Prepared(second, secondPrepared), default)).Created);
        await w.CompleteAsync(default);
        Assert.Equal(200, await db.ScalarAsync<long>($"SELECT count(*) FROM {table}"));
    }

    [Fact]
    public async Task Changed_rows_of_stored_keys_are_merged_ahead_on_a_second_connection_and_committed_by_their_write()
    {
        await using var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = false);
        await using var w = await OpenWithFirstBatchAsync(h, "merge-ahead", "merge_ahead");
        var second = h.Batch(Rows(101, 200));
        await w.WriteBatchAsync(Prepared(second, w.PrepareBatch(second.Records, second.FirstRecordNumber)), default);

        // Every row of the third batch changes a stored row the second batch does not have: staged and updated at once
        // on the other connection, not yet committed.
        var third = h.Batch(Rows(1, 100, sign: -1));
        var thirdPrepared = w.PrepareBatch(third.Records, third.FirstRecordNumber);
        Assert.True(await CopyHeldOpenAsync(query: UpdateHeldOpen), "no second session holds the batch's UPDATE open");
        Assert.Equal(0, await db.ScalarAsync<long>("SELECT count(*) FROM merge_ahead WHERE value < 0"));

        var a = await w.WriteBatchAsync(Prepared(third, thirdPrepared), default);
        Assert.Equal((0L, 100L, 0L), (a.Created, a.Updated, a.Unchanged));
        Assert.Equal(100, await db.ScalarAsync<long>("SELECT count(*) FROM merge_ahead WHERE value < 0"));

        // New, changed and unchanged rows in one batch: the new ones copied, the changed ones merged, both ahead.
        var fourth = h.Batch([.. Rows(101, 150, sign: -1), .. Rows(151, 160), .. Rows(201, 250)]);
        var fourthPrepared = w.PrepareBatch(fourth.Records, fourth.FirstRecordNumber);
        Assert.True(await CopyHeldOpenAsync(query: UpdateHeldOpen), "the mixed batch was not merged ahead");
        var b = await w.WriteBatchAsync(Prepared(fourth, fourthPrepared), default);
        await w.CompleteAsync(default);

        Assert.Equal((50L, 50L, 10L), (b.Created, b.Updated, b.Unchanged));
        Assert.Equal(250, await db.ScalarAsync<long>("SELECT count(*) FROM merge_ahead"));
        Assert.Equal(150, await db.ScalarAsync<long>("SELECT count(*) FROM merge_ahead WHERE value < 0"));
        Assert.Equal(-120, await db.ScalarAsync<int>("SELECT value FROM merge_ahead WHERE id = 'k0120'"));
        Assert.Equal(0, await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"));
    }

    [Fact]
    public async Task At_most_two_batches_are_copied_ahead_and_their_writes_commit_them_in_order()
    {
        await using var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = false);
        await using var w = await OpenWithFirstBatchAsync(h, "copy-ahead-two", "copy_ahead_two");
        Assert.Equal(2, w.BatchesPreparedAhead);

        var batches = new[] { h.Batch(Rows(101, 200)), h.Batch(Rows(201, 300)), h.Batch(Rows(301, 400)) };
        var prepared = batches.Select(b => w.PrepareBatch(b.Records, b.FirstRecordNumber)).ToArray();
        Assert.Equal(2, await WaitForCountAsync(CopyHeldOpen, 2));
        await Task.Delay(200);
        Assert.Equal(2, await db.ScalarAsync<long>(CopyHeldOpen));
        Assert.Equal(100, await db.ScalarAsync<long>("SELECT count(*) FROM copy_ahead_two"));

        for (var i = 0; i < batches.Length; i++)
        {
            Assert.Equal(100, (await w.WriteBatchAsync(Prepared(batches[i], prepared[i]), default)).Created);
            Assert.Equal(200 + (100 * i), await db.ScalarAsync<long>("SELECT count(*) FROM copy_ahead_two"));
        }

        await w.CompleteAsync(default);
        Assert.Equal(400, await db.ScalarAsync<long>("SELECT count(DISTINCT id) FROM copy_ahead_two"));
        Assert.Equal(0, await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"));
    }

    [Fact]
    public async Task A_pool_of_two_connections_keeps_one_copy_ahead()
    {
        // A third connection would wait for the pool: batches are handed over one at a time and copied one ahead.
        var pooled = new NpgsqlConnectionStringBuilder(db.ConnectionString) { MaxPoolSize = 2 }.ConnectionString;
        await using var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = false, pooled);
        await using var w = await OpenWithFirstBatchAsync(h, "copy-ahead-small-pool", "copy_ahead_small_pool");
        Assert.Equal(1, w.BatchesPreparedAhead);

        var batches = new[] { h.Batch(Rows(101, 200)), h.Batch(Rows(201, 300)) };
        var prepared = batches.Select(b => w.PrepareBatch(b.Records, b.FirstRecordNumber)).ToArray();
        Assert.True(await CopyHeldOpenAsync(), "the second batch was not copied ahead");
        await Task.Delay(300);
        Assert.Equal(1, await db.ScalarAsync<long>(CopyHeldOpen));
        for (var i = 0; i < batches.Length; i++)
        {
            Assert.Equal(100, (await w.WriteBatchAsync(Prepared(batches[i], prepared[i]), default)).Created);
        }

        await w.CompleteAsync(default);
        Assert.Equal(300, await db.ScalarAsync<long>("SELECT count(*) FROM copy_ahead_small_pool"));
    }

    [Fact]
    public async Task A_changed_row_whose_key_the_batch_before_last_has_is_not_merged_ahead_while_that_batch_is_unwritten()
    {
        // With two batches in flight, the one before last may not have written its rows yet either.
        await using var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = false);
        await using var w = await OpenWithFirstBatchAsync(h, "merge-ahead-two-back", "merge_ahead_two_back");

        // The second batch changes rows the first (written) has: merged ahead. The third changes rows of the second, so
        // it is not merged ahead, and leaves a place for the fourth, which changes other rows of the second, still
        // unwritten: not merged either, though the batch just before it (the third) has none of its keys.
        var second = h.Batch(Rows(1, 50, sign: -1));
        var third = h.Batch(Rows(1, 20));
        var fourth = h.Batch(Rows(30, 40));
        var secondPrepared = w.PrepareBatch(second.Records, second.FirstRecordNumber);
        Assert.True(await CopyHeldOpenAsync(query: UpdateHeldOpen), "the second batch was not merged ahead");
        var thirdPrepared = w.PrepareBatch(third.Records, third.FirstRecordNumber);
        var fourthPrepared = w.PrepareBatch(fourth.Records, fourth.FirstRecordNumber);
        await Task.Delay(300);
        Assert.Equal(1, await db.ScalarAsync<long>(UpdateHeldOpen));

        var a = await w.WriteBatchAsync(Prepared(second, secondPrepared), default);
        var b = await w.WriteBatchAsync(Prepared(third, thirdPrepared), default);
        var c = await w.WriteBatchAsync(Prepared(fourth, fourthPrepared), default);
        await w.CompleteAsync(default);
        Assert.Equal((0L, 50L), (a.Created, a.Updated));
        Assert.Equal((0L, 20L, 0L), (b.Created, b.Updated, b.Unchanged));
        Assert.Equal((0L, 11L, 0L), (c.Created, c.Updated, c.Unchanged));
        Assert.Equal(19, await db.ScalarAsync<long>("SELECT count(*) FROM merge_ahead_two_back WHERE value < 0"));
        Assert.Equal(100, await db.ScalarAsync<long>("SELECT count(*) FROM merge_ahead_two_back"));
    }

    [Fact]
    public async Task A_changed_row_whose_key_the_batch_before_has_is_not_merged_ahead_of_that_batch()
    {
        // The batch before may not have written that key yet: its write would then wait for the row the early update
        // holds, whose commit waits for the batch before. So that batch is merged by its own write, after.
        await using var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = false);
        await using var w = await OpenWithFirstBatchAsync(h, "merge-ahead-repeat", "merge_ahead_repeat");

        // Prepared one after the other, as the runner does while the batch before is written.
        var second = h.Batch([.. Rows(1, 50, sign: -1), .. Rows(101, 150)]);
        var third = h.Batch(Rows(1, 10));
        var secondPrepared = w.PrepareBatch(second.Records, second.FirstRecordNumber);
        var thirdPrepared = w.PrepareBatch(third.Records, third.FirstRecordNumber);
        // The second changes rows of the first, whose write is done: merged ahead. The third is not.
        Assert.True(await CopyHeldOpenAsync(query: UpdateHeldOpen), "the second batch was not merged ahead");
        await Task.Delay(500);
        Assert.Equal(1, await db.ScalarAsync<long>(UpdateHeldOpen));

        var a = await w.WriteBatchAsync(Prepared(second, secondPrepared), default);
        var b = await w.WriteBatchAsync(Prepared(third, thirdPrepared), default);
        await w.CompleteAsync(default);
        Assert.Equal((50L, 50L), (a.Created, a.Updated));
        Assert.Equal((0L, 10L, 0L), (b.Created, b.Updated, b.Unchanged));
        Assert.Equal(40, await db.ScalarAsync<long>("SELECT count(*) FROM merge_ahead_repeat WHERE value < 0"));
        Assert.Equal(150, await db.ScalarAsync<long>("SELECT count(*) FROM merge_ahead_repeat"));
    }

    [Fact]
    public async Task A_merge_ahead_that_updates_fewer_rows_than_it_sent_is_rolled_back_and_the_batch_merged_with_exact_counts()
    {
        await using var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = false);
        await using var w = await OpenWithFirstBatchAsync(h, "merge-ahead-vanished", "merge_ahead_vanished");
        var second = h.Batch(Rows(101, 200));
        await w.WriteBatchAsync(Prepared(second, w.PrepareBatch(second.Records, second.FirstRecordNumber)), default);

        // Someone else deletes a stored row the key index still holds: the early update finds 99 of its 100 rows.
        await db.ExecuteAsync("DELETE FROM merge_ahead_vanished WHERE id = 'k0005'");
        var third = h.Batch(Rows(1, 100, sign: -1));
        var thirdPrepared = w.PrepareBatch(third.Records, third.FirstRecordNumber);
        Assert.True(await CopyHeldOpenAsync(query: UpdateHeldOpen), "the batch was not merged ahead");

        var a = await w.WriteBatchAsync(Prepared(third, thirdPrepared), default);
        await w.CompleteAsync(default);
        Assert.Equal((1L, 99L, 0L), (a.Created, a.Updated, a.Unchanged));
        Assert.Equal(-5, await db.ScalarAsync<int>("SELECT value FROM merge_ahead_vanished WHERE id = 'k0005'"));
        Assert.Equal(100, await db.ScalarAsync<long>("SELECT count(*) FROM merge_ahead_vanished WHERE value < 0"));
    }

    [Fact]
    public async Task A_first_load_copies_its_batches_ahead_into_the_table_still_without_its_key_and_builds_the_key_at_the_end()
    {
        await using var h = new SinkHarness(db);
        await using var w = await OpenWithFirstBatchAsync(h, "copy-ahead-first", "copy_ahead_first");
        Assert.False(await db.ScalarAsync<bool>(HasPrimaryKeySql("copy_ahead_first")));

        var second = h.Batch(Rows(101, 200));
        var secondPrepared = w.PrepareBatch(second.Records, second.FirstRecordNumber);
        Assert.True(await CopyHeldOpenAsync(), "the first load's second batch was not copied ahead");
        Assert.Equal(100, (await w.WriteBatchAsync(Prepared(second, secondPrepared), default)).Created);
        await w.CompleteAsync(default);

        Assert.Equal(200, await db.ScalarAsync<long>("SELECT count(DISTINCT id) FROM copy_ahead_first"));
        Assert.True(await db.ScalarAsync<bool>(HasPrimaryKeySql("copy_ahead_first")));
    }

    [Fact]
    public async Task A_first_load_past_what_its_key_index_remembers_is_still_copied_ahead_and_its_repeats_resolved_at_the_key_build()
    {
        const string Table = "copy_ahead_past_index";
        await using var h = new SinkHarness(db, o => o.KeyIndexMaxRows = 150);
        await using var w = await OpenWithFirstBatchAsync(h, "copy-ahead-past-index", Table);
        var second = h.Batch(Rows(101, 200));
        var secondPrepared = w.PrepareBatch(second.Records, second.FirstRecordNumber);
        Assert.Equal(100, (await w.WriteBatchAsync(Prepared(second, secondPrepared), default)).Created);

        // The index is full: k0151-k0200 were copied unremembered. The third batch sends ten of them again, changed.
        var third = h.Batch(Rows(191, 290, sign: -1));
        var thirdPrepared = w.PrepareBatch(third.Records, third.FirstRecordNumber);
        Assert.True(await CopyHeldOpenAsync(), "a first load's batch past its key index was not copied ahead");
        Assert.Equal(100, (await w.WriteBatchAsync(Prepared(third, thirdPrepared), default)).Created);

        // Its write marked the table as it would have without the copy ahead, in the batch's transaction.
        Assert.EndsWith("(may hold repeats)", await db.ScalarAsync<string>(HashColumnCommentSql(Table)));
        Assert.Equal(300, await db.ScalarAsync<long>($"SELECT count(*) FROM {Table}"));

        var completion = await w.CompleteAsync(default);
        Assert.Equal((10L, 0L), (completion.RecountedAsUpdated, completion.RecountedAsUnchanged));
        Assert.Equal(290, await db.ScalarAsync<long>($"SELECT count(*) FROM {Table}"));
        Assert.Equal(10, await db.ScalarAsync<long>($"SELECT count(*) FROM {Table} WHERE id BETWEEN 'k0191' AND 'k0200' AND value < 0"));
        Assert.True(await db.ScalarAsync<bool>(HasPrimaryKeySql(Table)));
    }

    [Fact]
    public async Task No_batch_is_copied_ahead_while_the_writer_builds_the_key_of_a_first_load()
    {
        // A copy that took the table between the build's roll-back of copies and its lock would make the build wait for
        // it, and it for the writer: so none starts until the build is done.
        await using var h = new SinkHarness(db);
        await using var w = await OpenWithFirstBatchAsync(h, "copy-ahead-build", "copy_ahead_build");

        // The second batch changes rows of the first: the server must look them up, so its write builds the key, which
        // waits while the test holds the table.
        await using var hold = await HoldAsync("copy_ahead_build", "ROW EXCLUSIVE");

        var second = h.Batch([.. Rows(1, 10, sign: -1), .. Rows(201, 210)]);
        var secondPrepared = w.PrepareBatch(second.Records, second.FirstRecordNumber);
        var writing = w.WriteBatchAsync(Prepared(second, secondPrepared), default).AsTask();
        var third = h.Batch(Rows(301, 400));
        object? thirdPrepared;
        bool copiedDuringBuild;
        try
        {
            Assert.Equal(1, await WaitForCountAsync("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '%:copy-ahead-build' AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE %'", 1));

            // All new, prepared while the key is being built: left to its own write.
            thirdPrepared = w.PrepareBatch(third.Records, third.FirstRecordNumber);
            copiedDuringBuild = w.HoldsUnclaimedCopyAhead;
        }
        finally
        {
            // The write in flight ends before the writer is disposed, whatever the assertions said.
            await hold.ReleaseAsync();
            await writing;
        }

        Assert.False(copiedDuringBuild, "a batch was copied ahead while the key was being built");
        var a = await writing;
        var b = await w.WriteBatchAsync(Prepared(third, thirdPrepared), default);
        await w.CompleteAsync(default);
        Assert.Equal((10L, 10L), (a.Created, a.Updated));
        Assert.Equal(100, b.Created);
        Assert.Equal(210, await db.ScalarAsync<long>("SELECT count(*) FROM copy_ahead_build"));
        Assert.True(await db.ScalarAsync<bool>(HasPrimaryKeySql("copy_ahead_build")));
    }

    [Fact]
    public async Task A_cancelled_write_does_not_wait_for_a_copy_ahead_held_up_on_a_lock()
    {
        await using var h = new SinkHarness(db, o => o.BuildKeyIndexAfterFirstLoad = false);
        await using var w = await OpenWithFirstBatchAsync(h, "copy-ahead-cancel", "copy_ahead_cancel");
        await using var hold = await HoldAsync("copy_ahead_cancel", "SHARE");

        // The second batch changes rows of the first (written by its own write); the third, all new, is copied ahead.
        // Both wait for the table.
        var second = h.Batch(Rows(1, 10, sign: -1));
        var third = h.Batch(Rows(101, 200));
        var secondPrepared = w.PrepareBatch(second.Records, second.FirstRecordNumber);
        w.PrepareBatch(third.Records, third.FirstRecordNumber);
        Assert.True(w.HoldsUnclaimedCopyAhead);
        using var cts = new CancellationTokenSource();
        var writing = w.WriteBatchAsync(Prepared(second, secondPrepared), cts.Token).AsTask();
        Assert.Equal(2, await WaitForCountAsync("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '%:copy-ahead-cancel' AND wait_event_type = 'Lock'", 2));

        await cts.CancelAsync();
        var ended = await Task.WhenAny(writing, Task.Delay(TimeSpan.FromSeconds(10)));
        await hold.ReleaseAsync();
        Assert.Same(writing, ended);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => writing);
        Assert.False(w.HoldsUnclaimedCopyAhead);
        Assert.Equal(100, await db.ScalarAsync<long>("SELECT count(*) FROM copy_ahead_cancel"));
    }
}
