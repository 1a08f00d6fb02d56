using System.Diagnostics;
using Ingestion.Diagnostics;
using Ingestion.Sinks;

namespace Ingestion.Running;

/// <summary>
/// What the runner does around each run besides running it: registers it in <see cref="ActiveRuns"/> (so it can be
/// listed and cancelled), opens its span and records its metrics (<see cref="IngestionTelemetry"/>), and times its batches.
/// Both parts are optional, so a runner built on a bare container still works.
/// </summary>
internal sealed class RunTracking(ActiveRuns? active, IngestionTelemetry? telemetry)
{
    /// <summary>Starts tracking a run; dispose the scope when the run ends.</summary>
    public Scope Begin(string sourceName, Guid runId, RunRequest request, DateTimeOffset startedAt, CancellationToken cancellationToken)
    {
        var handle = active?.Register(sourceName, runId, request, startedAt, cancellationToken);
        var activity = telemetry?.StartRun(sourceName, runId, request.Mode, request.DryRun, request.Trigger);
        return new Scope(handle, activity, telemetry, handle?.Token ?? cancellationToken);
    }

    /// <summary>Wraps a run's writer so that each batch gets a span and its write time is measured.</summary>
    public ISinkWriter<TRecord> Wrap<TRecord>(ISinkWriter<TRecord> writer, string sourceName)
        where TRecord : class =>
        telemetry is null ? writer : new TimedWriter<TRecord>(writer, sourceName, telemetry);

    /// <summary>A tracked run.</summary>
    internal sealed class Scope(ActiveRuns.Handle? handle, Activity? activity, IngestionTelemetry? telemetry, CancellationToken token) : IDisposable
    {
        /// <summary>The token the run must use: the caller's, also fired by <see cref="ActiveRuns.Cancel"/>.</summary>
        public CancellationToken CancellationToken { get; } = token;

        /// <summary>Records the result and returns it.</summary>
        public IngestionResult Complete(IngestionResult result)
        {
            telemetry?.RunCompleted(result, activity);
            return result;
        }

        /// <summary>The run's outcome is decided: it is no longer going on, so no longer listed or cancellable (<see cref="ActiveRuns.Handle.Ended"/>).</summary>
        public void Ended() => handle?.Ended();

        public void Dispose()
        {
            activity?.Dispose();
            handle?.Dispose();
        }
    }

    private sealed class TimedWriter<TRecord>(ISinkWriter<TRecord> inner, string sourceName, IngestionTelemetry telemetry) : IPreparingSinkWriter<TRecord>
        where TRecord : class
    {
        public object? PrepareBatch(IReadOnlyList<TRecord> records, long firstRecordNumber) =>
            inner is IPreparingSinkWriter<TRecord> preparing ? preparing.PrepareBatch(records, firstRecordNumber) : null;

        public object? PrepareReleasableBatch(TRecord[] records, long firstRecordNumber) =>
            inner is IPreparingSinkWriter<TRecord> preparing ? preparing.PrepareReleasableBatch(records, firstRecordNumber) : null;

        public int BatchesPreparedAhead => inner is IPreparingSinkWriter<TRecord> preparing ? preparing.BatchesPreparedAhead : 1;

        public async ValueTask<SinkBatchResult> WriteBatchAsync(SinkBatch<TRecord> batch, CancellationToken cancellationToken)
        {
            using var activity = telemetry.StartBatch(sourceName, batch.Records.Count, batch.FirstRecordNumber);
            var started = Stopwatch.GetTimestamp();
            try
            {
                var result = await inner.WriteBatchAsync(batch, cancellationToken).ConfigureAwait(false);
                activity?.SetTag("ingestion.records.created", result.Created);
                activity?.SetTag("ingestion.records.updated", result.Updated);
                activity?.SetTag("ingestion.records.rejected", result.Rejected.Count);
                return result;
            }
            catch (Exception e)
            {
                activity?.SetTag("error.type", e.GetType().FullName);
                activity?.SetStatus(ActivityStatusCode.Error, e.Message);
                throw;
            }
            finally
            {
                telemetry.BatchWritten(sourceName, Stopwatch.GetElapsedTime(started));
            }
        }

        public ValueTask<SinkCompletion> CompleteAsync(CancellationToken cancellationToken) => inner.CompleteAsync(cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
