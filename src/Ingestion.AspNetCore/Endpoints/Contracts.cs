namespace Ingestion.AspNetCore.Endpoints;

// The JSON shapes of the HTTP routes: a contract of their own, so a change in the library's read models never changes what
// clients receive unnoticed. Statuses are strings (the enum member names), times ISO 8601 with their offset, names camelCase.

/// <summary>Row counts of a run.</summary>
/// <param name="Read">Records read.</param>
/// <param name="Created">Rows created.</param>
/// <param name="Updated">Rows updated.</param>
/// <param name="Unchanged">Rows already up to date.</param>
/// <param name="Duplicates">Records skipped as duplicates within the run.</param>
/// <param name="Rejected">Records rejected, with a reason.</param>
/// <param name="Deleted">Rows deleted (deletion detection).</param>
/// <param name="Linked">Records linked to an existing entity (fuzzy matching).</param>
/// <param name="ForReview">Records waiting for a review.</param>
public sealed record CountsResponse(long Read, long Created, long Updated, long Unchanged, long Duplicates, long Rejected, long Deleted, long Linked, long ForReview);

/// <summary>One run of a source (a row of the job history).</summary>
/// <param name="Id">The job (run) identifier.</param>
/// <param name="SourceName">The source.</param>
/// <param name="Trigger">What started it: <c>schedule</c>, <c>cli</c>, <c>http</c>, <c>manual</c>...</param>
/// <param name="RequestedBy">Who asked for it, when known.</param>
/// <param name="Mode"><c>Incremental</c> or <c>FullRefresh</c>.</param>
/// <param name="IsDryRun">Whether nothing was committed.</param>
/// <param name="Host">The host process that ran it.</param>
/// <param name="StartedAt">When it started.</param>
/// <param name="FinishedAt">When it finished; null while running.</param>
/// <param name="Status"><c>Succeeded</c>, <c>PartiallySucceeded</c>, <c>Failed</c>, <c>Cancelled</c>, <c>NotModified</c>...; null while running.</param>
/// <param name="Counts">The counts of committed work.</param>
/// <param name="Error">The error when it failed.</param>
public sealed record JobResponse(
    Guid Id,
    string SourceName,
    string Trigger,
    string? RequestedBy,
    string Mode,
    bool IsDryRun,
    string Host,
    DateTimeOffset StartedAt,
    DateTimeOffset? FinishedAt,
    string? Status,
    CountsResponse Counts,
    string? Error);

/// <summary>A page of a list.</summary>
/// <typeparam name="T">The item shape.</typeparam>
/// <param name="Items">The items of the page.</param>
/// <param name="Total">How many items match in all.</param>
/// <param name="Offset">Items skipped before this page.</param>
/// <param name="Limit">The page size asked for.</param>
/// <param name="HasMore">Whether items follow this page.</param>
public sealed record PageResponse<T>(IReadOnlyList<T> Items, long Total, int Offset, int Limit, bool HasMore);

/// <summary>A record a run rejected.</summary>
/// <param name="Position">Where it was in the source (record number, line, page...).</param>
/// <param name="Field">The field at fault, when one is.</param>
/// <param name="Reason">Why it was rejected.</param>
/// <param name="Value">The offending value as read, when kept.</param>
public sealed record RejectedRecordResponse(string Position, string? Field, string Reason, string? Value);

/// <summary>One job with a page of its rejected records.</summary>
/// <param name="Job">The job.</param>
/// <param name="Rejected">A page of its rejected records.</param>
public sealed record JobDetailsResponse(JobResponse Job, PageResponse<RejectedRecordResponse> Rejected);

/// <summary>A registered source as operators see it.</summary>
/// <param name="Name">The source name.</param>
/// <param name="Origin"><c>BuiltIn</c>, <c>PlugIn</c> or <c>Host</c>.</param>
/// <param name="OriginDetail">The registration's description of its origin.</param>
/// <param name="Enabled">Whether it is enabled.</param>
/// <param name="RunningHere">Whether a run of it is going on in the host that answered.</param>
/// <param name="LastRun">Its latest run (any host), with that run's counts; null when it never ran.</param>
/// <param name="LastSuccessAt">When a run last succeeded.</param>
/// <param name="NextScheduledAt">Its next scheduled slot (UTC), when scheduled.</param>
/// <param name="NextSchedule">The schedule owning that slot.</param>
public sealed record SourceResponse(
    string Name,
    string Origin,
    string OriginDetail,
    bool Enabled,
    bool RunningHere,
    JobResponse? LastRun,
    DateTimeOffset? LastSuccessAt,
    DateTimeOffset? NextScheduledAt,
    string? NextSchedule);

/// <summary>A schedule slot time.</summary>
/// <param name="Utc">The instant in UTC.</param>
/// <param name="Local">The same instant in the schedule's time zone.</param>
public sealed record ScheduledTimeResponse(DateTimeOffset Utc, DateTimeOffset Local);

