using Microsoft.Extensions.Logging;

namespace Ingestion.Queue;

internal static partial class QueueLog
{
    [LoggerMessage(7000, LogLevel.Information, "Worker {Owner} of queue {Queue} started: concurrency {Concurrency}, batch {BatchSize}")]
    public static partial void Started(ILogger logger, string queue, string owner, int concurrency, int batchSize);

    [LoggerMessage(7001, LogLevel.Information, "Worker {Owner} of queue {Queue} stopped after {Processed} items ({Failures} failed attempts)")]
    public static partial void Stopped(ILogger logger, string queue, string owner, long processed, long failures);

    [LoggerMessage(7002, LogLevel.Warning, "Queue {Queue}: item {Key} failed attempt {Attempt}: {Error}")]
    public static partial void ItemFailed(ILogger logger, string queue, string key, int attempt, string error);

    [LoggerMessage(7003, LogLevel.Error, "Queue {Queue}: {Count} items exhausted their attempts and are dead")]
    public static partial void ItemsDead(ILogger logger, string queue, int count);

    [LoggerMessage(7004, LogLevel.Warning, "Queue {Queue}: rescued {Requeued} items whose lease expired ({Dead} now dead)")]
    public static partial void Rescued(ILogger logger, string queue, int requeued, int dead);

    [LoggerMessage(7005, LogLevel.Error, "Queue {Queue}: the worker loop failed; retrying in {DelayMs} ms")]
    public static partial void PumpFailed(ILogger logger, Exception exception, string queue, double delayMs);

    [LoggerMessage(7006, LogLevel.Warning, "Queue {Queue}: the heartbeat failed; leases may expire")]
    public static partial void HeartbeatFailed(ILogger logger, Exception exception, string queue);

    [LoggerMessage(7007, LogLevel.Warning, "Queue {Queue}: {Lost} of {Held} held items lost their lease (rescued by another worker)")]
    public static partial void LeasesLost(ILogger logger, string queue, int lost, int held);

    [LoggerMessage(7008, LogLevel.Warning, "Queue {Queue}: the shutdown grace period is over; cancelling {Active} in-flight items")]
    public static partial void GraceOver(ILogger logger, string queue, int active);

    [LoggerMessage(7009, LogLevel.Error, "Queue {Queue}: handlers ignored cancellation; their items will be rescued when their lease expires")]
    public static partial void HandlersIgnoredCancellation(ILogger logger, string queue);

    [LoggerMessage(7010, LogLevel.Information, "Queue {Queue}: returned {Count} unfinished items to the queue")]
    public static partial void Released(ILogger logger, string queue, int count);

    [LoggerMessage(7011, LogLevel.Error, "Queue {Queue}: the final flush failed; {Held} held items will be rescued when their lease expires")]
    public static partial void FinalFlushFailed(ILogger logger, Exception exception, string queue, int held);
}
