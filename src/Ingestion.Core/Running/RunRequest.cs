namespace Ingestion.Running;

/// <summary>How to run a source: mode, dry-run, trigger, parameters and progress callback.</summary>
public sealed record RunRequest
{
    /// <summary>An incremental run, triggered manually.</summary>
    public static RunRequest Default { get; } = new();

    /// <summary>Incremental or full refresh.</summary>
    public IngestionMode Mode { get; init; } = IngestionMode.Incremental;

    /// <summary>Read and validate everything, commit nothing.</summary>
    public bool DryRun { get; init; }

    /// <summary>
    /// Verify the stored rows instead of trusting their stored row hash: the sink compares every column value of each
    /// record read with the stored one, on the server, and rewrites the rows that differ (a row edited by hand is
    /// repaired and counted as updated). Meant with <see cref="IngestionMode.FullRefresh"/>, which reads everything;
    /// slower than a plain full refresh, as every row is staged and compared.
    /// </summary>
    public bool Verify { get; init; }

    /// <summary>What triggered the run, recorded in the job history (<c>manual</c>, <c>schedule</c>, <c>cli</c>, <c>http</c>...).</summary>
    public string Trigger { get; init; } = "manual";

    /// <summary>Who asked for the run (a user at the command line, the caller of an HTTP endpoint), recorded in the job history; <see langword="null"/> when unknown.</summary>
    public string? RequestedBy { get; init; }

    /// <summary>Free-form parameters handed to the source (<see cref="IngestionContext.Parameters"/>).</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();

    /// <summary>Receives progress after each committed batch.</summary>
    public IProgress<IngestionProgress>? Progress { get; init; }
}

/// <summary>How to run several sources.</summary>
public sealed record RunManyRequest
{
    /// <summary>The sources to run, in order; <see langword="null"/> runs every enabled source.</summary>
    public IReadOnlyList<string>? Sources { get; init; }

    /// <summary>Run sources concurrently.</summary>
    public bool Parallel { get; init; }

    /// <summary>The most sources running at once when <see cref="Parallel"/> is set.</summary>
    public int MaxDegreeOfParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>The settings of each source run.</summary>
    public RunRequest Run { get; init; } = RunRequest.Default;
}

/// <summary>The results of a run of several sources.</summary>
/// <param name="Results">One result per source, in request order.</param>
public sealed record IngestionRunSummary(IReadOnlyList<IngestionResult> Results)
{
    /// <summary>Whether every source run ended without failing.</summary>
    public bool AllSucceeded => Results.All(r => r.IsSuccess);

    /// <summary>The sum of all counts.</summary>
    public IngestionCounts Total => Results.Aggregate(default(IngestionCounts), (a, r) => a + r.Counts);
}

/// <summary>A progress event of a running source.</summary>
public sealed record IngestionProgress
{
    /// <summary>The source.</summary>
    public required string SourceName { get; init; }

    /// <summary>The run.</summary>
    public required Guid RunId { get; init; }

    /// <summary>Records read so far (this attempt and committed earlier attempts).</summary>
    public long RecordsRead { get; init; }

    /// <summary>Records written (committed, or staged in a dry or whole-run transaction) so far.</summary>
    public long RecordsWritten { get; init; }

    /// <summary>Records rejected so far.</summary>
    public long RecordsRejected { get; init; }

    /// <summary>Time since the run started.</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>Read throughput since the run started.</summary>
    public double RecordsPerSecond => Elapsed > TimeSpan.Zero ? RecordsRead / Elapsed.TotalSeconds : 0;

    /// <summary>The records the source said it would read (<see cref="IngestionContext.ReportInputSize"/>), when known.</summary>
    public long? TotalRecords { get; init; }

    /// <summary>The bytes of input the source said it would read, when known.</summary>
    public long? TotalBytes { get; init; }

    /// <summary>The bytes of that input read so far, when the source reports them.</summary>
    public long? BytesRead { get; init; }

    /// <summary>How far the run is, between 0 and 1: records against their total, or else bytes against theirs; <see langword="null"/> when unknown.</summary>
    public double? Fraction =>
        TotalRecords is > 0 and var records ? Math.Clamp((double)RecordsRead / records, 0, 1)
        : TotalBytes is > 0 and var bytes && BytesRead is { } read ? Math.Clamp((double)read / bytes, 0, 1)
        : null;

    /// <summary>The time left at the pace so far, when <see cref="Fraction"/> is known and above zero.</summary>
    public TimeSpan? EstimatedRemaining => Fraction is > 0 and var f ? Elapsed * ((1 - f) / f) : null;
}

/// <summary>Observes runs: dashboards, notifiers and post-import hooks register implementations in the container.</summary>
public interface IIngestionObserver
{
    /// <summary>A run started.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="runId">The run.</param>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the observer.</param>
    /// <returns>A task.</returns>
    ValueTask OnRunStartedAsync(string sourceName, Guid runId, RunRequest request, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>A batch was written.</summary>
    /// <param name="progress">The progress.</param>
    void OnProgress(IngestionProgress progress)
    {
    }

    /// <summary>A run ended (whatever its status). Exceptions are logged and never change the result.</summary>
    /// <param name="result">The result.</param>
    /// <param name="cancellationToken">Cancels the observer.</param>
    /// <returns>A task.</returns>
    ValueTask OnRunCompletedAsync(IngestionResult result, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}

/// <summary>Runs sources.</summary>
public interface IIngestionRunner
{
    /// <summary>The names of the registered sources.</summary>
    IReadOnlyList<string> SourceNames { get; }

    /// <summary>Runs one source: takes its lock, records a job, reads, writes, retries transient failures, and returns the result. Never throws for a failure of the source itself.</summary>
    /// <param name="sourceName">The registered source name.</param>
    /// <param name="request">The run settings, or <see langword="null"/> for <see cref="RunRequest.Default"/>.</param>
    /// <param name="cancellationToken">Stops the run cleanly; its result is <see cref="IngestionStatus.Cancelled"/>.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentException">No source has that name.</exception>
    Task<IngestionResult> RunAsync(string sourceName, RunRequest? request, CancellationToken cancellationToken);

    /// <summary>Runs several sources; one failing never stops the others.</summary>
    /// <param name="request">Which sources and how.</param>
    /// <param name="cancellationToken">Stops all runs.</param>
    /// <returns>The results, one per source.</returns>
    /// <exception cref="ArgumentException">A named source is not registered.</exception>
    Task<IngestionRunSummary> RunManyAsync(RunManyRequest request, CancellationToken cancellationToken);
}
