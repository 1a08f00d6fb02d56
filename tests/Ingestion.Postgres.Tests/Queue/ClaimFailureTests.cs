using System.Collections.Concurrent;
using Ingestion.Postgres.Queue;
using Ingestion.Queue;
using Ingestion.TestSupport;

namespace Ingestion.Postgres.Tests.Queue;

/// <summary>
/// A worker's completions ride on its next claim. When that claim fails (a timeout, a dropped connection), the
/// completions must be kept for the next call: dropped, their items would stay held by a live worker whose
/// heartbeat renews their leases, so they would never be completed nor rescued.
/// </summary>
public class ClaimFailureTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task Completions_on_a_claim_that_failed_are_sent_again_and_every_item_ends_done_once()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        await q.Store.EnqueueManyAsync("flaky", QueueTestStore.Items(Enumerable.Range(0, 200).Select(i => $"k{i:D3}")), CancellationToken.None);

        // The first claim carrying completions fails before it reaches the server; the second reaches it, is
        // applied, and its answer is lost. Both are what a dropped connection does.
        var store = new FailingClaims(q.Store);
        var handled = new ConcurrentDictionary<string, int>();
        var options = new WorkQueueOptions
        {
            Concurrency = 2,
            BatchSize = 10,
            Lease = TimeSpan.FromSeconds(3),
            RescueInterval = TimeSpan.FromMilliseconds(500),
            PollInterval = TimeSpan.FromMinutes(5),
        };
        await using var worker = new WorkQueueWorker("flaky", options, store, (item, ct) =>
        {
            handled.AddOrUpdate(item.Key, 1, (_, n) => n + 1);
            return Task.CompletedTask;
        });
        await worker.StartAsync(CancellationToken.None);

        // The heartbeat renews the leases of the items whose completion failed: only a completion sent again
        // can finish them. The items the lost answer claimed are unknown to the worker: rescued after their lease.
        await WorkQueueWorkerTests.WaitUntilAsync(async () => (await q.Store.GetStatsAsync("flaky", CancellationToken.None)).Done == 200, 30);
        await worker.StopAsync(CancellationToken.None);

        Assert.Equal(2, store.Failures);
        Assert.Equal(200, handled.Count);
        Assert.All(handled.Values, n => Assert.Equal(1, n));
        var stats = await q.Store.GetStatsAsync("flaky", CancellationToken.None);
        Assert.Equal((0L, 0L, 200L, 0L), (stats.Pending, stats.Running, stats.Done, stats.Dead));
        Assert.NotEmpty(store.LostClaim);
        Assert.Equal(string.Join(",", store.LostClaim.Order(StringComparer.Ordinal)), await q.Db.ScalarAsync<string>($"SELECT coalesce(string_agg(key, ',' ORDER BY key COLLATE \"C\"), '') FROM \"{q.Schema}\".queue_done WHERE attempts <> 1"));
    }

    /// <summary>The real store, with two claims that carry completions made to fail.</summary>
    private sealed class FailingClaims(PostgresWorkQueue inner) : IWorkQueueStore
    {
        private int _claimsWithCompletions;

        public int Failures { get; private set; }

        public IReadOnlyList<string> LostClaim { get; private set; } = [];

        public async Task<ClaimResult> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken)
        {
            if (request.Complete.Count > 0)
            {
                switch (Interlocked.Increment(ref _claimsWithCompletions))
                {
                    case 1:
                        Failures++;
                        throw new TimeoutException("injected: the claim did not reach the server");
                    case 2:
                        LostClaim = [.. (await inner.ClaimAsync(request, cancellationToken)).Items.Select(i => i.Key)];
                        Failures++;
                        throw new IOException("injected: the connection dropped before the claim's answer arrived");
                }
            }

            return await inner.ClaimAsync(request, cancellationToken);
        }

        public Task<bool> EnqueueAsync(string queue, WorkItemRequest item, CancellationToken cancellationToken) => inner.EnqueueAsync(queue, item, cancellationToken);

        public Task<BulkEnqueueResult> EnqueueManyAsync(string queue, IAsyncEnumerable<WorkItemRequest> items, CancellationToken cancellationToken) => inner.EnqueueManyAsync(queue, items, cancellationToken);

        public Task<int> CompleteAsync(string queue, string owner, IReadOnlyCollection<WorkItemHandle> items, CancellationToken cancellationToken) => inner.CompleteAsync(queue, owner, items, cancellationToken);

        public Task<FailResult> FailAsync(string queue, string owner, int maxAttempts, IReadOnlyCollection<WorkItemFailure> failures, CancellationToken cancellationToken) => inner.FailAsync(queue, owner, maxAttempts, failures, cancellationToken);

        public Task<int> ReleaseAsync(string queue, string owner, IReadOnlyCollection<WorkItemHandle> items, CancellationToken cancellationToken) => inner.ReleaseAsync(queue, owner, items, cancellationToken);

        public Task<int> ExtendLeaseAsync(string queue, string owner, IReadOnlyCollection<WorkItemHandle> items, TimeSpan lease, CancellationToken cancellationToken) => inner.ExtendLeaseAsync(queue, owner, items, lease, cancellationToken);

        public Task<RescueResult> RescueExpiredAsync(string queue, int maxAttempts, CancellationToken cancellationToken) => inner.RescueExpiredAsync(queue, maxAttempts, cancellationToken);

        public Task<DateTimeOffset?> NextDueAsync(string queue, CancellationToken cancellationToken) => inner.NextDueAsync(queue, cancellationToken);

        public Task<IAsyncDisposable> SubscribeAsync(string queue, Action onWork, CancellationToken cancellationToken) => inner.SubscribeAsync(queue, onWork, cancellationToken);

        public Task<WorkQueueStats> GetStatsAsync(string queue, CancellationToken cancellationToken) => inner.GetStatsAsync(queue, cancellationToken);

        public Task<IReadOnlyList<DeadWorkItem>> ListDeadAsync(string queue, int limit, CancellationToken cancellationToken) => inner.ListDeadAsync(queue, limit, cancellationToken);

        public Task<int> RequeueDeadAsync(string queue, IReadOnlyCollection<string>? keys, CancellationToken cancellationToken) => inner.RequeueDeadAsync(queue, keys, cancellationToken);

        public Task<long> PruneAsync(string queue, DateTimeOffset completedBefore, CancellationToken cancellationToken) => inner.PruneAsync(queue, completedBefore, cancellationToken);

        public Task<ReconcileResult> ReconcileAsync(string queue, IAsyncEnumerable<string> storageKeys, ReconcileOptions options, CancellationToken cancellationToken) => inner.ReconcileAsync(queue, storageKeys, options, cancellationToken);
    }
}
