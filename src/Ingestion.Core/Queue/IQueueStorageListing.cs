namespace Ingestion.Queue;

/// <summary>
/// Lists the keys in the storage a queue is fed from (a bucket, a folder), for reconciliation
/// (<see cref="IWorkQueueStore.ReconcileAsync"/>): register one per queue in the container and the
/// <c>queue reconcile</c> command and endpoint use it.
/// </summary>
public interface IQueueStorageListing
{
    /// <summary>The queue this storage feeds.</summary>
    string Queue { get; }

    /// <summary>Streams every key in storage (any order).</summary>
    /// <param name="cancellationToken">Cancels the listing.</param>
    /// <returns>The keys.</returns>
    IAsyncEnumerable<string> ListAsync(CancellationToken cancellationToken);
}
