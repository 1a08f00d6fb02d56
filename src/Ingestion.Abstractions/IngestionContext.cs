using Microsoft.Extensions.Logging;

namespace Ingestion;

/// <summary>How much of the source a run reads.</summary>
public enum IngestionMode
{
    /// <summary>Read what changed since the saved state (cursor, HTTP validators).</summary>
    Incremental,
    /// <summary>Read everything, ignoring the saved cursor; the sink may detect deletions.</summary>
    FullRefresh,
}

/// <summary>
/// What a source sees of its run: identity, mode, saved state, limits, logger, and the callbacks to
/// reject a record or mark a checkpoint. Created by the runtime (or a test kit); sources never create one.
/// </summary>
public abstract class IngestionContext
{
    /// <summary>The name the source is registered under.</summary>
    public abstract string SourceName { get; }

    /// <summary>The identifier of this run (one import job).</summary>
    public abstract Guid RunId { get; }

    /// <summary>Incremental or full refresh.</summary>
    public abstract IngestionMode Mode { get; }

    /// <summary>Whether nothing will be committed: sources still read and validate everything.</summary>
    public abstract bool IsDryRun { get; }

    /// <summary>What triggered the run (<c>manual</c>, <c>schedule</c>, <c>cli</c>, ...).</summary>
    public abstract string Trigger { get; }

    /// <summary>The state saved by the last committed checkpoint of this source (empty on a first run; its cursor is ignored on a full refresh).</summary>
    public abstract SourceState State { get; }

    /// <summary>Caps for this run.</summary>
    public abstract IngestionLimits Limits { get; }

    /// <summary>Free-form run parameters (e.g. a backfill range), from the trigger.</summary>
    public abstract IReadOnlyDictionary<string, string> Parameters { get; }

    /// <summary>A logger scoped to this source run.</summary>
    public abstract ILogger Logger { get; }

    /// <summary>The clock: use it instead of <see cref="DateTimeOffset.UtcNow"/>.</summary>
    public abstract TimeProvider TimeProvider { get; }

    /// <summary>
    /// Reports an input record that cannot be ingested. The run goes on; the record counts as
    /// rejected, is stored with its reason, and counts against the source's error budget.
    /// </summary>
    /// <param name="rejected">The position, field, reason and raw value.</param>
    public abstract void Reject(RejectedRecord rejected);

    /// <summary>
    /// Marks a resumable position: every record yielded before this call is covered by it. The
    /// runtime saves the checkpoint in the same transaction as the last of those records, so a
    /// run that fails later resumes here with nothing lost and nothing duplicated.
    /// </summary>
    /// <param name="checkpoint">The cursor and HTTP validators to save.</param>
    public abstract void Checkpoint(SourceCheckpoint checkpoint);

    /// <summary>
    /// Ends the run as <see cref="IngestionStatus.NotModified"/>: the source found, before yielding
    /// any record, that nothing changed since the saved state (HTTP 304, same content hash).
    /// </summary>
    /// <param name="checkpoint">Validators to save (e.g. a refreshed last-checked time), or <see langword="null"/>.</param>
    public abstract void NotModified(SourceCheckpoint? checkpoint = null);

    /// <summary>
    /// Reports that the source stopped on purpose before reading everything (for example its request
    /// budget is spent). Call it after the checkpoint that covers the records read; the run ends as
    /// <see cref="IngestionStatus.PartiallySucceeded"/> (not failed) and the next run resumes from that checkpoint.
    /// </summary>
    /// <param name="reason">Why the source stopped, in words a person can act on.</param>
    public virtual void StoppedEarly(string reason)
    {
    }

    /// <summary>
    /// Tells the runtime how large the input is, when the source knows (a total announced by the API, a file size),
    /// so that progress displays can show how far the run is and when it should end. Call it again when it changes
    /// (a later page announces a new total). Optional: without it progress shows counts and rates only.
    /// </summary>
    /// <param name="totalRecords">The records the run should read, or <see langword="null"/> when unknown.</param>
    /// <param name="totalBytes">The bytes of input the run should read, or <see langword="null"/> when unknown.</param>
    /// <param name="bytesRead">Returns the bytes of that input read so far (called from another thread; it must be cheap and never throw).</param>
    public virtual void ReportInputSize(long? totalRecords, long? totalBytes = null, Func<long>? bytesRead = null)
    {
    }

    /// <summary>
    /// Registers a secret of this run (an API key, a token, a key in a URL path): from now on the runtime masks
    /// that value, whatever setting or parameter it came from, in the run's log messages, its error, its job row and
    /// its rejected records. Values shorter than 4 characters are ignored (masking them would garble every text).
    /// </summary>
    /// <param name="value">The secret value.</param>
    public virtual void AddSecret(string value)
    {
    }

