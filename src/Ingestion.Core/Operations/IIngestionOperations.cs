using Ingestion.Plugins;
using Ingestion.Queue;
using Ingestion.Running;
using Ingestion.Scheduling;
using Ingestion.Stores;

namespace Ingestion.Operations;

/// <summary>
/// What operators ask of a running Ingestion host, whatever the surface (command line, HTTP endpoints, dashboard):
/// the read models (sources, jobs, schedules, queues, plug-ins, runs in progress) and the actions (run, reset or set
/// a cursor, pause a schedule, cancel a run). Registered by <c>AddIngestion</c>; it works over the registered stores,
/// so it reads the same history every host of the database writes.
/// </summary>
public interface IIngestionOperations
{
    /// <summary>Every registered source with its origin, enablement, last run, last success and next scheduled run.</summary>
    /// <param name="cancellationToken">Cancels the queries.</param>
    /// <returns>The sources, in registration order.</returns>
    Task<IReadOnlyList<SourceOverview>> GetSourcesAsync(CancellationToken cancellationToken);

    /// <summary>Jobs matching filters, newest first, one page at a time.</summary>
    /// <param name="query">The filters and page.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The page.</returns>
    /// <exception cref="ArgumentException">The query is invalid; the message names the field.</exception>
    Task<Page<ImportJob>> GetJobsAsync(ImportJobQuery query, CancellationToken cancellationToken);

    /// <summary>One job with a page of its rejected records.</summary>
    /// <param name="jobId">The job.</param>
    /// <param name="rejectedOffset">Rejected records to skip.</param>
    /// <param name="rejectedLimit">The most rejected records to return (1 to 1000).</param>
    /// <param name="cancellationToken">Cancels the queries.</param>
    /// <returns>The job, or <see langword="null"/> when no job has that identifier.</returns>
    Task<JobDetails?> GetJobAsync(Guid jobId, int rejectedOffset, int rejectedLimit, CancellationToken cancellationToken);

    /// <summary>The configured schedules with their next slots (UTC and local), pause and latest run; empty without scheduling.</summary>
    /// <param name="nextCount">Next slots per schedule.</param>
    /// <param name="cancellationToken">Cancels the queries.</param>
    /// <returns>The schedules, in name order.</returns>
    Task<IReadOnlyList<ScheduleOverview>> GetSchedulesAsync(int nextCount, CancellationToken cancellationToken);

    /// <summary>The schedule history, newest first; empty without scheduling.</summary>
    /// <param name="schedule">Only this schedule's rows, or every schedule's.</param>
    /// <param name="count">How many rows.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The rows.</returns>
    Task<IReadOnlyList<ScheduleRun>> GetScheduleRunsAsync(string? schedule, int count, CancellationToken cancellationToken);

    /// <summary>The counts of every queue the host registered (<c>AddWorkQueue</c>); empty without a queue store.</summary>
    /// <param name="cancellationToken">Cancels the queries.</param>
    /// <returns>One entry per queue, in name order.</returns>
    Task<IReadOnlyList<WorkQueueStats>> GetQueueStatsAsync(CancellationToken cancellationToken);

    /// <summary>A queue's dead items, most recently failed first.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="limit">The most items.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The dead items.</returns>
    /// <exception cref="InvalidOperationException">The host has no queue store.</exception>
    Task<IReadOnlyList<DeadWorkItem>> GetDeadItemsAsync(string queue, int limit, CancellationToken cancellationToken);

    /// <summary>Makes dead items of a queue ready again with a fresh attempt count.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="keys">The keys, or <see langword="null"/> for every dead item.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were requeued.</returns>
    /// <exception cref="InvalidOperationException">The host has no queue store.</exception>
    Task<int> RequeueDeadAsync(string queue, IReadOnlyCollection<string>? keys, CancellationToken cancellationToken);

    /// <summary>The plug-ins the host loaded or refused; empty when it loads none.</summary>
    /// <returns>The plug-ins.</returns>
    IReadOnlyList<PluginInfo> GetPlugins();

    /// <summary>The runs going on in this host process.</summary>
    /// <returns>The runs, oldest first.</returns>
    IReadOnlyList<ActiveRun> GetActiveRuns();

    /// <summary>Runs named sources, or every enabled one; one failing never stops the others.</summary>
    /// <param name="request">Which sources, how, and on whose behalf.</param>
    /// <param name="cancellationToken">Stops the runs (they end as cancelled, committed batches kept).</param>
    /// <returns>One result per source, in order.</returns>
    /// <exception cref="ArgumentException">The request is invalid or names an unknown source; nothing ran.</exception>
    Task<IngestionRunSummary> RunAsync(RunSourcesRequest request, CancellationToken cancellationToken);

    /// <summary>A source's saved state (cursor, HTTP validators, timestamps).</summary>
    /// <param name="source">The source.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The state.</returns>
    /// <exception cref="ArgumentException">No source has that name.</exception>
    Task<SourceState> GetStateAsync(string source, CancellationToken cancellationToken);

    /// <summary>Forgets a source's cursor and HTTP validators, so its next run reads everything; recorded in the job history.</summary>
    /// <param name="source">The source.</param>
    /// <param name="requestedBy">Who asked (recorded).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new state.</returns>
    /// <exception cref="ArgumentException">No source has that name.</exception>
    /// <exception cref="InvalidOperationException">The source is running.</exception>
    Task<SourceState> ResetStateAsync(string source, string requestedBy, CancellationToken cancellationToken);

    /// <summary>Sets a source's cursor (an opaque value, saved as given); recorded in the job history.</summary>
    /// <param name="source">The source.</param>
    /// <param name="cursor">The new cursor.</param>
    /// <param name="requestedBy">Who asked (recorded).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new state.</returns>
    /// <exception cref="ArgumentException">No source has that name, or the cursor is blank.</exception>
    /// <exception cref="InvalidOperationException">The source is running.</exception>
    Task<SourceState> SetCursorAsync(string source, string cursor, string requestedBy, CancellationToken cancellationToken);

    /// <summary>Pauses a schedule for every host of the store: its slots are not run until resumed (a manual run still is).</summary>
    /// <param name="schedule">The schedule.</param>
    /// <param name="requestedBy">Who asked (recorded).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The pause.</returns>
    /// <exception cref="ArgumentException">No schedule has that name.</exception>
    /// <exception cref="InvalidOperationException">The host has no scheduling.</exception>
    Task<SchedulePause> PauseScheduleAsync(string schedule, string requestedBy, CancellationToken cancellationToken);

    /// <summary>Resumes a paused schedule (its next slot runs; the slots passed over while paused do not).</summary>
    /// <param name="schedule">The schedule.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether it was paused.</returns>
    /// <exception cref="ArgumentException">No schedule has that name.</exception>
    /// <exception cref="InvalidOperationException">The host has no scheduling.</exception>
    Task<bool> ResumeScheduleAsync(string schedule, CancellationToken cancellationToken);

    /// <summary>Asks a run of this host process to stop; it ends as cancelled, its committed batches kept.</summary>
    /// <param name="runId">The run (job) identifier.</param>
    /// <returns><see langword="false"/> when no run of this process has that identifier.</returns>
    bool CancelRun(Guid runId);
}
