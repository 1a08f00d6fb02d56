using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Ingestion.Diagnostics;
using Ingestion.Postgres.Queue;
using Ingestion.Queue;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.CommandLine.Tests.Diagnostics;

/// <summary>The observable queue gauges, sampled from the PostgreSQL queue by the host.</summary>
public sealed class QueueTelemetryTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task A_host_with_a_queue_reports_its_pending_and_dead_items_on_the_gauges()
    {
        var queue = $"gauge-{Guid.NewGuid():N}"[..16];
        using var host = TestHost.Build(db, b => b.UsePostgresQueue().AddWorkQueue<NeverHandler>(queue, 1), "queue_gauges");
        var store = host.Services.GetRequiredService<IWorkQueueStore>();
        for (var i = 0; i < 4; i++)
        {
            // Not due for a day: they stay pending while the host runs.
            await store.EnqueueAsync(queue, new WorkItemRequest($"k{i}") { NotBefore = DateTimeOffset.UtcNow.AddDays(1) }, default);
        }

        var seen = new ConcurrentDictionary<string, long>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == IngestionTelemetry.Name && instrument.Name.StartsWith("ingestion.queue", StringComparison.Ordinal))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string? q = null;
            string? state = null;
            foreach (var t in tags)
            {
                q = t.Key == "ingestion.queue" ? t.Value as string : q;
                state = t.Key == "ingestion.queue.state" ? t.Value as string : state;
            }

            if (q == queue)
            {
                seen[$"{instrument.Name}/{state}"] = value;
            }
        });
        meters.Start();

        await host.StartAsync();
        try
        {
            for (var i = 0; i < 100 && !seen.ContainsKey("ingestion.queue.depth/pending"); i++)
            {
                await Task.Delay(100);
                meters.RecordObservableInstruments();
            }
        }
        finally
        {
            await host.StopAsync();
        }

        Assert.Equal(4L, seen.GetValueOrDefault("ingestion.queue.depth/pending"));
        Assert.Equal(0L, seen.GetValueOrDefault("ingestion.queue.depth/running"));
        Assert.Equal(0L, seen.GetValueOrDefault("ingestion.queue.dead/", -1));
    }

    private sealed class NeverHandler : IWorkItemHandler
    {
        public Task HandleAsync(WorkItem item, CancellationToken cancellationToken) => throw new InvalidOperationException("No item is due in this test.");
    }
}
