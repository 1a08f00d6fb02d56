using System.Diagnostics;
using Ingestion.Diagnostics;
using Ingestion.Sinks;
using Ingestion.Stores;
using Microsoft.Extensions.Logging;

namespace Ingestion.Running;

// What the runner keeps while a run goes on: the run, the counts of an attempt, the batch being written.
public sealed partial class IngestionRunner
{
    private sealed record InFlightBatch(Task<SinkBatchResult> Write, string Position, int Read, int SourceRejects);

    /// <summary>A batch handed over behind another was not written: the one before it failed (that failure is reported).</summary>
    private sealed class BatchNotWrittenException(Exception cause) : Exception("The batch was not written: the batch before it failed.", cause);

    private sealed class AttemptCounts
    {
        public IngestionCounts Counts { get; private set; }

        public long Rejected => Counts.Rejected;

        public void Add(IngestionCounts counts) => Counts += counts;

        /// <summary>Returns the counts and starts again from zero.</summary>
        public IngestionCounts Take()
        {
            var counts = Counts;
            Counts = default;
            return counts;
        }
    }

    private sealed class RunState(string sourceName, Guid runId, RunRequest request, SourceOptions options, ILogger logger, Stopwatch stopwatch, IReadOnlyList<IIngestionObserver> observers, IRunLock runLock)
    {
        public IRunLock Lock { get; } = runLock;

        public string SourceName { get; } = sourceName;

        public Guid RunId { get; } = runId;

        public RunRequest Request { get; } = request;

        public SourceOptions Options { get; } = options;

        public ILogger Logger { get; } = logger;

        /// <summary>The run's secrets, masked in its logs, error and rejected records.</summary>
        public SecretMask Secrets { get; init; } = new();

        public int Attempts { get; set; }

        public IngestionCounts Committed { get; private set; }

        public bool StoppedByCap { get; set; }

        public bool NotModified { get; set; }

        public string? Position { get; set; }

        public ProgressHints Hints { get; } = new();

        public void Commit(IngestionCounts counts) => Committed += counts;

        public void ReportProgress(IngestionCounts uncommitted)
        {
            var total = Committed + uncommitted;
            var progress = Hints.Apply(new IngestionProgress
            {
                SourceName = SourceName,
                RunId = RunId,
                RecordsRead = total.Read,
                RecordsWritten = total.Created + total.Updated + total.Unchanged,
                RecordsRejected = total.Rejected,
                Elapsed = stopwatch.Elapsed,
            });
            Log.BatchWritten(Logger, SourceName, progress.RecordsWritten, progress.RecordsRead);
            Request.Progress?.Report(progress);
            foreach (var o in observers)
            {
                o.OnProgress(progress);
            }
        }
    }
}
