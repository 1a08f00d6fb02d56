using Ingestion.AspNetCore.Diagnostics;
using Ingestion.AspNetCore.Security;
using Ingestion.Operations;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ingestion.AspNetCore.Endpoints;

/// <summary>
/// Runs started over HTTP without waiting: they go on after the response, stop (as cancelled, committed batches kept) when the host
/// stops, and a failure to run at all is logged. The host waits for them when it stops.
/// </summary>
internal sealed class BackgroundRuns(IIngestionOperations operations, IHostApplicationLifetime lifetime, ILogger<BackgroundRuns> logger) : IHostedService
{
    private readonly Lock _gate = new();
    private readonly HashSet<Task> _running = [];

    public void Start(RunSourcesRequest request)
    {
        var sources = request.All ? "every enabled source" : string.Join(", ", request.Sources);
        var requestedBy = request.RequestedBy ?? WriteAccess.AnonymousCaller;
        Task task = null!;
        task = Task.Run(async () =>
        {
            try
            {
                await operations.RunAsync(request, lifetime.ApplicationStopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.BackgroundRunFailed(logger, e, sources, requestedBy);
            }
            finally
            {
                lock (_gate)
                {
                    _running.Remove(task);
                }
            }
        });
        lock (_gate)
        {
            if (!task.IsCompleted)
            {
                _running.Add(task);
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        Task[] running;
        lock (_gate)
        {
            running = [.. _running];
        }

        await Task.WhenAll(running).WaitAsync(cancellationToken).ConfigureAwait(false);
    }
}
