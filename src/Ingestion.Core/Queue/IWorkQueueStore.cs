namespace Ingestion.Queue;

/// <summary>
/// A durable work queue: named queues of items keyed for idempotency, claimed by workers under leases.
/// <c>Ingestion.Postgres</c> implements it (<c>UsePostgresQueue()</c>); the worker service of
/// <c>AddWorkQueue</c> drives it. Every method is safe to call from several processes at once.
/// </summary>
public interface IWorkQueueStore
{
    /// <summary>Adds an item unless its key is already known to the queue (pending, running, dead or done).</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="true"/> when added; <see langword="false"/> when the key was already known (nothing changed).</returns>
    Task<bool> EnqueueAsync(string queue, WorkItemRequest item, CancellationToken cancellationToken);

    /// <summary>Adds many items in bulk (for backfills), skipping keys already known and keys repeated in the input.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="items">The items, streamed.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were read and how many added.</returns>
    Task<BulkEnqueueResult> EnqueueManyAsync(string queue, IAsyncEnumerable<WorkItemRequest> items, CancellationToken cancellationToken);

    /// <summary>
    /// Completes <see cref="ClaimRequest.Complete"/> and claims up to <see cref="ClaimRequest.MaxItems"/> ready items
    /// (highest priority first, then earliest scheduled), skipping items other workers hold, in one atomic step.
    /// Each claimed item's attempt count goes up by one.
    /// </summary>
    /// <param name="request">The claim.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The items claimed and the number completed.</returns>
    Task<ClaimResult> ClaimAsync(ClaimRequest request, CancellationToken cancellationToken);

    /// <summary>Completes claims: the items leave the queue and their keys stay known until pruned.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="owner">The worker that claimed them.</param>
    /// <param name="items">The claims.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were completed; a claim whose item was rescued and claimed again by another worker is not.</returns>
    Task<int> CompleteAsync(string queue, string owner, IReadOnlyCollection<WorkItemHandle> items, CancellationToken cancellationToken);

    /// <summary>Records failed attempts: each item waits its retry delay, or becomes dead when it reached <paramref name="maxAttempts"/>.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="owner">The worker that claimed them.</param>
    /// <param name="maxAttempts">Attempts after which an item is dead.</param>
    /// <param name="failures">The failures.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many are retrying and how many are dead.</returns>
    Task<FailResult> FailAsync(string queue, string owner, int maxAttempts, IReadOnlyCollection<WorkItemFailure> failures, CancellationToken cancellationToken);

    /// <summary>Returns unfinished claims to the queue at once, without counting the attempt (used at shutdown).</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="owner">The worker that claimed them.</param>
    /// <param name="items">The claims.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were returned.</returns>
    Task<int> ReleaseAsync(string queue, string owner, IReadOnlyCollection<WorkItemHandle> items, CancellationToken cancellationToken);

    /// <summary>Renews the leases of claims still being processed (the heartbeat).</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="owner">The worker that claimed them.</param>
    /// <param name="items">The claims.</param>
    /// <param name="lease">The new lease, from now.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>
    /// How many of the claims this worker still holds (fewer when some were already rescued). A store may skip a
    /// claim that another statement of this worker is completing or failing at that moment, rather than wait on it,
    /// and count it as held: its lease is renewed by the next call if it is still there.
    /// </returns>
    Task<int> ExtendLeaseAsync(string queue, string owner, IReadOnlyCollection<WorkItemHandle> items, TimeSpan lease, CancellationToken cancellationToken);

    /// <summary>Makes items whose lease expired ready again (their worker died), or dead when they reached <paramref name="maxAttempts"/>.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="maxAttempts">Attempts after which an item is dead.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were requeued and how many are dead.</returns>
    Task<RescueResult> RescueExpiredAsync(string queue, int maxAttempts, CancellationToken cancellationToken);

    /// <summary>The earliest time a pending item of the queue becomes ready.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The time, or <see langword="null"/> when nothing is pending.</returns>
    Task<DateTimeOffset?> NextDueAsync(string queue, CancellationToken cancellationToken);

    /// <summary>Calls <paramref name="onWork"/> whenever new work may be ready in the queue (enqueues, rescues, requeues), from any process.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="onWork">The callback; it must be quick and must not throw.</param>
    /// <param name="cancellationToken">Cancels the subscription set-up.</param>
    /// <returns>The subscription; dispose it to stop.</returns>
    Task<IAsyncDisposable> SubscribeAsync(string queue, Action onWork, CancellationToken cancellationToken);

    /// <summary>Counts of the queue.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The counts.</returns>
    Task<WorkQueueStats> GetStatsAsync(string queue, CancellationToken cancellationToken);

    /// <summary>Lists dead items, most recently failed first.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="limit">The most items to return.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The dead items.</returns>
    Task<IReadOnlyList<DeadWorkItem>> ListDeadAsync(string queue, int limit, CancellationToken cancellationToken);

    /// <summary>Makes dead items ready again with a fresh attempt count.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="keys">The keys to requeue, or <see langword="null"/> for every dead item of the queue.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were requeued.</returns>
    Task<int> RequeueDeadAsync(string queue, IReadOnlyCollection<string>? keys, CancellationToken cancellationToken);

    /// <summary>Forgets completed items finished before a time (their keys may then be enqueued again).</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="completedBefore">The cut-off.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were forgotten.</returns>
    Task<long> PruneAsync(string queue, DateTimeOffset completedBefore, CancellationToken cancellationToken);

    /// <summary>
    /// Compares a storage listing with the queue: keys in storage the queue does not know are enqueued in
    /// batches; keys the queue knows that are not in storage are counted and reported. Memory stays bounded
    /// by one batch whatever the listing's size.
    /// </summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="storageKeys">Every key in storage, streamed (any order; duplicates are ignored).</param>
    /// <param name="options">Batch size, dry run, priority of new items.</param>
    /// <param name="cancellationToken">Cancels the call; batches already enqueued stay enqueued.</param>
    /// <returns>The counts.</returns>
    Task<ReconcileResult> ReconcileAsync(string queue, IAsyncEnumerable<string> storageKeys, ReconcileOptions options, CancellationToken cancellationToken);
}
