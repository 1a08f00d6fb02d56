using Ingestion.Stores;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingestion.Sync;

/// <summary>
/// Shows and edits a source's saved state safely: each edit takes the source's run lock (so it never races a
/// run), validates the new cursor against the source's cursor kind when given, and is recorded in the job
/// history as a job whose trigger is <c>state-edit</c> followed by the actor, the operation and the cursor
/// before and after (e.g. <c>state-edit by alice: set-cursor '2026-05-01T00:00:00Z' -> '2026-04-01T00:00:00Z' (replay April)</c>).
/// Works with any <see cref="ISourceStateStore"/>, <see cref="IImportJobStore"/> and <see cref="IRunLockProvider"/>.
/// </summary>
public sealed class SourceStateEditor
{
    /// <summary>The trigger prefix of the audit jobs.</summary>
    public const string AuditTrigger = "state-edit";

    private readonly ISourceStateStore _states;
    private readonly IImportJobStore _jobs;
    private readonly IRunLockProvider _locks;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _host;

    /// <summary>Creates the editor.</summary>
    /// <param name="states">The state store.</param>
    /// <param name="jobs">The job history the edits are recorded in.</param>
    /// <param name="locks">The run locks.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">A logger, or <see langword="null"/>.</param>
    /// <param name="host">The host name recorded in the audit jobs.</param>
    public SourceStateEditor(ISourceStateStore states, IImportJobStore jobs, IRunLockProvider locks, TimeProvider time, ILogger? logger = null, string? host = null)
    {
        ArgumentNullException.ThrowIfNull(states);
        ArgumentNullException.ThrowIfNull(jobs);
        ArgumentNullException.ThrowIfNull(locks);
        ArgumentNullException.ThrowIfNull(time);
        _states = states;
        _jobs = jobs;
        _locks = locks;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _host = host ?? $"{Environment.MachineName}:{Environment.ProcessId}";
    }

    /// <summary>The saved state of a source.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The state (<see cref="SourceState.Empty"/> for a source that never ran).</returns>
    public ValueTask<SourceState> ShowAsync(string sourceName, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sourceName);
        return _states.GetAsync(sourceName, cancellationToken);
    }

    /// <summary>Forgets the cursor and HTTP validators of a source: its next incremental run reads everything.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="actor">Who asked (recorded).</param>
    /// <param name="reason">Why (recorded), or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the edit.</param>
    /// <returns>The state after the edit.</returns>
    /// <exception cref="InvalidOperationException">The source is running.</exception>
    public Task<SourceState> ResetAsync(string sourceName, string actor, string? reason, CancellationToken cancellationToken) =>
        EditAsync(sourceName, actor, "reset", reason, s => s with { Cursor = null, ETag = null, LastModified = null, ContentHash = null }, cancellationToken);

    /// <summary>Sets the cursor of a source (forward or back), checked against its cursor kind.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="kind">The source's cursor kind.</param>
    /// <param name="cursor">The new cursor.</param>
    /// <param name="actor">Who asked (recorded).</param>
    /// <param name="reason">Why (recorded), or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the edit.</param>
    /// <returns>The state after the edit.</returns>
    /// <exception cref="ArgumentException">The cursor is not of the source's kind; nothing is changed.</exception>
    /// <exception cref="InvalidOperationException">The source is running.</exception>
    public Task<SourceState> SetCursorAsync(string sourceName, CursorKind kind, string cursor, string actor, string? reason, CancellationToken cancellationToken)
    {
        if (!CursorValue.TryParse(kind, cursor, out var value))
        {
            throw new ArgumentException($"Source '{sourceName}': '{cursor}' is not a valid {kind} cursor; the state was not changed.", nameof(cursor));
        }

        var text = value.ToString();
        return EditAsync(sourceName, actor, "set-cursor", reason, s => s with { Cursor = text }, cancellationToken);
    }

    private async Task<SourceState> EditAsync(string sourceName, string actor, string operation, string? reason, Func<SourceState, SourceState> edit, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sourceName);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        var jobId = Guid.NewGuid();
        var handle = await _locks.TryAcquireAsync(sourceName, jobId, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"Source '{sourceName}' is running; its state cannot be edited now. Try again when the run ends.");
        await using (handle.ConfigureAwait(false))
        {
            var before = await _states.GetAsync(sourceName, cancellationToken).ConfigureAwait(false);
            var after = edit(before);
            var started = _time.GetUtcNow();
            var trigger = $"{AuditTrigger} by {actor}: {operation} {Quote(before.Cursor)} -> {Quote(after.Cursor)}{(string.IsNullOrWhiteSpace(reason) ? string.Empty : $" ({reason})")}";
            var job = new ImportJob
            {
                Id = jobId,
                SourceName = sourceName,
                Trigger = trigger.Length <= 500 ? trigger : trigger[..497] + "...",
                Mode = IngestionMode.Incremental,
                Host = _host,
                StartedAt = started,
            };
            await _jobs.StartAsync(job, cancellationToken).ConfigureAwait(false);
            await _states.SaveAsync(sourceName, after, cancellationToken).ConfigureAwait(false);
            await _jobs.CompleteAsync(
                new IngestionResult
                {
                    SourceName = sourceName,
                    RunId = job.Id,
                    Status = IngestionStatus.Succeeded,
                    StartedAt = started,
                    FinishedAt = _time.GetUtcNow(),
                    Attempts = 1,
                },
                CancellationToken.None).ConfigureAwait(false);
            SyncLog.StateEdited(_logger, sourceName, operation, actor, before.Cursor, after.Cursor);
            return after;
        }
    }

    private static string Quote(string? cursor) => cursor is null ? "(none)" : $"'{cursor}'";
}
