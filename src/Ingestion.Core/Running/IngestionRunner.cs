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
            return tracked.Complete(await RunLockedAsync(registration, sourceName, request, runId, started, stopwatch, logger, runLock, secrets, tracked, cancellationToken).ConfigureAwait(false));
        }
    }

    private async Task<IngestionResult> RunLockedAsync(SourceRegistration registration, string sourceName, RunRequest request, Guid runId, DateTimeOffset started, Stopwatch stopwatch, ILogger logger, IRunLock runLock, SecretMask secrets, RunTracking.Scope tracked, CancellationToken cancellationToken)
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

        // Its outcome decided, the run is over: a cancel from now on is refused (not accepted and then ignored), and no
        // list shows it going on beside a job row that says it ended.
        tracked.Ended();
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
