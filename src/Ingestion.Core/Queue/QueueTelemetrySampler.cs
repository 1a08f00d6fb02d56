using Ingestion.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingestion.Queue;

/// <summary>
/// Samples the counts of every registered queue for the observable gauges of <see cref="IngestionTelemetry"/>
/// (<c>ingestion.queue.depth</c>, <c>ingestion.queue.dead</c>): at start, then every <see cref="Interval"/>.
/// Registered by <c>AddWorkQueue</c>; a failed sample is logged and the next one tries again.
/// </summary>
internal sealed partial class QueueTelemetrySampler(IServiceProvider services) : BackgroundService
{
    /// <summary>The time between two samples.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var telemetry = services.GetService<IngestionTelemetry>();
        var store = services.GetService<IWorkQueueStore>();
        if (telemetry is null || store is null)
        {
            return;
        }

        var time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        var logger = services.GetService<ILoggerFactory>()?.CreateLogger("Ingestion.Queue") ?? NullLogger.Instance;
        var queues = services.GetServices<WorkQueueRegistration>().Select(r => r.Queue).Distinct(StringComparer.Ordinal).ToList();
        while (!stoppingToken.IsCancellationRequested)
        {
            foreach (var queue in queues)
            {
                try
                {
                    var s = await store.GetStatsAsync(queue, stoppingToken).ConfigureAwait(false);
                    telemetry.QueueSampled(queue, s.Pending, s.Running, s.Dead);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // a metrics sample must never stop the host; the next one tries again
                catch (Exception e)
#pragma warning restore CA1031
                {
                    LogSampleFailed(logger, e, queue);
                }
            }

            try
            {
                await Task.Delay(Interval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(7200, LogLevel.Warning, "Could not sample the counts of queue {Queue} for the metrics")]
    private static partial void LogSampleFailed(ILogger logger, Exception exception, string queue);
}
