using Microsoft.Extensions.Logging;

namespace Ingestion.Diagnostics;

internal static partial class Log
{
    [LoggerMessage(1000, LogLevel.Information, "Run {RunId} of source {SourceName} started ({Mode}, dry run: {DryRun}, trigger: {Trigger})")]
    public static partial void RunStarted(ILogger logger, string sourceName, Guid runId, IngestionMode mode, bool dryRun, string trigger);

    [LoggerMessage(1001, LogLevel.Information, "Run {RunId} of source {SourceName} ended {Status} in {DurationMs} ms: {Counts}")]
    public static partial void RunEnded(ILogger logger, string sourceName, Guid runId, IngestionStatus status, long durationMs, IngestionCounts counts);

    [LoggerMessage(1002, LogLevel.Error, "Run {RunId} of source {SourceName} failed: {Error}")]
    public static partial void RunFailed(ILogger logger, Exception exception, string sourceName, Guid runId, IngestionError error);

    [LoggerMessage(1003, LogLevel.Warning, "Source {SourceName} attempt {Attempt} failed with a transient error; retrying in {DelayMs} ms")]
    public static partial void Retrying(ILogger logger, Exception? exception, string sourceName, int attempt, long delayMs);

    [LoggerMessage(1004, LogLevel.Information, "Source {SourceName} is already running elsewhere; this run was skipped")]
    public static partial void AlreadyRunning(ILogger logger, string sourceName);

    [LoggerMessage(1005, LogLevel.Debug, "Source {SourceName} batch committed: {Written} written, {Read} read so far")]
    public static partial void BatchWritten(ILogger logger, string sourceName, long written, long read);

    [LoggerMessage(1006, LogLevel.Warning, "Source {SourceName} rejected a record at {Position}, field {Field}: {Reason}")]
    public static partial void RecordRejected(ILogger logger, string sourceName, string position, string? field, string reason);

    [LoggerMessage(1007, LogLevel.Warning, "Observer {Observer} failed for source {SourceName}; the run result is unchanged")]
    public static partial void ObserverFailed(ILogger logger, Exception exception, string observer, string sourceName);

    [LoggerMessage(1008, LogLevel.Information, "Source {SourceName} stopped at its cap of {Limit} records")]
    public static partial void RecordCapReached(ILogger logger, string sourceName, long limit);

    [LoggerMessage(1010, LogLevel.Warning, "Source {SourceName} failed ({SourceError}) and the records read before the failure could not be written either")]
    public static partial void FlushAfterFailureFailed(ILogger logger, Exception exception, string sourceName, string sourceError);

    [LoggerMessage(1009, LogLevel.Warning, "Could not record the end of run {RunId} of source {SourceName}")]
    public static partial void JobStoreFailed(ILogger logger, Exception exception, string sourceName, Guid runId);

    [LoggerMessage(1012, LogLevel.Warning, "Closed job {JobId} of source {SourceName} as Abandoned: its run on host {Host} stopped without closing it (last alive {LastAlive}, {Read} records committed)")]
    public static partial void JobAbandoned(ILogger logger, string sourceName, Guid jobId, string host, DateTimeOffset lastAlive, long read);

    [LoggerMessage(1011, LogLevel.Information, "Source {SourceName} stopped early: {Reason}")]
    public static partial void StoppedEarly(ILogger logger, string sourceName, string reason);

    [LoggerMessage(1012, LogLevel.Warning, "Source {SourceName} now writes to {Target} (its state was saved for {PreviousTarget}): the saved cursor and validators are reset, so the whole source is read again")]
    public static partial void StateResetForNewTarget(ILogger logger, string sourceName, string previousTarget, string target);
}
