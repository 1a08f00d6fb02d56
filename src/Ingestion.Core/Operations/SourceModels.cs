using Ingestion.Running;
using Ingestion.Stores;

namespace Ingestion.Operations;

/// <summary>Where a registered source comes from.</summary>
public enum SourceOrigin
{
    /// <summary>A built-in source of <c>Ingestion.Sources</c> (CSV, CKAN, JSON API, feeds, ICS, WFS).</summary>
    BuiltIn,
    /// <summary>A source declared by a plug-in file.</summary>
    PlugIn,
    /// <summary>A source class of the host application.</summary>
    Host,
}

/// <summary>One registered source as operators see it: origin, enablement, its last run and its next scheduled run.</summary>
public sealed record SourceOverview
{
    /// <summary>The source name.</summary>
    public required string Name { get; init; }

    /// <summary>Where the source comes from.</summary>
    public required SourceOrigin Origin { get; init; }

    /// <summary>The registration's own description of its origin (for a plug-in, its name and file).</summary>
    public required string OriginDetail { get; init; }

    /// <summary>Whether the source is enabled (<c>Ingestion:Sources:&lt;name&gt;:Enabled</c>).</summary>
    public required bool Enabled { get; init; }

    /// <summary>Whether a run of the source is going on in this host process.</summary>
    public bool RunningHere { get; init; }

    /// <summary>The latest recorded run (any host), or <see langword="null"/> when it never ran.</summary>
    public ImportJob? LastRun { get; init; }

    /// <summary>When a run of the source last succeeded (from its saved state).</summary>
    public DateTimeOffset? LastSuccessAt { get; init; }

    /// <summary>The next slot (UTC) of the source's active schedules, or <see langword="null"/> when none is scheduled.</summary>
    public DateTimeOffset? NextScheduledAt { get; init; }

    /// <summary>The schedule that owns <see cref="NextScheduledAt"/>.</summary>
    public string? NextSchedule { get; init; }
}

/// <summary>One job with a page of its rejected records.</summary>
/// <param name="Job">The job.</param>
/// <param name="Rejected">A page of the rejected records stored with it.</param>
public sealed record JobDetails(ImportJob Job, Page<StoredRejectedRecord> Rejected);

/// <summary>A run going on in this host process.</summary>
public sealed record ActiveRun
{
    /// <summary>The run (import job) identifier.</summary>
    public required Guid RunId { get; init; }

    /// <summary>The source.</summary>
    public required string Source { get; init; }

    /// <summary>What triggered it.</summary>
    public required string Trigger { get; init; }

    /// <summary>Who asked for it, when known.</summary>
    public string? RequestedBy { get; init; }

    /// <summary>Whether it is a dry run.</summary>
    public bool IsDryRun { get; init; }

    /// <summary>When it started.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>Its latest progress, or <see langword="null"/> before its first batch.</summary>
    public IngestionProgress? Progress { get; init; }

    /// <summary>Whether cancellation was requested.</summary>
    public bool CancellationRequested { get; init; }
}

/// <summary>What to run: named sources or all enabled ones, how, and on whose behalf.</summary>
public sealed record RunSourcesRequest
{
    /// <summary>The sources to run, in order; empty with <see cref="All"/> runs every enabled source.</summary>
    public IReadOnlyList<string> Sources { get; init; } = [];

    /// <summary>Run every enabled source.</summary>
    public bool All { get; init; }

    /// <summary>Read and validate everything, commit nothing.</summary>
    public bool DryRun { get; init; }

    /// <summary>Read everything, ignoring saved cursors.</summary>
    public bool FullRefresh { get; init; }

    /// <summary>
    /// A verifying full refresh (implies <see cref="FullRefresh"/>): stored column values are compared on the server
    /// instead of trusting stored row hashes, and rows that differ (edited by hand) are rewritten
    /// (<see cref="Running.RunRequest.Verify"/>).
    /// </summary>
    public bool Verify { get; init; }

    /// <summary>The most sources running at once; 1 runs them one after the other.</summary>
    public int Parallelism { get; init; } = 1;

    /// <summary>What triggered the runs, recorded in the job history (<c>cli</c>, <c>http</c>...).</summary>
    public string Trigger { get; init; } = "manual";

    /// <summary>Who asked for the runs (a user name, an API caller), recorded with them when known.</summary>
    public string? RequestedBy { get; init; }

    /// <summary>Receives progress after each batch of each source.</summary>
    public IProgress<IngestionProgress>? Progress { get; init; }

    /// <summary>Returns the problems with this request, each naming the field; empty when valid.</summary>
    /// <returns>The problems.</returns>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (All && Sources.Count > 0)
        {
            errors.Add($"Name sources or ask for all of them, not both (named: {string.Join(", ", Sources)}).");
        }

        if (!All && Sources.Count == 0)
        {
            errors.Add("Name at least one source, or ask for all of them.");
        }

        if (Parallelism < 1)
        {
            errors.Add($"Parallelism must be at least 1 (was {Parallelism}).");
        }

        if (string.IsNullOrWhiteSpace(Trigger))
        {
            errors.Add("Trigger must not be blank.");
        }

        return errors;
    }
}