/// <summary>A configured schedule.</summary>
/// <param name="Name">The schedule name.</param>
/// <param name="Source">The source it runs.</param>
/// <param name="Cron">Its cron expression.</param>
/// <param name="TimeZone">The time zone the cron is read in.</param>
/// <param name="Active">Whether its slots run (enabled and not paused).</param>
/// <param name="Paused">Whether it is paused.</param>
/// <param name="PausedAt">When it was paused.</param>
/// <param name="PausedBy">Who paused it.</param>
/// <param name="NextRuns">Its next slots.</param>
/// <param name="LastRun">Its latest history row.</param>
public sealed record ScheduleResponse(
    string Name,
    string Source,
    string Cron,
    string TimeZone,
    bool Active,
    bool Paused,
    DateTimeOffset? PausedAt,
    string? PausedBy,
    IReadOnlyList<ScheduledTimeResponse> NextRuns,
    ScheduleRunResponse? LastRun);

/// <summary>A row of the schedule history: an attempt at a slot, or a skipped slot.</summary>
/// <param name="Id">The row identifier.</param>
/// <param name="Schedule">The schedule.</param>
/// <param name="Source">The source.</param>
/// <param name="Slot">The slot (UTC).</param>
/// <param name="Host">The host that ran the attempt.</param>
/// <param name="Trigger"><c>schedule</c> or <c>manual</c>.</param>
/// <param name="Attempt">The attempt number, from 1.</param>
/// <param name="Status"><c>Running</c>, <c>Succeeded</c>, <c>Failed</c>, <c>Cancelled</c>, <c>Skipped</c> or <c>Abandoned</c>.</param>
/// <param name="StartedAt">When the attempt started.</param>
/// <param name="FinishedAt">When it finished.</param>
/// <param name="Error">The error, when it did not succeed.</param>
public sealed record ScheduleRunResponse(
    Guid Id,
    string Schedule,
    string Source,
    DateTimeOffset Slot,
    string Host,
    string Trigger,
    int Attempt,
    string Status,
    DateTimeOffset StartedAt,
    DateTimeOffset? FinishedAt,
    string? Error);

/// <summary>A dead queue item.</summary>
/// <param name="Key">Its key.</param>
/// <param name="Attempts">Attempts made.</param>
/// <param name="LastError">The last attempt's error.</param>
/// <param name="FailedAt">When it last failed.</param>
/// <param name="EnqueuedAt">When it was enqueued.</param>
public sealed record DeadItemResponse(string Key, int Attempts, string? LastError, DateTimeOffset? FailedAt, DateTimeOffset EnqueuedAt);

/// <summary>The counts of a work queue and its latest dead items.</summary>
/// <param name="Queue">The queue name.</param>
/// <param name="Pending">Items waiting (ready or delayed).</param>
/// <param name="Running">Items claimed by a worker.</param>
/// <param name="Done">Items completed and remembered.</param>
/// <param name="Dead">Items that used all their attempts.</param>
/// <param name="OldestPendingAgeSeconds">The age of the oldest pending item, in seconds.</param>
/// <param name="DeadItems">The most recently failed dead items (up to the <c>dead</c> query value).</param>
public sealed record QueueResponse(string Queue, long Pending, long Running, long Done, long Dead, double? OldestPendingAgeSeconds, IReadOnlyList<DeadItemResponse> DeadItems);

/// <summary>A run request the host accepted and started in the background.</summary>
/// <param name="Sources">The sources asked for (empty for all enabled ones).</param>
/// <param name="All">Whether every enabled source runs.</param>
/// <param name="Trigger">The trigger recorded with the runs (<c>http</c>).</param>
/// <param name="RequestedBy">The caller recorded with the runs.</param>
/// <param name="AcceptedAt">When the host accepted it.</param>
public sealed record RunAcceptedResponse(IReadOnlyList<string> Sources, bool All, string Trigger, string RequestedBy, DateTimeOffset AcceptedAt);

/// <summary>The result of one source's run.</summary>
/// <param name="SourceName">The source.</param>
/// <param name="RunId">The job identifier.</param>
/// <param name="Status">Its status.</param>
/// <param name="Counts">Its counts.</param>
/// <param name="Error">The error when it failed.</param>
public sealed record RunResultResponse(string SourceName, Guid RunId, string Status, CountsResponse Counts, string? Error);

/// <summary>The results of runs the caller waited for (<c>?wait=true</c>).</summary>
/// <param name="Trigger">The trigger recorded with the runs.</param>
/// <param name="RequestedBy">The caller recorded with the runs.</param>
/// <param name="AllSucceeded">Whether no run failed.</param>
/// <param name="Results">One result per source, in order.</param>
public sealed record RunCompletedResponse(string Trigger, string RequestedBy, bool AllSucceeded, IReadOnlyList<RunResultResponse> Results);

/// <summary>The state of a schedule after a pause or resume.</summary>
/// <param name="Schedule">The schedule.</param>
/// <param name="Paused">Whether it is now paused.</param>
/// <param name="ChangedBy">Who asked.</param>
/// <param name="WasPaused">Whether it was paused before the request.</param>
public sealed record SchedulePauseResponse(string Schedule, bool Paused, string ChangedBy, bool WasPaused);

/// <summary>A cancellation the host passed on to a run.</summary>
/// <param name="RunId">The run.</param>
/// <param name="RequestedBy">Who asked.</param>
public sealed record CancelAcceptedResponse(Guid RunId, string RequestedBy);
