using System.Data.Common;
using Ingestion.Diagnostics;
using Ingestion.Hosting;
using Ingestion.Stores;
using Microsoft.Extensions.Logging;

namespace Ingestion.Running;

// The job row's upkeep: jobs left running by dead runs are closed, and a live run records that it is alive.
public sealed partial class IngestionRunner
{
    /// <summary>Closes the jobs of this source left running by runs that are gone (this run holds the source's lock, so none is alive).</summary>
    private async Task CloseAbandonedAsync(string sourceName, Guid runId, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            foreach (var job in await _jobs.CloseAbandonedAsync(sourceName, runId, TimeSpan.Zero, cancellationToken).ConfigureAwait(false))
            {
                Log.JobAbandoned(logger, sourceName, job.Id, job.Host, job.HeartbeatAt ?? job.StartedAt, job.Counts.Read);
            }
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or TimeoutException)
        {
            Log.JobStoreFailed(logger, e, sourceName, runId);
        }
    }

    /// <summary>Records that the run is alive every <see cref="IngestionOptions.HeartbeatInterval"/> until the run ends.</summary>
    private async Task HeartbeatAsync(RunState run, CancellationToken cancellationToken)
    {
        if (_options.HeartbeatInterval <= TimeSpan.Zero)
        {
            return;
        }

        using var timer = new PeriodicTimer(_options.HeartbeatInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    await _jobs.HeartbeatAsync(run.RunId, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is DbException or InvalidOperationException or TimeoutException or IOException)
                {
                    Log.JobStoreFailed(run.Logger, e, run.SourceName, run.RunId);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The run ended.
        }
    }
}
