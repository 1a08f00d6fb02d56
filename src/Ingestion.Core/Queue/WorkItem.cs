namespace Ingestion.Queue;

/// <summary>A unit of work to put on a queue: its idempotency key and what the handler needs.</summary>
/// <param name="Key">The idempotency key (a file path, a URL): a queue holds a key at most once.</param>
public sealed record WorkItemRequest(string Key)
{
    /// <summary>Free-form data for the handler (JSON, a path...); <see langword="null"/> when the key says it all.</summary>
    public string? Payload { get; init; }

    /// <summary>Higher runs first; items of equal priority run in order of their scheduled time.</summary>
    public int Priority { get; init; }

    /// <summary>Do not run before this time; <see langword="null"/> runs as soon as a worker is free.</summary>
    public DateTimeOffset? NotBefore { get; init; }
}

/// <summary>An item claimed by a worker, handed to an <see cref="IWorkItemHandler"/>.</summary>
public sealed class WorkItem
{
    /// <summary>Creates a claimed item.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="key">The item's key.</param>
    /// <param name="attempt">The attempt number, from 1.</param>
    public WorkItem(string queue, string key, int attempt)
    {
        Queue = queue;
        Key = key;
        Attempt = attempt;
    }

    /// <summary>The queue the item came from.</summary>
    public string Queue { get; }

    /// <summary>The item's idempotency key.</summary>
    public string Key { get; }

    /// <summary>This attempt's number, from 1 (2 and more are retries or rescues).</summary>
    public int Attempt { get; }

    /// <summary>The payload given at enqueue, if any.</summary>
    public string? Payload { get; init; }

    /// <summary>The priority given at enqueue.</summary>
    public int Priority { get; init; }

    /// <summary>When the item was enqueued.</summary>
    public DateTimeOffset EnqueuedAt { get; init; }

    /// <summary>The error of the previous attempt, when this is a retry.</summary>
    public string? LastError { get; init; }

    /// <summary>The handle that identifies this claim when completing, failing or releasing it.</summary>
    public WorkItemHandle Handle => new(Key, Attempt);
}

/// <summary>Identifies one claim of an item: its key and attempt number (a later claim of the same key has a higher attempt).</summary>
/// <param name="Key">The item's key.</param>
/// <param name="Attempt">The attempt number of the claim.</param>
public readonly record struct WorkItemHandle(string Key, int Attempt);

/// <summary>A failed attempt, to record with its error and the delay before the next attempt.</summary>
/// <param name="Handle">The claim that failed.</param>
/// <param name="Error">The error, kept on the item (and shown for dead items).</param>
/// <param name="RetryDelay">How long to wait before the item may run again.</param>
public sealed record WorkItemFailure(WorkItemHandle Handle, string Error, TimeSpan RetryDelay);

/// <summary>A request to claim items, optionally completing earlier claims in the same round trip.</summary>
/// <param name="Queue">The queue.</param>
/// <param name="Owner">The worker's identity, recorded on the lease.</param>
/// <param name="MaxItems">The most items to claim (0 only completes).</param>
/// <param name="Lease">How long the claim holds before another worker may rescue the item.</param>
public sealed record ClaimRequest(string Queue, string Owner, int MaxItems, TimeSpan Lease)
{
    /// <summary>Earlier claims of this owner that succeeded: they are completed atomically with the claim.</summary>
    public IReadOnlyCollection<WorkItemHandle> Complete { get; init; } = [];
}

/// <summary>The outcome of a claim.</summary>
/// <param name="Items">The claimed items, best first.</param>
/// <param name="Completed">How many of <see cref="ClaimRequest.Complete"/> were completed (a claim that lost its lease is not).</param>
public sealed record ClaimResult(IReadOnlyList<WorkItem> Items, int Completed);

/// <summary>The outcome of recording failures.</summary>
/// <param name="Retrying">Items put back to wait for their retry.</param>
/// <param name="Dead">Items that exhausted their attempts and are now dead.</param>
public sealed record FailResult(int Retrying, int Dead);

