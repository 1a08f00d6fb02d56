using System.Globalization;
using Ingestion.Postgres.Queue;
using Ingestion.Queue;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.Sample.Host.Queue;

/// <summary><c>queue run</c>: lists the document folder, enqueues every path (known paths are skipped), lets the workers drain the queue, prints the counts.</summary>
public sealed class QueueRunCommand : ISampleCommand
{
    public string Name => "queue run";

    public string Description => "enqueue the bundled documents folder and let the workers process it into sample_documents";

    public async Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        var store = host.Services.GetRequiredService<PostgresWorkQueue>();
        var folder = host.Services.GetRequiredService<DocumentFolder>();
        var listed = await store.EnqueueManyAsync(QueueSampleFeature.QueueName, Requests(folder), cancellationToken);
        Console.WriteLine($"Listed {listed.Read} documents in {folder.Root}: {listed.Enqueued} enqueued, {listed.AlreadyKnown} already known to the queue.");
        await host.StartAsync(cancellationToken);
        try
        {
            WorkQueueStats stats;
            do
            {
                await Task.Delay(200, cancellationToken);
                stats = await store.GetStatsAsync(QueueSampleFeature.QueueName, cancellationToken);
            }
            while (stats.Pending + stats.Running > 0);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }

        await QueueStatsCommand.PrintAsync(host, cancellationToken);
        var table = host.Services.GetRequiredService<DocumentTable>();
        await table.EnsureAsync(cancellationToken);
        await using var cmd = table.Database.DataSource.CreateCommand($"SELECT count(*) FROM {table.Name}");
        Console.WriteLine($"{table.Name} holds {(long)(await cmd.ExecuteScalarAsync(cancellationToken))!} documents.");
        return 0;
    }

    private static async IAsyncEnumerable<WorkItemRequest> Requests(DocumentFolder folder)
    {
        await foreach (var key in folder.ListAsync())
        {
            yield return new WorkItemRequest(key);
        }
    }
}

/// <summary><c>queue reconcile [--dry-run]</c>: compares the folder listing with the queue; enqueues what is missing, reports what the folder lost.</summary>
public sealed class QueueReconcileCommand : ISampleCommand
{
    public string Name => "queue reconcile";

    public string Description => "enqueue documents of the folder the queue does not know, report queued keys missing from the folder; --dry-run";

    public async Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        var store = host.Services.GetRequiredService<PostgresWorkQueue>();
        var folder = host.Services.GetRequiredService<DocumentFolder>();
        var dryRun = args.Contains("--dry-run");
        var r = await store.ReconcileAsync(QueueSampleFeature.QueueName, folder.ListAsync(), new ReconcileOptions { DryRun = dryRun, MaxReported = 20 }, cancellationToken);
        Console.WriteLine($"Storage keys: {r.StorageKeys}; missing from the queue: {r.MissingFromQueue}; enqueued: {r.Enqueued}{(dryRun ? " (dry run)" : string.Empty)}; queued but missing from storage: {r.MissingFromStorage}");
        foreach (var k in r.MissingFromStorageSample)
        {
            Console.WriteLine($"  missing from storage: {k}");
        }

        return r.MissingFromStorage > 0 ? 1 : 0;
    }
}

/// <summary><c>queue stats</c>: counts of the documents queue and its dead items.</summary>
public sealed class QueueStatsCommand : ISampleCommand
{
    public string Name => "queue stats";

    public string Description => "print the documents queue's counts and dead items";

    public async Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        await PrintAsync(host, cancellationToken);
        return 0;
    }

    /// <summary>Prints the counts and the dead items.</summary>
    public static async Task PrintAsync(IHost host, CancellationToken cancellationToken)
    {
        var store = host.Services.GetRequiredService<PostgresWorkQueue>();
        var s = await store.GetStatsAsync(QueueSampleFeature.QueueName, cancellationToken);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Queue {s.Queue}: pending={s.Pending} running={s.Running} done={s.Done} failed={s.Failed} dead={s.Dead} oldest_pending_s={s.OldestPendingAge?.TotalSeconds:0.0} throughput_per_s={s.ThroughputPerSecond:0.00}"));
        foreach (var d in await store.ListDeadAsync(QueueSampleFeature.QueueName, 20, cancellationToken))
        {
            Console.WriteLine($"  dead: {d.Key} after {d.Attempts} attempts: {d.LastError}");
        }
    }
}

/// <summary><c>queue requeue [key ...]</c>: makes dead items (all, or the named ones) ready again.</summary>
public sealed class QueueRequeueCommand : ISampleCommand
{
    public string Name => "queue requeue";

    public string Description => "make dead items of the documents queue ready again (all, or the named keys)";

    public async Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        var keys = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToList();
        var n = await host.Services.GetRequiredService<PostgresWorkQueue>().RequeueDeadAsync(QueueSampleFeature.QueueName, keys.Count > 0 ? keys : null, cancellationToken);
        Console.WriteLine($"Requeued {n} dead items.");
        return 0;
    }
}
