using System.Data.Common;
using System.Diagnostics;
using System.Reflection;
using Ingestion.Diagnostics;
using Ingestion.Hosting;
using Ingestion.Sinks;
using Ingestion.Stores;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace Ingestion.Running;

/// <summary>
/// The default <see cref="IIngestionRunner"/>: per source run it takes the run lock, records a job,
/// loads the state, reads the source in batches through the sink with checkpoints, retries transient
/// failures from the last checkpoint (Polly, exponential backoff with jitter) within a per-run timeout,
/// and closes the job with exact counts.
/// </summary>
public sealed partial class IngestionRunner : IIngestionRunner
{
    private static readonly MethodInfo RunTypedMethod = typeof(IngestionRunner).GetMethod(nameof(RunAttemptAsync), BindingFlags.NonPublic | BindingFlags.Instance)!;

    private readonly IServiceProvider _services;
    private readonly SourceCatalog _catalog;
    private readonly IOptionsMonitor<SourceOptions> _sourceOptions;
    private readonly IngestionOptions _options;
    private readonly IIngestionSink _sink;
    private readonly IImportJobStore _jobs;
    private readonly ISourceStateStore _states;
    private readonly IRunLockProvider _locks;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly RunTracking _tracking;

    /// <summary>Creates the runner and validates the configuration (all problems reported at once).</summary>
    /// <param name="services">The container (sources and observers are resolved from it).</param>
    /// <exception cref="OptionsValidationException">The configuration is invalid.</exception>
    public IngestionRunner(IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        IngestionStartupValidator.Validate(services);
        _services = services;
        _catalog = services.GetRequiredService<SourceCatalog>();
        _sourceOptions = services.GetRequiredService<IOptionsMonitor<SourceOptions>>();
        _options = services.GetRequiredService<IOptions<IngestionOptions>>().Value;
        _sink = services.GetRequiredService<IIngestionSink>();
        _jobs = services.GetRequiredService<IImportJobStore>();
        _states = services.GetRequiredService<ISourceStateStore>();
        _locks = services.GetRequiredService<IRunLockProvider>();
        _time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        _loggerFactory = services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("Ingestion.Runner");
        _tracking = new RunTracking(services.GetService<ActiveRuns>(), services.GetService<IngestionTelemetry>());
    }

    /// <inheritdoc />
    public IReadOnlyList<string> SourceNames => _catalog.Sources.Select(s => s.Name).ToList();

    /// <inheritdoc />
    public async Task<IngestionRunSummary> RunManyAsync(RunManyRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var names = request.Sources?.ToList()
            ?? _catalog.Sources.Where(s => _sourceOptions.Get(s.Name).Enabled).Select(s => s.Name).ToList();
        foreach (var name in names)
        {
            _ = Registration(name);
        }

        var results = new IngestionResult[names.Count];
        if (request.Parallel)
        {
            var degree = request.MaxDegreeOfParallelism > 0 ? request.MaxDegreeOfParallelism : _options.MaxDegreeOfParallelism;
            await Parallel.ForEachAsync(
                Enumerable.Range(0, names.Count),
                new ParallelOptions { MaxDegreeOfParallelism = degree, CancellationToken = CancellationToken.None },
                async (i, _) => results[i] = await RunAsync(names[i], request.Run, cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
        }
        else
        {
            for (var i = 0; i < names.Count; i++)
            {
                results[i] = await RunAsync(names[i], request.Run, cancellationToken).ConfigureAwait(false);
            }
        }

        return new IngestionRunSummary(results);
    }

    /// <inheritdoc />
    public async Task<IngestionResult> RunAsync(string sourceName, RunRequest? request, CancellationToken cancellationToken)
    {
        var registration = Registration(sourceName);
        request ??= RunRequest.Default;
        var runId = Guid.NewGuid();
        var started = _time.GetUtcNow();
        var stopwatch = Stopwatch.StartNew();
        var secrets = new SecretMask();
        var logger = new RedactingLogger(_loggerFactory.CreateLogger($"Ingestion.Sources.{sourceName}"), secrets);
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["SourceName"] = sourceName, ["RunId"] = runId });
        using var tracked = _tracking.Begin(sourceName, runId, request, started, cancellationToken);
        cancellationToken = tracked.CancellationToken;

        var runLock = await _locks.TryAcquireAsync(sourceName, runId, cancellationToken).ConfigureAwait(false);
        if (runLock is null)
        {
            Log.AlreadyRunning(logger, sourceName);
            return tracked.Complete(new IngestionResult
            {
                SourceName = sourceName,
                RunId = runId,
                Status = IngestionStatus.AlreadyRunning,
                StartedAt = started,
                FinishedAt = _time.GetUtcNow(),
                IsDryRun = request.DryRun,
                Attempts = 0,
            });
        }

        await using (runLock.ConfigureAwait(false))
        {
            return tracked.Complete(await RunLockedAsync(registration, sourceName, request, runId, started, stopwatch, logger, runLock, secrets, cancellationToken).ConfigureAwait(false));
        }
    }