/// <summary>The outcome of rescuing items whose lease expired (their worker died or hung).</summary>
/// <param name="Requeued">Items made ready again.</param>
/// <param name="Dead">Items that had exhausted their attempts and are now dead.</param>
public sealed record RescueResult(int Requeued, int Dead);

/// <summary>The outcome of a bulk enqueue.</summary>
/// <param name="Read">Items read from the input.</param>
/// <param name="Enqueued">Items added; the others had a key already known to the queue (or repeated in the input).</param>
public sealed record BulkEnqueueResult(long Read, long Enqueued)
{
    /// <summary>Items not added because their key was already known.</summary>
    public long AlreadyKnown => Read - Enqueued;
}

/// <summary>Counts of a queue.</summary>
public sealed record WorkQueueStats
{
    /// <summary>The queue.</summary>
    public required string Queue { get; init; }

    /// <summary>Items waiting to run (ready now or scheduled later), including failed items waiting for their retry.</summary>
    public long Pending { get; init; }

    /// <summary>Items claimed by a worker.</summary>
    public long Running { get; init; }

    /// <summary>Items completed and still remembered (not yet pruned).</summary>
    public long Done { get; init; }

    /// <summary>Pending items that failed at least once and wait for a retry.</summary>
    public long Failed { get; init; }

    /// <summary>Items that exhausted their attempts.</summary>
    public long Dead { get; init; }

    /// <summary>The age of the oldest pending item; <see langword="null"/> when none is pending.</summary>
    public TimeSpan? OldestPendingAge { get; init; }

    /// <summary>Items completed during the last minute, per second.</summary>
    public double ThroughputPerSecond { get; init; }
}

/// <summary>An item that exhausted its attempts.</summary>
/// <param name="Key">The key.</param>
/// <param name="Payload">The payload.</param>
/// <param name="Attempts">Attempts made.</param>
/// <param name="LastError">The last attempt's error.</param>
/// <param name="FailedAt">When the last attempt failed.</param>
/// <param name="EnqueuedAt">When the item was enqueued.</param>
public sealed record DeadWorkItem(string Key, string? Payload, int Attempts, string? LastError, DateTimeOffset? FailedAt, DateTimeOffset EnqueuedAt);

/// <summary>Settings of a reconciliation between a storage listing and a queue.</summary>
public sealed record ReconcileOptions
{
    /// <summary>Keys compared (and enqueued) per batch; memory holds one batch.</summary>
    public int BatchSize { get; init; } = 10_000;

    /// <summary>Only count the differences; enqueue nothing.</summary>
    public bool DryRun { get; init; }

    /// <summary>The priority of the keys enqueued.</summary>
    public int Priority { get; init; }

    /// <summary>The most keys queued-but-missing-from-storage returned in <see cref="ReconcileResult.MissingFromStorageSample"/> (all are counted).</summary>
    public int MaxReported { get; init; } = 1000;

    /// <summary>Returns the problems with these settings.</summary>
    /// <returns>The problems; empty when valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (BatchSize is < 1 or > 1_000_000)
        {
            errors.Add($"ReconcileOptions.BatchSize must be between 1 and 1000000 (was {BatchSize}).");
        }

        if (MaxReported < 0)
        {
            errors.Add($"ReconcileOptions.MaxReported must not be negative (was {MaxReported}).");
        }

        return errors;
    }
}

/// <summary>The outcome of a reconciliation.</summary>
/// <param name="StorageKeys">Keys read from the storage listing.</param>
/// <param name="MissingFromQueue">Storage keys the queue did not know (neither pending, running, dead nor done).</param>
/// <param name="Enqueued">Keys enqueued (0 in a dry run; fewer than missing when a concurrent producer enqueued some first).</param>
/// <param name="MissingFromStorage">Keys the queue knows that the listing did not contain.</param>
/// <param name="MissingFromStorageSample">The first of those keys, in key order, up to <see cref="ReconcileOptions.MaxReported"/>.</param>
public sealed record ReconcileResult(long StorageKeys, long MissingFromQueue, long Enqueued, long MissingFromStorage, IReadOnlyList<string> MissingFromStorageSample);