    /// <summary>Returns <paramref name="text"/> with every secret registered by <see cref="AddSecret"/> masked.</summary>
    /// <param name="text">A message, a URL, a raw record.</param>
    /// <returns>The masked text; <see langword="null"/> for <see langword="null"/>.</returns>
    public virtual string? Redact(string? text) => text;

    /// <summary>Reports read progress that the record count does not show (bytes, pages).</summary>
    /// <param name="message">A short human-readable progress message.</param>
    public virtual void ReportProgress(string message)
    {
    }
}

/// <summary>Caps applied to one run. <see langword="null"/> means no cap.</summary>
public sealed record IngestionLimits
{
    /// <summary>No caps.</summary>
    public static IngestionLimits None { get; } = new();

    /// <summary>The most records to read; the run stops cleanly (with its last checkpoint) when reached.</summary>
    public long? MaxRecords { get; init; }

    /// <summary>The most outgoing requests a source may make in this run.</summary>
    public int? MaxRequests { get; init; }
}

/// <summary>A record of the input that could not be ingested.</summary>
/// <param name="Position">Where it is in the input: a line number, a record number, a page and index; 1-based where it is a number.</param>
/// <param name="Field">The field at fault, or <see langword="null"/> when the whole record is bad.</param>
/// <param name="Reason">Why it was rejected, in words a person can act on.</param>
/// <param name="RawValue">The offending raw value or line, truncated by the store to a sane size.</param>
public sealed record RejectedRecord(string Position, string? Field, string Reason, string? RawValue = null);

/// <summary>What a source asks the runtime to save with its data at a checkpoint.</summary>
/// <param name="Cursor">An opaque resume position (a timestamp, an id, a page token), or <see langword="null"/> to keep the previous one.</param>
public sealed record SourceCheckpoint(string? Cursor)
{
    /// <summary>The HTTP <c>ETag</c> of the content read, to send back as <c>If-None-Match</c>.</summary>
    public string? ETag { get; init; }

    /// <summary>The HTTP <c>Last-Modified</c> of the content read, to send back as <c>If-Modified-Since</c>.</summary>
    public DateTimeOffset? LastModified { get; init; }

    /// <summary>A hash of the content read, to detect unchanged content from servers that ignore validators.</summary>
    public string? ContentHash { get; init; }

    /// <summary>Other small values the source wants back next run (e.g. requests spent today).</summary>
    public IReadOnlyDictionary<string, string>? Values { get; init; }
}

/// <summary>The state a source saved at its last committed checkpoint.</summary>
public sealed record SourceState
{
    /// <summary>The state of a source that never ran.</summary>
    public static SourceState Empty { get; } = new();

    /// <summary>The saved cursor.</summary>
    public string? Cursor { get; init; }

    /// <summary>The saved HTTP <c>ETag</c>.</summary>
    public string? ETag { get; init; }

    /// <summary>The saved HTTP <c>Last-Modified</c>.</summary>
    public DateTimeOffset? LastModified { get; init; }

    /// <summary>The saved content hash.</summary>
    public string? ContentHash { get; init; }

    /// <summary>The other saved values.</summary>
    public IReadOnlyDictionary<string, string> Values { get; init; } = new Dictionary<string, string>();

    /// <summary>When the source was last checked (run), whatever the outcome.</summary>
    public DateTimeOffset? LastChecked { get; init; }

    /// <summary>When the source last committed rows.</summary>
    public DateTimeOffset? LastImported { get; init; }

    /// <summary>When a run of the source last succeeded.</summary>
    public DateTimeOffset? LastSuccess { get; init; }

    /// <summary>Returns this state with a checkpoint applied: non-null fields of the checkpoint win; values are merged.</summary>
    /// <param name="checkpoint">The checkpoint.</param>
    /// <returns>The new state.</returns>
    public SourceState Apply(SourceCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var values = Values;
        if (checkpoint.Values is { Count: > 0 })
        {
            var merged = new Dictionary<string, string>(Values, StringComparer.Ordinal);
            foreach (var (k, v) in checkpoint.Values)
            {
                merged[k] = v;
            }

            values = merged;
        }

        return this with
        {
            Cursor = checkpoint.Cursor ?? Cursor,
            ETag = checkpoint.ETag ?? ETag,
            LastModified = checkpoint.LastModified ?? LastModified,
            ContentHash = checkpoint.ContentHash ?? ContentHash,
            Values = values,
        };
    }
}
