using Ingestion.Operations;
using Ingestion.Queue;
using Ingestion.Running;
using Ingestion.Scheduling;
using Ingestion.Stores;

namespace Ingestion.AspNetCore.Endpoints;

/// <summary>Turns the library's read models into the HTTP shapes of Contracts.cs.</summary>
internal static class ContractMapping
{
    public static CountsResponse ToResponse(this IngestionCounts c) =>
        new(c.Read, c.Created, c.Updated, c.Unchanged, c.Duplicates, c.Rejected, c.Deleted, c.Linked, c.ForReview);

    public static JobResponse ToResponse(this ImportJob job) =>
        new(job.Id, job.SourceName, job.Trigger, job.RequestedBy, job.Mode.ToString(), job.IsDryRun, job.Host, job.StartedAt, job.FinishedAt, job.Status?.ToString(), job.Counts.ToResponse(), job.Error);

    public static PageResponse<TOut> ToResponse<TIn, TOut>(this Page<TIn> page, Func<TIn, TOut> map) =>
        new(page.Items.Select(map).ToList(), page.Total, page.Offset, page.Limit, page.HasMore);

    public static RejectedRecordResponse ToResponse(this StoredRejectedRecord r) => new(r.Position, r.Field, r.Reason, r.RawValue);

    public static SourceResponse ToResponse(this SourceOverview s) =>
        new(s.Name, s.Origin.ToString(), s.OriginDetail, s.Enabled, s.RunningHere, s.LastRun?.ToResponse(), s.LastSuccessAt, s.NextScheduledAt, s.NextSchedule);

    public static ScheduleRunResponse ToResponse(this ScheduleRun r) =>
        new(r.Id, r.Schedule, r.Source, r.Slot, r.Host, r.Trigger, r.Attempt, r.Status.ToString(), r.StartedAt, r.FinishedAt, r.Error);

    public static ScheduleResponse ToResponse(this ScheduleOverview s) =>
        new(s.Name, s.Source, s.Cron, s.TimeZone, s.Active, s.Pause is not null, s.Pause?.PausedAt, s.Pause?.PausedBy,
            s.NextRuns.Select(t => new ScheduledTimeResponse(t.Utc, t.Local)).ToList(), s.LastRun?.ToResponse());

    public static QueueResponse ToResponse(this WorkQueueStats q, IReadOnlyList<DeadWorkItem> dead) =>
        new(q.Queue, q.Pending, q.Running, q.Done, q.Dead, q.OldestPendingAge?.TotalSeconds,
            dead.Select(d => new DeadItemResponse(d.Key, d.Attempts, d.LastError, d.FailedAt, d.EnqueuedAt)).ToList());

    public static RunResultResponse ToResponse(this IngestionResult r) =>
        new(r.SourceName, r.RunId, r.Status.ToString(), r.Counts.ToResponse(), r.Error?.ToString());
}
