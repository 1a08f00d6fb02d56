using Ingestion.Queue;
using Ingestion.TestSupport;
using Npgsql;

namespace Ingestion.Postgres.Tests.Queue;

/// <summary>
/// Bulk enqueue's direct path (chunks COPYed straight into <c>queue_items</c>, the next chunk read ahead) and its
/// fall-backs to the staged merge: every key is added once, known keys are skipped, and the counts add up.
/// </summary>
public class BulkEnqueueTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static IEnumerable<string> Keys(int from, int count) => Enumerable.Range(from, count).Select(i => $"k{i:D6}");

    [Fact]
    public async Task A_key_repeated_in_a_later_chunk_sends_that_chunk_and_the_one_read_ahead_to_the_merge_and_counts_stay_right()
    {
        await using var q = await QueueTestStore.CreateAsync(db);

        // 60,000 keys in several chunks; the first key comes again at position 20,000 (the second chunk, when the
        // third is being read ahead): the first chunk goes by COPY, the second fails on the key and is merged, and so
        // is the rest of the call.
        var keys = Keys(0, 60_000).ToList();
        keys.Insert(19_999, "k000000");
        var r = await q.Store.EnqueueManyAsync("later", QueueTestStore.Items(keys), None);
        Assert.Equal((60_001L, 60_000L), (r.Read, r.Enqueued));
        Assert.Equal(60_000L, await q.CountAsync("queue_items"));
    }

    [Fact]
    public async Task Every_field_of_every_item_arrives_whether_its_chunk_is_copied_or_merged()
    {
        await using var q = await QueueTestStore.CreateAsync(db);

        // 60,000 items in several chunks, out of key order, each with its own payload (some null, some empty,
        // some not ASCII), priority and schedule. The first key comes again at position 30,000 (the second chunk, when
        // the third is being read ahead): the first chunk goes by COPY, the rest is merged from what was read.
        var later = new DateTimeOffset(2031, 1, 2, 3, 4, 5, TimeSpan.FromHours(2));
        WorkItemRequest Item(int i) => new($"k{i:D6}")
        {
            Payload = (i % 4) switch { 0 => null, 1 => string.Empty, 2 => $"p{i}", _ => $"é{i}😀" },
            Priority = i % 7 - 3,
            NotBefore = i % 3 == 0 ? later.AddSeconds(i) : null,
        };
        var items = Enumerable.Range(0, 60_000).Select(i => (i * 7_919) % 60_000).Select(Item).ToList();
        items.Insert(30_000, new WorkItemRequest(items[0].Key) { Payload = "repeat" });
        var r = await q.Store.EnqueueManyAsync("fields", QueueTestStore.Requests(items), None);
        Assert.Equal((60_001L, 60_000L), (r.Read, r.Enqueued));
        Assert.Equal(0L, await q.CountAsync("queue_items WHERE payload = 'repeat'"));

        var n = "substr(key, 2)::int";
        Assert.Equal(60_000L, await q.CountAsync($"""
            queue_items WHERE payload IS NOT DISTINCT FROM (CASE {n} % 4 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'p' || {n} ELSE 'é' || {n} || '😀' END)
              AND priority = {n} % 7 - 3
              AND (CASE WHEN {n} % 3 = 0 THEN run_after = '2031-01-02 01:04:05+00'::timestamptz + {n} * interval '1 second' ELSE run_after <= now() END)
            """));
    }

    [Fact]
    public async Task Keys_order_by_their_characters_codes_and_items_with_large_payloads_all_arrive()
    {
        await using var q = await QueueTestStore.CreateAsync(db);

        // Keys that an ordinal sort orders unlike a cultural one, repeated in another case (a different key).
        string[] keys = ["b", "B", "a", "é", "e", "Z", "z", "ä", "a", "e\u0301"];
        var r = await q.Store.EnqueueManyAsync("order", QueueTestStore.Items(keys), None);
        Assert.Equal((10L, 9L), (r.Read, r.Enqueued));

        // 40 payloads of a million characters: more text than one chunk holds, so the items span several chunks.
        var big = Enumerable.Range(0, 40).Select(i => new WorkItemRequest($"big{i:D2}") { Payload = new string((char)('a' + (i % 26)), 1_000_000) });
        r = await q.Store.EnqueueManyAsync("big", QueueTestStore.Requests(big), None);
        Assert.Equal((40L, 40L), (r.Read, r.Enqueued));
        Assert.Equal(40L, await q.CountAsync("queue_items WHERE key LIKE 'big%' AND length(payload) = 1000000 AND payload = repeat(chr(97 + substr(key, 4)::int % 26), 1000000)"));
    }

    [Fact]
    public async Task Keys_in_key_order_with_repeats_keep_the_first_and_unset_columns_take_their_defaults()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        WorkItemRequest[] items = [new("a") { Priority = 2 }, new("a") { Priority = 9 }, new("b"), new("c") { Priority = 1 }];
        var r = await q.Store.EnqueueManyAsync("sorted", QueueTestStore.Requests(items), None);
        Assert.Equal((4L, 3L), (r.Read, r.Enqueued));
        Assert.Equal(1L, await q.CountAsync("queue_items WHERE key = 'a' AND priority = 2"));
        Assert.Equal(3L, await q.CountAsync("queue_items WHERE payload IS NULL AND run_after = enqueued_at AND state = 0 AND attempts = 0"));

        // Keys only: the COPY sends queue and key; every other column is its default.
        r = await q.Store.EnqueueManyAsync("plain", QueueTestStore.Items(["z", "y", "x", "y"]), None);
        Assert.Equal((4L, 3L), (r.Read, r.Enqueued));
        Assert.Equal(3L, await q.CountAsync("queue_items i JOIN \"" + q.Schema + "\".queues n ON n.id = i.queue_id WHERE n.name = 'plain' AND i.priority = 0 AND i.payload IS NULL AND i.run_after = i.enqueued_at AND i.run_after <= now()"));
        var claim = await q.Store.ClaimAsync(new ClaimRequest("plain", "w", 10, TimeSpan.FromMinutes(1)), None);
        Assert.Equal(3, claim.Items.Count);
    }

    [Fact]
    public async Task A_key_completed_while_the_copy_runs_is_not_enqueued_again()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        Assert.True(await q.Store.EnqueueAsync("race", new WorkItemRequest("k000500"), None));

        // A worker's completion of k000500, not committed yet: the item leaves queue_items for queue_done. The queue
        // has no done key the bulk enqueue can see, so it takes the direct path, and its COPY waits on the row.
        await using var worker = await q.Database.DataSource.OpenConnectionAsync();
        await using var completion = await worker.BeginTransactionAsync();
        await using (var cmd = new NpgsqlCommand($"""
            WITH d AS (DELETE FROM "{q.Schema}".queue_items WHERE key = 'k000500' RETURNING queue_id, key, attempts, enqueued_at)
            INSERT INTO "{q.Schema}".queue_done (queue_id, key, attempts, enqueued_at) SELECT * FROM d
            """, worker, completion))
        {
            Assert.Equal(1, await cmd.ExecuteNonQueryAsync());
        }

        var bulk = q.Store.EnqueueManyAsync("race", QueueTestStore.Items(Keys(0, 1_000)), None);
        await WaitForLockWaitAsync(q);
        await completion.CommitAsync();

        var r = await bulk;
        Assert.Equal((1_000L, 999L), (r.Read, r.Enqueued));
        Assert.Equal(0L, await q.CountAsync("queue_items WHERE key = 'k000500'"));
        Assert.Equal(999L, await q.CountAsync("queue_items"));
    }

    [Fact]
    public async Task A_failing_source_stops_the_call_with_its_error_after_whole_chunks_and_a_rerun_adds_the_rest()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        var e = await Assert.ThrowsAsync<IOException>(() => q.Store.EnqueueManyAsync("resume", Failing(Keys(0, 50_000), 30_000), None));
        Assert.Equal("listing failed at 30000", e.Message);
        var kept = await q.CountAsync("queue_items");
        Assert.InRange(kept, 0L, 30_000L);
        Assert.Equal(kept, await q.CountAsync($"queue_items WHERE key < 'k{kept:D6}'"));

        var r = await q.Store.EnqueueManyAsync("resume", QueueTestStore.Items(Keys(0, 50_000)), None);
        Assert.Equal((50_000L, 50_000L - kept), (r.Read, r.Enqueued));
        Assert.Equal(50_000L, await q.CountAsync("queue_items"));
    }

    [Fact]
    public async Task A_bad_key_in_a_chunk_read_ahead_is_reported_with_its_position()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        var keys = Keys(0, 40_000).ToList();
        keys[19_999] = "bad\0key";
        var e = await Assert.ThrowsAsync<ArgumentException>(() => q.Store.EnqueueManyAsync("bad", QueueTestStore.Items(keys), None));
        Assert.Contains("item 20000", e.Message);
        Assert.Contains("NUL", e.Message);
        Assert.Equal(0L, await q.CountAsync("queue_items WHERE key >= 'k019999'"));
    }

    [Fact]
    public async Task A_failure_mid_enqueue_in_the_callers_transaction_leaves_nothing()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        Assert.True(await q.Store.EnqueueAsync("tx", new WorkItemRequest("k000003"), None));
        await using var conn = await q.Database.DataSource.OpenConnectionAsync();
        await using (var tx = await conn.BeginTransactionAsync())
        {
            var r = await q.Store.EnqueueManyAsync(tx, "tx", QueueTestStore.Items(Keys(0, 20_000)), None);
            Assert.Equal((20_000L, 19_999L), (r.Read, r.Enqueued));
            await Assert.ThrowsAsync<IOException>(() => q.Store.EnqueueManyAsync(tx, "tx", Failing(Keys(20_000, 20_000), 10_000), None));
            await tx.RollbackAsync();
        }

        Assert.Equal(1L, await q.CountAsync("queue_items"));
    }

    [Fact]
    public async Task The_done_key_check_of_a_queue_without_done_keys_does_not_scan_the_other_queues_done_keys()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        Assert.True(await q.Store.EnqueueAsync("busy", new WorkItemRequest("seed"), None));
        await db.ExecuteAsync($"""
            INSERT INTO "{q.Schema}".queue_done (queue_id, key, attempts, enqueued_at)
            SELECT q.id, 'done/' || i, 1, now() FROM "{q.Schema}".queues q, generate_series(1, 50000) i WHERE q.name = 'busy';
            ANALYZE "{q.Schema}".queue_done;
            """);

        // A store of its own, closed after the call: its sessions end and report their table scans.
        var seqScans = $"SELECT coalesce(sum(seq_scan), 0)::bigint FROM pg_stat_all_tables WHERE schemaname = '{q.Schema}' AND relname = 'queue_done'";
        var before = await db.ScalarAsync<long>(seqScans);
        var store = new Ingestion.Postgres.Queue.PostgresWorkQueue(q.Database);
        await using (store)
        {
            var r = await store.EnqueueManyAsync("new", QueueTestStore.Items(Keys(0, 20_000)), None);
            Assert.Equal(20_000L, r.Enqueued);
        }

        // Scans are reported when a session ends (give the server a moment to count them).
        await Task.Delay(1_500);
        Assert.Equal(before, await db.ScalarAsync<long>(seqScans));
        Assert.Equal(20_000L, await q.CountAsync("queue_items i JOIN \"" + q.Schema + "\".queues n ON n.id = i.queue_id WHERE n.name = 'new'"));
    }

    private static async Task WaitForLockWaitAsync(QueueTestStore q)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await q.Db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "The bulk enqueue never waited on the completing transaction.");
            await Task.Delay(20);
        }
    }

    private static async IAsyncEnumerable<WorkItemRequest> Failing(IEnumerable<string> keys, int failAt)
    {
        var n = 0;
        foreach (var k in keys)
        {
            if (++n == failAt)
            {
                throw new IOException($"listing failed at {failAt}");
            }

            yield return new WorkItemRequest(k);
        }

        await Task.CompletedTask;
    }
}