    private async Task<IngestionResult> RunLockedAsync(SourceRegistration registration, string sourceName, RunRequest request, Guid runId, DateTimeOffset started, Stopwatch stopwatch, ILogger logger, IRunLock runLock, SecretMask secrets, CancellationToken cancellationToken)
    {
        var options = _sourceOptions.Get(sourceName);

        Log.RunStarted(logger, sourceName, runId, request.Mode, request.DryRun, request.Trigger);
        await _jobs.StartAsync(
            new ImportJob
            {
                Id = runId,
                SourceName = sourceName,
                Trigger = request.Trigger,
                Mode = request.Mode,
                IsDryRun = request.DryRun,
                Host = _options.HostName,
                StartedAt = started,
                RequestedBy = request.RequestedBy,
                HeartbeatAt = started,
            },
            cancellationToken).ConfigureAwait(false);
        await CloseAbandonedAsync(sourceName, runId, logger, cancellationToken).ConfigureAwait(false);
        var observers = _services.GetServices<IIngestionObserver>().ToList();
        foreach (var observer in observers)
        {
            await SafeObserve(observer, sourceName, () => observer.OnRunStartedAsync(sourceName, runId, request, cancellationToken)).ConfigureAwait(false);
        }

        var run = new RunState(sourceName, runId, request, options, logger, stopwatch, observers, runLock) { Secrets = secrets };
        IngestionStatus status;
        IngestionError? error = null;
        using var runCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, runLock.Lost);
        var heartbeat = HeartbeatAsync(run, runCancellation.Token);
        try
        {
            var pipeline = BuildPipeline(run);
            await pipeline.ExecuteAsync(
                async token =>
                {
                    run.Attempts++;
                    var sourceScope = _services.CreateAsyncScope();
                    await using (sourceScope.ConfigureAwait(false))
                    {
                        var source = registration.Factory(sourceScope.ServiceProvider);
                        var method = RunTypedMethod.MakeGenericMethod(source.RecordType);
                        await ((Task)method.Invoke(this, [source, run, token])!).ConfigureAwait(false);
                    }
                },
                runCancellation.Token).ConfigureAwait(false);
            status = run.NotModified ? IngestionStatus.NotModified
                : run.Committed.Rejected > 0 || run.StoppedByCap ? IngestionStatus.PartiallySucceeded
                : IngestionStatus.Succeeded;
        }
        catch (Exception e) when (runLock.Lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested && e is OperationCanceledException or RunLockLostException or DbException)
        {
            // The run lock was taken over (its connection died and another run took it): stop, write nothing more.
            status = IngestionStatus.Failed;
            error = ToError(e as RunLockLostException ?? new RunLockLostException(runLock.LostReason ?? $"Source '{sourceName}': run {runId} lost its run lock; it stopped and wrote nothing more. Committed batches stay committed.", e), run.Position);
            Log.RunFailed(logger, e, sourceName, runId, error);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            status = IngestionStatus.Cancelled;
            error = new IngestionError("Cancelled", $"Run of source '{sourceName}' was cancelled after {run.Committed.Read} committed records.", run.Position);
        }
        catch (TimeoutRejectedException e)
        {
            status = IngestionStatus.Failed;
            error = new IngestionError("Timeout", $"Run of source '{sourceName}' exceeded its timeout of {options.Timeout} after {run.Attempts} attempt(s).", run.Position);
            Log.RunFailed(logger, e, sourceName, runId, error);
        }
        catch (Exception e)
        {
            status = IngestionStatus.Failed;
            error = secrets.Redact(ToError(e, run.Position));
            Log.RunFailed(logger, e, sourceName, runId, error);
            if (e is RejectBudgetExceededException { Rejected.Count: > 0 } budget)
            {
                await _jobs.AddRejectedAsync(runId, sourceName, budget.Rejected.Select(secrets.Redact).ToList(), CancellationToken.None).ConfigureAwait(false);
            }
        }

