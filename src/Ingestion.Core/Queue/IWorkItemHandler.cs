namespace Ingestion.Queue;

/// <summary>
/// Processes items of a queue (registered with <c>AddWorkQueue&lt;THandler&gt;(queue, concurrency)</c>).
/// Delivery is at least once: an item whose worker died is processed again, so a handler must be
/// idempotent (upsert by the item's key). Returning completes the item; throwing fails the attempt
/// (retried with back-off, then dead with the error). A new handler is resolved in its own scope per item.
/// </summary>
public interface IWorkItemHandler
{
    /// <summary>Processes one item.</summary>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Cancelled when the host stops and the grace period is over: the item then returns to the queue.</param>
    /// <returns>A task that completes when the item is processed.</returns>
    Task HandleAsync(WorkItem item, CancellationToken cancellationToken);
}
