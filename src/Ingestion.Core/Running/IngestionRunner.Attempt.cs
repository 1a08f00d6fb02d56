using Ingestion.Diagnostics;
using Ingestion.Sinks;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Running;

// One attempt of a run: the source read in batches, each handed to the sink in the background (one write in flight, or
// two when the sink asks for it) with its checkpoint, counts taken in order, and the sink completed.
public sealed partial class IngestionRunner
{
    private async Task RunAttemptAsync<TRecord>(IIngestionSource source, RunState run, CancellationToken cancellationToken)
        where TRecord : class
    {
        var typed = (IIngestionSource<TRecord>)source;
        var saved = await _states.GetAsync(run.SourceName, cancellationToken).ConfigureAwait(false);
        saved = TargetBoundState.Bind(saved, _sink.DescribeTarget(run.SourceName, run.Options), run.Logger, run.SourceName);
        var visible = run.Request.Mode == IngestionMode.FullRefresh
            ? saved with { Cursor = null, ETag = null, LastModified = null, ContentHash = null }
            : saved;
        var limits = new IngestionLimits { MaxRecords = run.Options.MaxRecords, MaxRequests = run.Options.MaxRequests };
        var context = new RunContext(run.SourceName, run.RunId, run.Request, visible, limits, run.Logger, _time) { Hints = run.Hints, Secrets = run.Secrets };
        var schema = typeof(TRecord) == typeof(DynamicRecord) ? null : RecordSchema.FromType(typeof(TRecord));
        if (schema is not null && run.Options.KeyColumns.Count > 0)
        {
            throw new InvalidOperationException($"Source '{run.SourceName}': KeyColumns can only override the key of dynamic records; '{typeof(TRecord).Name}' declares its key with [RecordKey].");
        }

        var sinkRun = new SinkRun
        {
            SourceName = run.SourceName,
            RunId = run.RunId,
            Options = run.Options,
            Schema = schema,
            Mode = run.Request.Mode,
            IsDryRun = run.Request.DryRun,
            InitialState = saved,
            RunLock = run.Lock,
            RedactRejected = run.Secrets.Redact,
            Verify = run.Request.Verify,
        };

        var writer = await _sink.OpenAsync<TRecord>(sinkRun, cancellationToken).ConfigureAwait(false);
        var sinkWriter = writer;
        writer = await Sync.SinkHooks.WrapAsync(writer, sinkRun, _services.GetServices<Sync.ISinkHook>(), cancellationToken).ConfigureAwait(false);

        // With no hook working beside the sink, nothing but the sink reads a batch's records once it has them (it may
        // release them early), and, batch by batch, a batch that writes nothing may wait for the next commit.
        var sinkOwnsRecords = ReferenceEquals(writer, sinkWriter);
        var perBatch = run.Options.Transaction == TransactionScope.PerBatch && !run.Request.DryRun && run.Options.WriteMode != WriteMode.Replace;
        var mayDeferCommit = perBatch && sinkOwnsRecords;
        writer = _tracking.Wrap(writer, run.SourceName);
        await using (writer.ConfigureAwait(false))
        {
            // Counts of this attempt not yet committed: all of them in a run-long transaction, else the batches whose
            // commit the sink deferred (they commit with the next batch it commits).
            var attempt = new AttemptCounts();
            var commitDeferred = false;
            var state = saved;
            var buffer = new List<TRecord>(Math.Min(run.Options.BatchSize, 100_000));
            long recordNumber = 0;
            var cap = run.Options.MaxRecords;

            // Batches are written in the background while the source reads the next one (a pipeline): they still reach
            // the sink one at a time and in order, each with its own checkpoint, and their counts are taken (and their
            // failures surface) in that order. One write is in flight, or two when the sink prepares batches that far
            // ahead (IPreparingSinkWriter.BatchesPreparedAhead): the second is handed over at once and starts when the
            // first has finished, so the reading thread goes on reading meanwhile.
            var inFlight = new Queue<InFlightBatch>(2);
            var preparer = writer as IPreparingSinkWriter<TRecord>;

            async Task DrainAsync()
            {
                if (!inFlight.TryDequeue(out var pending))
                {
                    return;
                }

                run.Position = pending.Position;
                var written = await pending.Write.ConfigureAwait(false);
                var counts = new IngestionCounts
                {
                    Read = pending.Read,
                    Created = written.Created,
                    Updated = written.Updated,
                    Unchanged = written.Unchanged,
                    Duplicates = written.Duplicates,
                    Rejected = pending.SourceRejects + written.Rejected.Count,
                    Linked = written.Linked,
                    ForReview = written.ForReview,
                };
                commitDeferred = perBatch && written.CommitDeferred;
                if (perBatch && !written.CommitDeferred)
                {
                    run.Commit(attempt.Take() + counts);
                }
                else
                {
                    attempt.Add(counts);
                }

                run.ReportProgress(attempt.Counts);
            }

            async Task DrainAllAsync()
            {
                while (inFlight.Count > 0)
                {
                    await DrainAsync().ConfigureAwait(false);
                }
            }

            async Task DrainQuietlyAsync()
            {
                // A failure on its way out keeps its batch's position; the batches behind it are not where it failed.
                var failedAt = run.Position;
                while (inFlight.Count > 0)
                {
                    try
                    {
                        await DrainAsync().ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                    {
                        // The attempt was cancelled: the batch in flight rolled back with it.
                    }
                    catch (BatchNotWrittenException)
                    {
                        // Never handed to the sink: the batch before it failed, and that failure is on its way out.
                    }
#pragma warning disable CA1031 // another failure is already on its way out; this one is logged, not lost silently
                    catch (Exception e)
#pragma warning restore CA1031
                    {
                        Log.FlushAfterFailureFailed(run.Logger, e, run.SourceName, "the attempt ended early");
                    }
                }

                run.Position = failedAt;
            }

            RejectBudgetExceededException OverBudget(IReadOnlyList<RejectedRecord> rejects, long rejected)
            {
                var first = rejects[0];
                return new RejectBudgetExceededException($"Source '{run.SourceName}' rejected {rejected} records, over its error budget of {run.Options.MaxRejected} (Ingestion:Sources:{run.SourceName}:MaxRejected); first rejected at {first.Position}{(first.Field is null ? string.Empty : $", field {first.Field}")}: {first.Reason}")
                {
                    SourceName = run.SourceName,
                    Position = first.Position,
                    Field = first.Field,
                    Rejected = rejects,
                };
            }

            async Task FlushAsync()
            {
                var (rejects, checkpoint) = context.TakePending();
                if (buffer.Count == 0 && rejects.Count == 0 && checkpoint is null)
                {
                    await DrainAllAsync().ConfigureAwait(false);
                    return;
                }

                // The sink's database-free work on this batch overlaps the write of the previous one.
                var records = buffer.ToArray();
                var firstRecordNumber = recordNumber - buffer.Count + 1;
                var read = buffer.Count + rejects.Count;
                buffer.Clear();
                var prepared = preparer is null || records.Length == 0 ? null
                    : sinkOwnsRecords ? preparer.PrepareReleasableBatch(records, firstRecordNumber)
                    : preparer.PrepareBatch(records, firstRecordNumber);
                var writesInFlight = Math.Clamp(preparer?.BatchesPreparedAhead ?? 1, 1, 2);
                while (inFlight.Count >= writesInFlight)
                {
                    await DrainAsync().ConfigureAwait(false);
                }

                if (checkpoint is not null)
                {
                    state = state.Apply(checkpoint);
                }

                // The error budget left: what the batches still in flight rejected themselves is known only once they
                // are written, so a batch handed over behind one takes its budget then (a batch over it is not written).
                var ahead = inFlight.ToArray();
                var rejectedKnown = run.Committed.Rejected + attempt.Rejected + rejects.Count + ahead.Sum(p => (long)p.SourceRejects);
                if (ahead.Length == 0 && run.Options.MaxRejected - rejectedKnown < 0)
                {
                    throw OverBudget(rejects, rejectedKnown);
                }

                // Taken now: the reading thread moves state on to later checkpoints before a batch behind another is written.
                var batchState = checkpoint is null ? null : state;
                SinkBatch<TRecord> BatchWithin(long rejected) => new()
                {
                    Records = records,
                    FirstRecordNumber = firstRecordNumber,
                    Rejected = rejects,
                    State = batchState,
                    RejectBudget = run.Options.MaxRejected - rejected,
                    Prepared = prepared,
                    MayDeferCommit = mayDeferCommit,
                };

                var batch = BatchWithin(rejectedKnown);
                var position = batch.PositionOf(0);
                run.Position = position;
                var write = ahead.Length == 0
                    ? Task.Run(async () => await writer.WriteBatchAsync(batch, cancellationToken).ConfigureAwait(false), CancellationToken.None)
                    : Task.Run(() => WriteAfterAsync(ahead, rejects, rejectedKnown, BatchWithin), CancellationToken.None);
                inFlight.Enqueue(new InFlightBatch(write, position, read, rejects.Count));
            }

            // A batch handed over while others are in flight: written once they are, with the budget they left (a batch
            // whose own rejects go over it is not written).
            async Task<SinkBatchResult> WriteAfterAsync(InFlightBatch[] before, IReadOnlyList<RejectedRecord> rejects, long rejectedKnown, Func<long, SinkBatch<TRecord>> batchWithin)
            {
                var rejected = rejectedKnown;
                foreach (var earlier in before)
                {
                    try
                    {
                        rejected += (await earlier.Write.ConfigureAwait(false)).Rejected.Count;
                    }
                    catch (Exception e)
                    {
                        throw new BatchNotWrittenException(e);
                    }
                }

                if (rejects.Count > 0 && run.Options.MaxRejected - rejected < 0)
                {
                    throw OverBudget(rejects, rejected);
                }

                return await writer.WriteBatchAsync(batchWithin(rejected), cancellationToken).ConfigureAwait(false);
            }

            // The last batch: handed over, then waited for (its counts are in, its failure surfaces here). Batches whose
            // commit the sink deferred are committed then by an empty batch that may not defer, so that they are
            // counted committed before the sink completes (a failure while completing retries from their checkpoint).
            async Task FlushAndDrainAsync()
            {
                await FlushAsync().ConfigureAwait(false);
                await DrainAllAsync().ConfigureAwait(false);
                if (commitDeferred)
                {
                    var closing = new SinkBatch<TRecord> { Records = [], FirstRecordNumber = recordNumber + 1, MayDeferCommit = false };
                    var written = await writer.WriteBatchAsync(closing, cancellationToken).ConfigureAwait(false);
                    if (!written.CommitDeferred)
                    {
                        commitDeferred = false;
                        run.Commit(attempt.Take());
                    }
                }
            }

            async Task FlushAfterSourceFailureAsync(Exception sourceError)
            {
                try
                {
                    await FlushAndDrainAsync().ConfigureAwait(false);
                }
                catch (Exception flushError) when (flushError is not RejectBudgetExceededException)
                {
                    Log.FlushAfterFailureFailed(run.Logger, flushError, run.SourceName, sourceError.Message);
                }
            }

            var records = typed.ReadAsync(context, cancellationToken).GetAsyncEnumerator(cancellationToken);
            try
            {
                await using (records.ConfigureAwait(false))
                {
                    while (true)
                    {
                        TRecord record;
                        try
                        {
                            if (!await records.MoveNextAsync().ConfigureAwait(false))
                            {
                                break;
                            }

                            record = records.Current;
                        }
                        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                        {
                            // The records read before the failure are genuine: commit them with the last checkpoint
                            // (which covers only records already read), so a retry resumes as late as possible.
                            await FlushAfterSourceFailureAsync(e).ConfigureAwait(false);
                            throw;
                        }

                        if (record is null)
                        {
                            throw new IngestionException($"Source '{run.SourceName}' yielded a null record after record {recordNumber}.") { SourceName = run.SourceName, Position = $"record {recordNumber + 1}" };
                        }

                        recordNumber++;
                        buffer.Add(record);
                        if (buffer.Count >= run.Options.BatchSize || context.PendingRejects.Count >= run.Options.BatchSize)
                        {
                            await FlushAsync().ConfigureAwait(false);
                        }

                        if (cap is { } max && recordNumber >= max)
                        {
                            run.StoppedByCap = true;
                            Log.RecordCapReached(run.Logger, run.SourceName, max);
                            break;
                        }
                    }
                }

                await FlushAndDrainAsync().ConfigureAwait(false);
            }
            finally
            {
                // Never leave a write running when the attempt ends early: the writer is disposed next.
                await DrainQuietlyAsync().ConfigureAwait(false);
            }

            run.NotModified = context.IsNotModified && recordNumber == 0;
            run.StoppedByCap |= context.StoppedEarlyReason is not null;
            var completion = await writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
            var recounted = completion.RecountedAsUpdated + completion.RecountedAsUnchanged;
            run.Commit(attempt.Counts with
            {
                Deleted = attempt.Counts.Deleted + completion.Deleted,
                Created = attempt.Counts.Created - recounted,
                Updated = attempt.Counts.Updated + completion.RecountedAsUpdated,
                Unchanged = attempt.Counts.Unchanged + completion.RecountedAsUnchanged,
            });
        }
    }
}
