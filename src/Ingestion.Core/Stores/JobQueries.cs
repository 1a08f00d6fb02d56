namespace Ingestion.Stores;

/// <summary>A page of a longer list.</summary>
/// <typeparam name="T">The item type.</typeparam>
/// <param name="Items">The items of this page.</param>
/// <param name="Total">How many items the whole list has.</param>
/// <param name="Offset">How many items come before this page.</param>
/// <param name="Limit">The most items a page holds.</param>
public sealed record Page<T>(IReadOnlyList<T> Items, long Total, int Offset, int Limit)
{
    /// <summary>Whether items follow this page.</summary>
    public bool HasMore => Offset + Items.Count < Total;
}

/// <summary>Which import jobs to list: filters and the page. Jobs come newest first.</summary>
public sealed record ImportJobQuery
{
    /// <summary>Only this source's jobs, or every source's when <see langword="null"/>.</summary>
    public string? Source { get; init; }

    /// <summary>Only jobs that ended with this status, or any when <see langword="null"/>.</summary>
    public IngestionStatus? Status { get; init; }

    /// <summary>Only jobs still running (no status yet). Combined with <see cref="Status"/>, nothing matches.</summary>
    public bool RunningOnly { get; init; }

    /// <summary>Only jobs started at or after this instant.</summary>
    public DateTimeOffset? StartedFrom { get; init; }

    /// <summary>Only jobs started before this instant.</summary>
    public DateTimeOffset? StartedBefore { get; init; }

    /// <summary>How many matching jobs to skip.</summary>
    public int Offset { get; init; }

    /// <summary>The most jobs to return (1 to 1000).</summary>
    public int Limit { get; init; } = 50;

    /// <summary>Returns the problems with this query, each naming the field; empty when valid.</summary>
    /// <returns>The problems.</returns>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Offset < 0)
        {
            errors.Add($"Offset must not be negative (was {Offset}).");
        }

        if (Limit is < 1 or > 1000)
        {
            errors.Add($"Limit must be between 1 and 1000 (was {Limit}).");
        }

        if (StartedFrom is { } from && StartedBefore is { } before && before < from)
        {
            errors.Add($"StartedBefore ({before:O}) is earlier than StartedFrom ({from:O}).");
        }

        return errors;
    }

    /// <summary>Throws when the query is invalid.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it.</exception>
    public void ThrowIfInvalid()
    {
        var errors = Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException($"Invalid job query: {string.Join(" ", errors)}");
        }
    }

    /// <summary>Whether a job matches the filters (not the page).</summary>
    /// <param name="job">The job.</param>
    /// <returns><see langword="true"/> when it matches.</returns>
    public bool Matches(ImportJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return (Source is null || string.Equals(job.SourceName, Source, StringComparison.Ordinal))
            && (Status is null || job.Status == Status)
            && (!RunningOnly || job.Status is null)
            && (StartedFrom is null || job.StartedAt >= StartedFrom)
            && (StartedBefore is null || job.StartedAt < StartedBefore);
    }
}

/// <summary>A rejected record as stored with its job.</summary>
/// <param name="JobId">The job that rejected it.</param>
/// <param name="Source">The source.</param>
/// <param name="Position">Where it is in the input.</param>
/// <param name="Field">The field at fault, when known.</param>
/// <param name="Reason">Why it was rejected.</param>
/// <param name="RawValue">The raw value or line (truncated by the store).</param>
public sealed record StoredRejectedRecord(Guid JobId, string Source, string Position, string? Field, string Reason, string? RawValue);
