using Ingestion.Postgres.Queue;
using Ingestion.Queue;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.Sample.Host.Queue;

/// <summary><c>queue-run</c>: lists the document folder, enqueues every path (known paths are skipped), lets the workers drain the queue, prints the counts.</summary>
public sealed class QueueRunCommand : ISampleCommand
{
    public string Name => "queue-run";

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

        var s = await store.GetStatsAsync(QueueSampleFeature.QueueName, cancellationToken);
        Console.WriteLine($"Queue {s.Queue}: pending={s.Pending} running={s.Running} done={s.Done} failed={s.Failed} dead={s.Dead}");
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
