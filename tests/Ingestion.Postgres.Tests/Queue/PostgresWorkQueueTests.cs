using Ingestion.Queue;
using Ingestion.TestSupport;

namespace Ingestion.Postgres.Tests.Queue;

public class PostgresWorkQueueTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Enqueue_is_idempotent_by_key_and_says_so_even_after_the_item_is_done()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        Assert.True(await q.Store.EnqueueAsync("files", new WorkItemRequest("bucket/a.xml") { Payload = "{\"n\":1}" }, None));
        Assert.False(await q.Store.EnqueueAsync("files", new WorkItemRequest("bucket/a.xml") { Payload = "other" }, None));
        Assert.True(await q.Store.EnqueueAsync("other-queue", new WorkItemRequest("bucket/a.xml"), None));

        var claim = await q.Store.ClaimAsync(new ClaimRequest("files", "w1", 10, TimeSpan.FromMinutes(1)), None);
        var item = Assert.Single(claim.Items);
        Assert.Equal("{\"n\":1}", item.Payload);
        Assert.Equal(1, item.Attempt);
        Assert.False(await q.Store.EnqueueAsync("files", new WorkItemRequest("bucket/a.xml"), None));
        Assert.Equal(1, await q.Store.CompleteAsync("files", "w1", [item.Handle], None));
        Assert.False(await q.Store.EnqueueAsync("files", new WorkItemRequest("bucket/a.xml"), None));
        Assert.Empty((await q.Store.ClaimAsync(new ClaimRequest("files", "w1", 10, TimeSpan.FromMinutes(1)), None)).Items);

        // Pruned done keys are forgotten and may come back.
        Assert.Equal(1, await q.Store.PruneAsync("files", DateTimeOffset.UtcNow.AddMinutes(1), None));
        Assert.True(await q.Store.EnqueueAsync("files", new WorkItemRequest("bucket/a.xml"), None));
    }

    [Fact]
    public async Task Enqueue_joins_the_callers_transaction()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        await db.ExecuteAsync($"CREATE TABLE \"{q.Schema}\".docs (id text PRIMARY KEY)");
        await using var conn = await q.Database.DataSource.OpenConnectionAsync();
        await using (var tx = await conn.BeginTransactionAsync())
        {
            await using (var cmd = new Npgsql.NpgsqlCommand($"INSERT INTO \"{q.Schema}\".docs VALUES ('d1')", conn, tx))
            {
                await cmd.ExecuteNonQueryAsync();
            }

            Assert.True(await q.Store.EnqueueAsync(tx, "follow-up", new WorkItemRequest("d1"), None));
            Assert.Equal(1, (await q.Store.EnqueueManyAsync(tx, "follow-up", QueueTestStore.Items(["d2", "d1"]), None)).Enqueued);
            await tx.RollbackAsync();
        }

        Assert.Equal(0L, await q.CountAsync("queue_items"));
        Assert.Equal(0L, await q.CountAsync("docs"));

        await using (var tx = await conn.BeginTransactionAsync())
        {
            await using (var cmd = new Npgsql.NpgsqlCommand($"INSERT INTO \"{q.Schema}\".docs VALUES ('d1')", conn, tx))
            {
                await cmd.ExecuteNonQueryAsync();
            }

            Assert.True(await q.Store.EnqueueAsync(tx, "follow-up", new WorkItemRequest("d1"), None));
            await tx.CommitAsync();
        }

        Assert.Equal(1L, await q.CountAsync("queue_items"));
        Assert.Equal(1L, await q.CountAsync("docs"));
    }

    [Fact]
    public async Task Bulk_enqueue_skips_known_and_repeated_keys_and_concurrent_bulks_never_duplicate()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        Assert.True(await q.Store.EnqueueAsync("bulk", new WorkItemRequest("k00005"), None));
        var keys = Enumerable.Range(0, 20_000).Select(i => $"k{i:D5}").Concat(["k00007", "k00008"]).ToList();
        var result = await q.Store.EnqueueManyAsync("bulk", QueueTestStore.Items(keys), None);
        Assert.Equal(20_002, result.Read);
        Assert.Equal(19_999, result.Enqueued);
        Assert.Equal(3, result.AlreadyKnown);

        var a = Enumerable.Range(0, 30_000).Select(i => $"c{i:D5}").ToList();
        var b = Enumerable.Range(15_000, 30_000).Select(i => $"c{i:D5}").ToList();
        var both = await Task.WhenAll(
            q.Store.EnqueueManyAsync("bulk", QueueTestStore.Items(a), None),
            q.Store.EnqueueManyAsync("bulk", QueueTestStore.Items(b), None));
        Assert.Equal(45_000, both.Sum(r => r.Enqueued));
        Assert.Equal(20_000L + 45_000, await q.CountAsync("queue_items"));
    }

    [Fact]
    public async Task Bulk_enqueue_into_a_fresh_queue_keeps_the_first_of_repeated_keys_and_the_schedule_and_later_skips_done_keys()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        var later = DateTimeOffset.UtcNow.AddHours(1);
        WorkItemRequest[] items =
        [
            new("b") { Payload = "first", Priority = 3 },
            new("a") { NotBefore = later },
            new("b") { Payload = "second" },
            new("c"),
        ];
        var r = await q.Store.EnqueueManyAsync("fresh", QueueTestStore.Requests(items), None);
        Assert.Equal((4L, 3L), (r.Read, r.Enqueued));
        Assert.Equal(1L, await q.CountAsync("queue_items WHERE key = 'b' AND payload = 'first' AND priority = 3"));
        Assert.Equal(1L, await q.CountAsync("queue_items WHERE key = 'a' AND run_after > now() + interval '59 minutes'"));
        Assert.Equal(1L, await q.CountAsync("queue_items WHERE key = 'c' AND payload IS NULL AND priority = 0 AND run_after = enqueued_at AND run_after <= now()"));

        var claim = await q.Store.ClaimAsync(new ClaimRequest("fresh", "w", 10, TimeSpan.FromMinutes(1)), None);
        Assert.Equal(["b", "c"], claim.Items.Select(i => i.Key));
        Assert.Equal(2, await q.Store.CompleteAsync("fresh", "w", claim.Items.Select(i => i.Handle).ToArray(), None));

        // The queue now has done keys: they stay known to a bulk enqueue.
        r = await q.Store.EnqueueManyAsync("fresh", QueueTestStore.Items(["b", "c", "d", "a"]), None);
        Assert.Equal((4L, 1L), (r.Read, r.Enqueued));
        Assert.Equal(2L, await q.CountAsync("queue_items"));
    }

    [Fact]
    public async Task Bad_keys_are_refused_with_their_position()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => q.Store.EnqueueManyAsync("bulk", QueueTestStore.Items(["a", "b", ""]), None));
        Assert.Contains("item 3", e.Message);
        e = await Assert.ThrowsAsync<ArgumentException>(() => q.Store.EnqueueAsync("bulk", new WorkItemRequest("a\0b"), None));
        Assert.Contains("NUL", e.Message);
        e = await Assert.ThrowsAsync<ArgumentException>(() => q.Store.EnqueueAsync("bulk", new WorkItemRequest(new string('x', 2001)), None));
        Assert.Contains("2000 bytes", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => q.Store.EnqueueAsync("bad name!", new WorkItemRequest("a"), None));
        Assert.Equal(0L, await q.CountAsync("queue_items"));
    }

    [Fact]
    public async Task Concurrent_claimers_never_share_an_item_and_priority_and_schedule_are_respected()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        await q.Store.EnqueueManyAsync("claim", QueueTestStore.Items(Enumerable.Range(0, 2_000).Select(i => $"i{i}")), None);
        await q.Store.EnqueueAsync("claim", new WorkItemRequest("urgent") { Priority = 10 }, None);
        await q.Store.EnqueueAsync("claim", new WorkItemRequest("later") { Priority = 100, NotBefore = DateTimeOffset.UtcNow.AddHours(1) }, None);

        var first = await q.Store.ClaimAsync(new ClaimRequest("claim", "w0", 1, TimeSpan.FromMinutes(1)), None);
        Assert.Equal("urgent", Assert.Single(first.Items).Key);

        var claimers = Enumerable.Range(1, 4).Select(async w =>
        {
            var mine = new List<string>();
            while (true)
            {
                var r = await q.Store.ClaimAsync(new ClaimRequest("claim", $"w{w}", 37, TimeSpan.FromMinutes(1)), None);
                if (r.Items.Count == 0)
                {
                    return mine;
                }

                mine.AddRange(r.Items.Select(i => i.Key));
            }
        });
        var all = (await Task.WhenAll(claimers)).SelectMany(x => x).ToList();
        Assert.Equal(2_000, all.Count);
        Assert.Equal(2_000, all.Distinct().Count());
        Assert.DoesNotContain("later", all);
        var due = await q.Store.NextDueAsync("claim", None);
        Assert.True(due > DateTimeOffset.UtcNow.AddMinutes(59), $"next due {due}");
    }

    [Fact]
    public async Task A_claim_completes_the_previous_batch_and_a_claim_that_lost_its_lease_cannot_complete()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        await q.Store.EnqueueManyAsync("piggy", QueueTestStore.Items(["a", "b", "c"]), None);
        var r1 = await q.Store.ClaimAsync(new ClaimRequest("piggy", "w1", 2, TimeSpan.FromMilliseconds(200)), None);
        Assert.Equal(2, r1.Items.Count);
        var r2 = await q.Store.ClaimAsync(new ClaimRequest("piggy", "w1", 5, TimeSpan.FromMinutes(1)) { Complete = [r1.Items[0].Handle] }, None);
        Assert.Equal(1, r2.Completed);
        Assert.Equal("c", Assert.Single(r2.Items).Key);
        Assert.Equal(1L, await q.CountAsync("queue_done"));

        // r1.Items[1] expires, is rescued and claimed by w2: w1's late completion does nothing.
        await Task.Delay(300);
        Assert.Equal(new RescueResult(1, 0), await q.Store.RescueExpiredAsync("piggy", 5, None));
        var stolen = Assert.Single((await q.Store.ClaimAsync(new ClaimRequest("piggy", "w2", 5, TimeSpan.FromMinutes(1)), None)).Items);
        Assert.Equal(r1.Items[1].Key, stolen.Key);
        Assert.Equal(2, stolen.Attempt);
        Assert.Contains("lease of worker w1 expired", stolen.LastError);
        Assert.Equal(0, await q.Store.CompleteAsync("piggy", "w1", [r1.Items[1].Handle], None));
        Assert.Equal(0, await q.Store.ExtendLeaseAsync("piggy", "w1", [r1.Items[1].Handle], TimeSpan.FromMinutes(1), None));
        Assert.Equal(1, await q.Store.ExtendLeaseAsync("piggy", "w2", [stolen.Handle], TimeSpan.FromMinutes(1), None));
        Assert.Equal(1, await q.Store.CompleteAsync("piggy", "w2", [stolen.Handle], None));
        Assert.Equal(2L, await q.CountAsync("queue_done"));
    }

    [Fact]
    public async Task The_heartbeat_never_waits_on_a_claim_another_statement_has_locked()
    {
        // The worker's own completion locks rows the heartbeat renews; waiting on each other's locks, the two
        // deadlocked and the claim could be the victim. The heartbeat skips a locked row and counts it as held.
        await using var q = await QueueTestStore.CreateAsync(db);
        await q.Store.EnqueueManyAsync("beat", QueueTestStore.Items(["a", "b", "c"]), None);
        var claim = await q.Store.ClaimAsync(new ClaimRequest("beat", "w1", 3, TimeSpan.FromSeconds(30)), None);
        Assert.Equal(3, claim.Items.Count);
        await using var conn = await q.Database.DataSource.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using (var lockB = new Npgsql.NpgsqlCommand($"SELECT 1 FROM \"{q.Schema}\".queue_items WHERE key = 'b' FOR UPDATE", conn, tx))
        {
            await lockB.ExecuteScalarAsync();
        }

        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Equal(3, await q.Store.ExtendLeaseAsync("beat", "w1", claim.Items.Select(i => i.Handle).ToList(), TimeSpan.FromHours(1), wait.Token));
        Assert.Equal("a,c", await db.ScalarAsync<string>($"SELECT string_agg(key, ',' ORDER BY key) FROM \"{q.Schema}\".queue_items WHERE lease_until > now() + interval '30 minutes'"));
        await tx.RollbackAsync();

        // Free again, b is renewed; a claim another worker took is not counted.
        Assert.Equal(2, await q.Store.ExtendLeaseAsync("beat", "w1", claim.Items.Take(2).Select(i => i.Handle).ToList(), TimeSpan.FromHours(1), None));
        Assert.Equal("a,b,c", await db.ScalarAsync<string>($"SELECT string_agg(key, ',' ORDER BY key) FROM \"{q.Schema}\".queue_items WHERE lease_until > now() + interval '30 minutes'"));
        Assert.Equal(0, await q.Store.ExtendLeaseAsync("beat", "w2", claim.Items.Select(i => i.Handle).ToList(), TimeSpan.FromHours(1), None));
    }

    [Fact]
    public async Task A_claim_archives_a_completion_whose_key_is_already_done()
    {
        // The race the claim's plain archive INSERT leaves to its fallback: a key re-enqueued while its earlier
        // completion committed is in queue_items and queue_done at once; completing it again must still work.
        await using var q = await QueueTestStore.CreateAsync(db);
        await q.Store.EnqueueManyAsync("race", QueueTestStore.Items(["k1", "k2"]), None);
        var first = Assert.Single((await q.Store.ClaimAsync(new ClaimRequest("race", "w1", 1, TimeSpan.FromMinutes(1)), None)).Items);
        Assert.Equal("k1", first.Key);
        await db.ExecuteAsync($"""
            INSERT INTO "{q.Schema}".queue_done (queue_id, key, attempts, enqueued_at, completed_at)
            SELECT id, 'k1', 7, now() - interval '2 days', now() - interval '1 day' FROM "{q.Schema}".queues WHERE name = 'race'
            """);

        var next = await q.Store.ClaimAsync(new ClaimRequest("race", "w1", 1, TimeSpan.FromMinutes(1)) { Complete = [first.Handle] }, None);
        Assert.Equal(1, next.Completed);
        Assert.Equal("k2", Assert.Single(next.Items).Key);
        Assert.Equal(1L, await q.CountAsync("queue_done WHERE key = 'k1' AND attempts = 1 AND completed_at > now() - interval '1 minute'"));
        Assert.Equal(1L, await q.CountAsync("queue_items"));

        // The next call takes the fast path again.
        var last = await q.Store.ClaimAsync(new ClaimRequest("race", "w1", 1, TimeSpan.FromMinutes(1)) { Complete = [next.Items[0].Handle] }, None);
        Assert.Equal(1, last.Completed);
        Assert.Empty(last.Items);
        Assert.Equal(2L, await q.CountAsync("queue_done"));
    }

    [Fact]
    public async Task A_rescued_item_its_worker_completes_is_done_and_not_claimed_again_by_the_same_call()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        await q.Store.EnqueueAsync("slow", new WorkItemRequest("a"), None);
        var held = Assert.Single((await q.Store.ClaimAsync(new ClaimRequest("slow", "w1", 5, TimeSpan.FromMilliseconds(100)), None)).Items);
        await Task.Delay(200);
        Assert.Equal(new RescueResult(1, 0), await q.Store.RescueExpiredAsync("slow", 5, None));

        var r = await q.Store.ClaimAsync(new ClaimRequest("slow", "w1", 5, TimeSpan.FromMinutes(1)) { Complete = [held.Handle] }, None);
        Assert.Equal(1, r.Completed);
        Assert.Empty(r.Items);
        Assert.Equal(0L, await q.CountAsync("queue_items"));

        // A failed item goes back to pending with its last owner, and that owner can claim it again.
        await q.Store.EnqueueAsync("slow", new WorkItemRequest("b"), None);
        var b = Assert.Single((await q.Store.ClaimAsync(new ClaimRequest("slow", "w1", 5, TimeSpan.FromMinutes(1)), None)).Items);
        Assert.Equal(new FailResult(1, 0), await q.Store.FailAsync("slow", "w1", 5, [new WorkItemFailure(b.Handle, "boom", TimeSpan.Zero)], None));
        var again = Assert.Single((await q.Store.ClaimAsync(new ClaimRequest("slow", "w1", 5, TimeSpan.FromMinutes(1)), None)).Items);
        Assert.Equal(("b", 2), (again.Key, again.Attempt));
    }

    [Fact]
    public async Task The_v2_migration_upgrades_a_v1_schema_and_is_idempotent()
    {
        var schema = "q_" + Guid.NewGuid().ToString("N")[..10];
        await using (var v1 = new Ingestion.Postgres.Hosting.IngestionDatabase(Microsoft.Extensions.Options.Options.Create(new Ingestion.Postgres.Hosting.PostgresIngestionOptions { ConnectionString = db.ConnectionString, Schema = schema }), [Ingestion.Postgres.Queue.QueueMigrations.V1]))
        {
            await v1.EnsureMigratedAsync(None);
        }

        await using var q = await QueueTestStore.CreateAsync(db, schema);
        var indexes = $"SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = 'queue_done'";
        Assert.Equal("queue_done_completed_brin,queue_done_pkey", await db.ScalarAsync<string>(indexes));
        await db.ExecuteAsync(Ingestion.Postgres.Queue.QueueMigrations.V2.Sql.Replace("{schema}", $"\"{schema}\"", StringComparison.Ordinal));
        Assert.Equal("queue_done_completed_brin,queue_done_pkey", await db.ScalarAsync<string>(indexes));

        // Pruning and the throughput figure still find done rows by completion time.
        await q.Store.EnqueueManyAsync("brin", QueueTestStore.Items(["x", "y"]), None);
        var c = await q.Store.ClaimAsync(new ClaimRequest("brin", "w", 5, TimeSpan.FromMinutes(1)), None);
        Assert.Equal(2, await q.Store.CompleteAsync("brin", "w", c.Items.Select(i => i.Handle).ToArray(), None));
        Assert.Equal(2 / 60.0, (await q.Store.GetStatsAsync("brin", None)).ThroughputPerSecond, 6);
        Assert.Equal(0, await q.Store.PruneAsync("brin", DateTimeOffset.UtcNow.AddMinutes(-1), None));
        Assert.Equal(2, await q.Store.PruneAsync("brin", DateTimeOffset.UtcNow.AddMinutes(1), None));
    }

    [Fact]
    public async Task Failures_back_off_then_die_with_their_error_and_dead_items_can_be_listed_and_requeued()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        await q.Store.EnqueueAsync("poison", new WorkItemRequest("bad") { Payload = "p" }, None);
        WorkItem? backedOff = null;
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var item = backedOff ?? Assert.Single((await q.Store.ClaimAsync(new ClaimRequest("poison", "w", 1, TimeSpan.FromMinutes(1)), None)).Items);
            Assert.Equal(attempt, item.Attempt);
            var delay = attempt < 3 ? TimeSpan.FromSeconds(2) : TimeSpan.Zero;
            var result = await q.Store.FailAsync("poison", "w", 3, [new WorkItemFailure(item.Handle, $"boom {attempt}", delay)], None);
            Assert.Equal(attempt < 3 ? new FailResult(1, 0) : new FailResult(0, 1), result);
            if (attempt < 3)
            {
                // Backing off: not claimable before its delay.
                Assert.Empty((await q.Store.ClaimAsync(new ClaimRequest("poison", "w", 1, TimeSpan.FromMinutes(1)), None)).Items);
                var stats = await q.Store.GetStatsAsync("poison", None);
                Assert.Equal((1L, 1L, 0L), (stats.Pending, stats.Failed, stats.Dead));

                // Claimable again once the delay has passed (polled: no assumption on how long the machine takes).
                var until = DateTime.UtcNow.AddSeconds(20);
                backedOff = null;
                while (backedOff is null && DateTime.UtcNow < until)
                {
                    await Task.Delay(100);
                    backedOff = (await q.Store.ClaimAsync(new ClaimRequest("poison", "w", 1, TimeSpan.FromMinutes(1)), None)).Items.SingleOrDefault();
                }

                Assert.NotNull(backedOff);
            }
        }

        Assert.Empty((await q.Store.ClaimAsync(new ClaimRequest("poison", "w", 1, TimeSpan.FromMinutes(1)), None)).Items);
        var dead = Assert.Single(await q.Store.ListDeadAsync("poison", 10, None));
        Assert.Equal(("bad", "p", 3, "boom 3"), (dead.Key, dead.Payload, dead.Attempts, dead.LastError));
        Assert.False(await q.Store.EnqueueAsync("poison", new WorkItemRequest("bad"), None));
        Assert.Equal(1L, (await q.Store.GetStatsAsync("poison", None)).Dead);

        Assert.Equal(1, await q.Store.RequeueDeadAsync("poison", ["bad", "unknown"], None));
        var again = Assert.Single((await q.Store.ClaimAsync(new ClaimRequest("poison", "w", 1, TimeSpan.FromMinutes(1)), None)).Items);
        Assert.Equal(1, again.Attempt);
        Assert.Equal("boom 3", again.LastError);
    }

    [Fact]
    public async Task An_item_whose_worker_keeps_dying_ends_dead_and_release_does_not_count_an_attempt()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        await q.Store.EnqueueAsync("crashy", new WorkItemRequest("x"), None);
        var claim = Assert.Single((await q.Store.ClaimAsync(new ClaimRequest("crashy", "w", 1, TimeSpan.FromMinutes(1)), None)).Items);
        Assert.Equal(1, await q.Store.ReleaseAsync("crashy", "w", [claim.Handle], None));
        for (var attempt = 1; attempt <= 2; attempt++)
        {
            var item = Assert.Single((await q.Store.ClaimAsync(new ClaimRequest("crashy", "w", 1, TimeSpan.FromMilliseconds(100)), None)).Items);
            Assert.Equal(attempt, item.Attempt);
            await Task.Delay(150);
            Assert.Equal(attempt < 2 ? new RescueResult(1, 0) : new RescueResult(0, 1), await q.Store.RescueExpiredAsync("crashy", 2, None));
        }

        Assert.Contains("expired", Assert.Single(await q.Store.ListDeadAsync("crashy", 10, None)).LastError);
    }

    [Fact]
    public async Task Stats_count_every_state()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        await q.Store.EnqueueManyAsync("stats", QueueTestStore.Items(Enumerable.Range(0, 10).Select(i => $"s{i}")), None);
        var claimed = (await q.Store.ClaimAsync(new ClaimRequest("stats", "w", 6, TimeSpan.FromMinutes(1)), None)).Items;
        await q.Store.CompleteAsync("stats", "w", claimed.Take(3).Select(i => i.Handle).ToList(), None);
        await q.Store.FailAsync("stats", "w", 1, [new WorkItemFailure(claimed[3].Handle, "dead", TimeSpan.Zero)], None);
        await q.Store.FailAsync("stats", "w", 5, [new WorkItemFailure(claimed[4].Handle, "retry", TimeSpan.FromHours(1))], None);
        var s = await q.Store.GetStatsAsync("stats", None);
        Assert.Equal(("stats", 5L, 1L, 3L, 1L, 1L), (s.Queue, s.Pending, s.Running, s.Done, s.Failed, s.Dead));
        Assert.NotNull(s.OldestPendingAge);
        Assert.Equal(3 / 60.0, s.ThroughputPerSecond, 6);
        var empty = await q.Store.GetStatsAsync("empty", None);
        Assert.Equal((0L, 0L, null), (empty.Pending, empty.Done, empty.OldestPendingAge));
    }

    [Fact]
    public async Task Reconcile_enqueues_what_storage_has_and_the_queue_lacks_and_reports_the_reverse()
    {
        await using var q = await QueueTestStore.CreateAsync(db);

        // The queue knows: done "f/0001", dead "f/0002", pending f/0003..f/0999 (minus f/0500, "lost" by a TRUNCATE), and two orphans.
        await q.Store.EnqueueManyAsync("files", QueueTestStore.Items(Enumerable.Range(1, 999).Where(i => i != 500).Select(i => $"f/{i:D4}").Concat(["gone/1", "gone/2"])), None);
        var c = (await q.Store.ClaimAsync(new ClaimRequest("files", "w", 2, TimeSpan.FromMinutes(1)), None)).Items;
        await q.Store.CompleteAsync("files", "w", [c.Single(i => i.Key == "f/0001").Handle], None);
        await q.Store.FailAsync("files", "w", 1, [new WorkItemFailure(c.Single(i => i.Key == "f/0002").Handle, "x", TimeSpan.Zero)], None);

        // Storage: f/0001..f/2500 in no particular order, with a repeated key.
        var storage = Enumerable.Range(1, 2500).Select(i => $"f/{i:D4}").Reverse().Append("f/0700").ToList();
        var dry = await q.Store.ReconcileAsync("files", QueueTestStore.Keys(storage), new ReconcileOptions { BatchSize = 300, DryRun = true }, None);
        Assert.Equal((2501L, 1502L, 0L, 2L), (dry.StorageKeys, dry.MissingFromQueue, dry.Enqueued, dry.MissingFromStorage));
        Assert.Equal(["gone/1", "gone/2"], dry.MissingFromStorageSample);

        var real = await q.Store.ReconcileAsync("files", QueueTestStore.Keys(storage), new ReconcileOptions { BatchSize = 300, MaxReported = 1 }, None);
        Assert.Equal((2501L, 1502L, 1502L, 2L), (real.StorageKeys, real.MissingFromQueue, real.Enqueued, real.MissingFromStorage));
        Assert.Equal(["gone/1"], real.MissingFromStorageSample);
        Assert.Equal(1L, await q.CountAsync("queue_items WHERE key = 'f/0500'"));

        var again = await q.Store.ReconcileAsync("files", QueueTestStore.Keys(storage), new ReconcileOptions { BatchSize = 1000 }, None);
        Assert.Equal((0L, 0L), (again.MissingFromQueue, again.Enqueued));
        Assert.Equal(2500L + 2, await q.CountAsync("queue_items") + await q.CountAsync("queue_done"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname LIKE 'ingestion_reconcile%' AND relpersistence = 't'"));
    }
}
