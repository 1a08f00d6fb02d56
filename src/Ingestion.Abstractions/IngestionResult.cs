namespace Ingestion;

/// <summary>How a run ended.</summary>
public enum IngestionStatus
{
    /// <summary>Every record read was written; none was rejected.</summary>
    Succeeded,
    /// <summary>The run committed its work but some records were rejected within the error budget, or a cap (records, requests) stopped it early with a checkpoint.</summary>
    PartiallySucceeded,
    /// <summary>The run failed; batches committed before the failure stay committed.</summary>
    Failed,
    /// <summary>The run was cancelled (shutdown or caller); committed batches stay committed.</summary>
    Cancelled,
    /// <summary>The source reported that nothing changed since the last run; nothing was written.</summary>
    NotModified,
    /// <summary>Another process holds the source's run lock; this run did nothing.</summary>
    AlreadyRunning,
    /// <summary>
    /// The run's host died (or the run lost its run lock) before it closed its job: a later run of the source, or a
    /// host's start-up sweep, closed the job. Its counts are those of the batches it committed.
    /// </summary>
    Abandoned,
}

/// <summary>
/// Record counts of a run. They always add up: <c>Read = Created + Updated + Unchanged + Duplicates + Rejected</c>.
/// </summary>
public readonly record struct IngestionCounts
{
    /// <summary>Records read from the source, including rejected ones.</summary>
    public long Read { get; init; }

    /// <summary>Rows inserted.</summary>
    public long Created { get; init; }

    /// <summary>Existing rows whose content changed.</summary>
    public long Updated { get; init; }

    /// <summary>Existing rows whose content was already the same (not rewritten).</summary>
    public long Unchanged { get; init; }

    /// <summary>Records whose key appeared again later in the same batch (the last one wins).</summary>
    public long Duplicates { get; init; }

    /// <summary>Records rejected by the source or the sink, each stored with its reason.</summary>
    public long Rejected { get; init; }

    /// <summary>Rows deleted (or soft-deleted) by a full refresh; not part of <see cref="Read"/>.</summary>
    public long Deleted { get; init; }

    /// <summary>Records linked to a duplicate from another source by cross-source dedup; not part of <see cref="Read"/> (a linked record is also created, updated or unchanged).</summary>
    public long Linked { get; init; }

    /// <summary>Possible cross-source duplicates left for a person to confirm or reject; not part of <see cref="Read"/>.</summary>
    public long ForReview { get; init; }

    /// <summary>Whether <see cref="Read"/> equals the sum of the outcomes.</summary>
    public bool AddsUp => Read == Created + Updated + Unchanged + Duplicates + Rejected;

    /// <summary>Adds two sets of counts.</summary>
    /// <param name="a">The first counts.</param>
    /// <param name="b">The second counts.</param>
    /// <returns>The sums.</returns>
    public static IngestionCounts operator +(IngestionCounts a, IngestionCounts b) => new()
    {
        Read = a.Read + b.Read,
        Created = a.Created + b.Created,
        Updated = a.Updated + b.Updated,
        Unchanged = a.Unchanged + b.Unchanged,
        Duplicates = a.Duplicates + b.Duplicates,
        Rejected = a.Rejected + b.Rejected,
        Deleted = a.Deleted + b.Deleted,
        Linked = a.Linked + b.Linked,
        ForReview = a.ForReview + b.ForReview,
    };

    /// <summary>Adds two sets of counts.</summary>
    /// <param name="other">The counts to add.</param>
    /// <returns>The sums.</returns>
    public IngestionCounts Add(IngestionCounts other) => this + other;

    /// <inheritdoc />
    public override string ToString() =>
        $"read={Read} created={Created} updated={Updated} unchanged={Unchanged} duplicates={Duplicates} rejected={Rejected} deleted={Deleted}"
        + (Linked > 0 || ForReview > 0 ? $" linked={Linked} for_review={ForReview}" : string.Empty);
}

/// <summary>Why a run failed: the exception type, its message (secrets redacted) and where in the input it happened.</summary>
/// <param name="Type">The exception type name, or a category such as <c>Timeout</c>.</param>
/// <param name="Message">The message.</param>
/// <param name="Position">The input position (record number, line, page) when known.</param>
/// <param name="Field">The field at fault when known.</param>
public sealed record IngestionError(string Type, string Message, string? Position = null, string? Field = null)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Type}: {Message}{(Position is null ? string.Empty : $" (at {Position}{(Field is null ? string.Empty : $", field {Field}")})")}";
}

/// <summary>The outcome of one run of one source.</summary>
public sealed record IngestionResult
{
    /// <summary>The source name.</summary>
    public required string SourceName { get; init; }

    /// <summary>The run (import job) identifier.</summary>
    public required Guid RunId { get; init; }

    /// <summary>How the run ended.</summary>
    public required IngestionStatus Status { get; init; }

    /// <summary>When the run started.</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>When the run finished.</summary>
    public required DateTimeOffset FinishedAt { get; init; }

    /// <summary>How long the run took.</summary>
    public TimeSpan Duration => FinishedAt - StartedAt;

    /// <summary>The record counts (of committed work, or of what would be committed in a dry run).</summary>
    public IngestionCounts Counts { get; init; }

    /// <summary>The error when the run failed or was cancelled.</summary>
    public IngestionError? Error { get; init; }

    /// <summary>Whether nothing was committed because this was a dry run.</summary>
    public bool IsDryRun { get; init; }

    /// <summary>How many attempts the run took (1 when it did not retry).</summary>
    public int Attempts { get; init; } = 1;

    /// <summary>Whether the run ended without failing (succeeded, partially succeeded, not modified or already running elsewhere).</summary>
    public bool IsSuccess => Status is IngestionStatus.Succeeded or IngestionStatus.PartiallySucceeded or IngestionStatus.NotModified or IngestionStatus.AlreadyRunning;

    /// <inheritdoc />
    public override string ToString() =>
        $"{SourceName}: {Status} in {Duration.TotalSeconds:0.###}s, {Counts}{(Error is null ? string.Empty : $", error {Error}")}";
}