        await runCancellation.CancelAsync().ConfigureAwait(false);
        await heartbeat.ConfigureAwait(false);
        var lockLost = runLock.Lost.IsCancellationRequested || error?.Type == nameof(RunLockLostException);
        if (!request.DryRun && status != IngestionStatus.Cancelled && !lockLost)
        {
            var state = await _states.GetAsync(sourceName, CancellationToken.None).ConfigureAwait(false);
            var now = _time.GetUtcNow();
            state = state with
            {
                LastChecked = now,
                LastImported = run.Committed.Created + run.Committed.Updated + run.Committed.Deleted > 0 ? now : state.LastImported,
                LastSuccess = status is IngestionStatus.Succeeded or IngestionStatus.PartiallySucceeded or IngestionStatus.NotModified ? now : state.LastSuccess,
            };
            await _states.SaveAsync(sourceName, state, CancellationToken.None).ConfigureAwait(false);
        }

        var result = new IngestionResult
        {
            SourceName = sourceName,
            RunId = runId,
            Status = status,
            StartedAt = started,
            FinishedAt = started + stopwatch.Elapsed,
            Counts = run.Committed,
            Error = error,
            IsDryRun = request.DryRun,
            Attempts = run.Attempts,
        };
        try
        {
            await _jobs.CompleteAsync(result, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or TimeoutException)
        {
            Log.JobStoreFailed(logger, e, sourceName, runId);
        }

        Log.RunEnded(logger, sourceName, runId, status, (long)stopwatch.Elapsed.TotalMilliseconds, run.Committed);
        foreach (var observer in observers)
        {
            await SafeObserve(observer, sourceName, () => observer.OnRunCompletedAsync(result, CancellationToken.None)).ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>Whether an exception is worth retrying the run for.</summary>
    /// <param name="exception">The exception.</param>
    /// <returns><see langword="true"/> for transient failures.</returns>
    public static bool IsTransient(Exception exception) => exception switch
    {
        TransientIngestionException => true,
        RejectBudgetExceededException => false,
        IngestionException { InnerException: { } inner } => IsTransient(inner),
        DbException db => db.IsTransient,
        HttpRequestException http => http.StatusCode is null or System.Net.HttpStatusCode.RequestTimeout or System.Net.HttpStatusCode.TooManyRequests or >= System.Net.HttpStatusCode.InternalServerError,
        IOException or TimeoutException => true,
        _ => false,
    };

    private SourceRegistration Registration(string name) =>
        _catalog.Find(name) ?? throw new ArgumentException($"No source named '{name}' is registered. Known sources: {string.Join(", ", _catalog.Sources.Select(s => s.Name))}.", nameof(name));

    private ResiliencePipeline BuildPipeline(RunState run)
    {
        var builder = new ResiliencePipelineBuilder { TimeProvider = _time };
        if (run.Options.Timeout is { } timeout)
        {
            builder.AddTimeout(timeout);
        }

        if (run.Options.MaxRetryAttempts > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = run.Options.MaxRetryAttempts,
                Delay = run.Options.RetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } e && e is not OperationCanceledException && IsTransient(e)),
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Exception is TransientIngestionException { RetryAfter: { } after } ? after : (TimeSpan?)null),
                OnRetry = args =>
                {
                    Log.Retrying(run.Logger, args.Outcome.Exception, run.SourceName, args.AttemptNumber + 1, (long)args.RetryDelay.TotalMilliseconds);
                    return ValueTask.CompletedTask;
                },
            });
        }

        return builder.Build();
    }

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

        // Batch by batch, with no hook working beside the sink, a batch that writes nothing may wait for the next commit.
        var perBatch = run.Options.Transaction == TransactionScope.PerBatch && !run.Request.DryRun && run.Options.WriteMode != WriteMode.Replace;
        var mayDeferCommit = perBatch && ReferenceEquals(writer, sinkWriter);
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
                var prepared = preparer is not null && records.Length > 0 ? preparer.PrepareBatch(records, firstRecordNumber) : null;
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

    private static IngestionError ToError(Exception e, string? position) => e switch
    {
        IngestionException ie => new IngestionError(e.GetType().Name, e.Message, ie.Position ?? position, ie.Field),
        TargetInvocationException { InnerException: { } inner } => ToError(inner, position),
        _ => new IngestionError(e.GetType().Name, e.Message, position),
    };

    private async Task SafeObserve(IIngestionObserver observer, string sourceName, Func<ValueTask> call)
    {
        try
        {
            await call().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // an observer must never change a run's result
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.ObserverFailed(_logger, e, observer.GetType().Name, sourceName);
        }
    }
}
