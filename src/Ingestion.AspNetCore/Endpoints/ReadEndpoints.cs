using Ingestion.Operations;
using Ingestion.Stores;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Ingestion.AspNetCore.Endpoints;

/// <summary>The GET routes, each a thin layer over <see cref="IIngestionOperations"/>.</summary>
internal static class ReadEndpoints
{
    public static void Map(RouteGroupBuilder group)
    {
        group.MapGet("/jobs", GetJobsAsync).WithName("IngestionJobs")
            .WithSummary("Jobs, newest first, one page at a time; filters: source, status (or 'running'), from and to (start time, ISO 8601).");
        group.MapGet("/jobs/{id:guid}", GetJobAsync).WithName("IngestionJob")
            .WithSummary("One job with a page of its rejected records.");
        group.MapGet("/sources", GetSourcesAsync).WithName("IngestionSources")
            .WithSummary("Every registered source: enabled, running, last run with its counts, last success, next scheduled run.");
        group.MapGet("/schedules", GetSchedulesAsync).WithName("IngestionSchedules")
            .WithSummary("The configured schedules with their next runs, pause and latest run.");
        group.MapGet("/schedules/runs", GetScheduleRunsAsync).WithName("IngestionScheduleRuns")
            .WithSummary("The schedule history, newest first.");
        group.MapGet("/queues", GetQueuesAsync).WithName("IngestionQueues")
            .WithSummary("The counts of every registered work queue and its most recently failed dead items.");
    }

    private static async Task<Results<Ok<PageResponse<JobResponse>>, ProblemHttpResult>> GetJobsAsync(
        IIngestionOperations operations,
        IOptions<IngestionEndpointOptions> options,
        string? source,
        string? status,
        DateTimeOffset? from,
        DateTimeOffset? to,
        int? offset,
        int? limit,
        CancellationToken cancellationToken)
    {
        IngestionStatus? wanted = null;
        var runningOnly = string.Equals(status, "running", StringComparison.OrdinalIgnoreCase);
        if (!runningOnly && status is { Length: > 0 })
        {
            if (!Enum.TryParse<IngestionStatus>(status, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed))
            {
                return Problems.BadQuery("status", $"'{status}' is not a job status; use one of {string.Join(", ", Enum.GetNames<IngestionStatus>())} or 'running'.");
            }

            wanted = parsed;
        }

        if (Limit(limit, options.Value) is { } badLimit)
        {
            return badLimit;
        }

        var query = new ImportJobQuery
        {
            Source = string.IsNullOrEmpty(source) ? null : source,
            Status = wanted,
            RunningOnly = runningOnly,
            StartedFrom = from,
            StartedBefore = to,
            Offset = offset ?? 0,
            Limit = limit ?? options.Value.DefaultPageSize,
        };
        if (query.Validate() is { Count: > 0 } problems)
        {
            return Problems.BadQuery("query", string.Join(" ", problems));
        }

        var page = await operations.GetJobsAsync(query, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(page.ToResponse(ContractMapping.ToResponse));
    }

    private static async Task<Results<Ok<JobDetailsResponse>, NotFound<ProblemDetails>, ProblemHttpResult>> GetJobAsync(
        IIngestionOperations operations,
        IOptions<IngestionEndpointOptions> options,
        Guid id,
        int? offset,
        int? limit,
        CancellationToken cancellationToken)
    {
        if (Limit(limit, options.Value) is { } badLimit)
        {
            return badLimit;
        }

        if (offset < 0)
        {
            return Problems.BadQuery("offset", $"offset must not be negative (was {offset}).");
        }

        var details = await operations.GetJobAsync(id, offset ?? 0, limit ?? options.Value.DefaultPageSize, cancellationToken).ConfigureAwait(false);
        return details is null
            ? Problems.NotFound("No such job", $"No job has the identifier {id}.")
            : TypedResults.Ok(new JobDetailsResponse(details.Job.ToResponse(), details.Rejected.ToResponse(ContractMapping.ToResponse)));
    }

    private static async Task<Ok<List<SourceResponse>>> GetSourcesAsync(IIngestionOperations operations, CancellationToken cancellationToken) =>
        TypedResults.Ok((await operations.GetSourcesAsync(cancellationToken).ConfigureAwait(false)).Select(ContractMapping.ToResponse).ToList());

    private static async Task<Results<Ok<List<ScheduleResponse>>, ProblemHttpResult>> GetSchedulesAsync(IIngestionOperations operations, int? next, CancellationToken cancellationToken)
    {
        if (next is < 0 or > 100)
        {
            return Problems.BadQuery("next", $"next must be between 0 and 100 (was {next}).");
        }

        var schedules = await operations.GetSchedulesAsync(next ?? 5, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(schedules.Select(ContractMapping.ToResponse).ToList());
    }

    private static async Task<Results<Ok<List<ScheduleRunResponse>>, ProblemHttpResult>> GetScheduleRunsAsync(
        IIngestionOperations operations,
        IOptions<IngestionEndpointOptions> options,
        string? schedule,
        int? limit,
        CancellationToken cancellationToken)
    {
        if (Limit(limit, options.Value) is { } badLimit)
        {
            return badLimit;
        }

        var runs = await operations.GetScheduleRunsAsync(string.IsNullOrEmpty(schedule) ? null : schedule, limit ?? options.Value.DefaultPageSize, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(runs.Select(ContractMapping.ToResponse).ToList());
    }

    private static async Task<Results<Ok<List<QueueResponse>>, ProblemHttpResult>> GetQueuesAsync(IIngestionOperations operations, int? dead, CancellationToken cancellationToken)
    {
        if (dead is < 0 or > 1000)
        {
            return Problems.BadQuery("dead", $"dead must be between 0 and 1000 (was {dead}).");
        }

        var list = new List<QueueResponse>();
        foreach (var stats in await operations.GetQueueStatsAsync(cancellationToken).ConfigureAwait(false))
        {
            var deadItems = stats.Dead > 0 && dead != 0
                ? await operations.GetDeadItemsAsync(stats.Queue, dead ?? 5, cancellationToken).ConfigureAwait(false)
                : [];
            list.Add(stats.ToResponse(deadItems));
        }

        return TypedResults.Ok(list);
    }

    private static ProblemHttpResult? Limit(int? limit, IngestionEndpointOptions options) =>
        limit is { } l && (l < 1 || l > options.MaxPageSize)
            ? Problems.BadQuery("limit", $"limit must be between 1 and {options.MaxPageSize} (was {l}).")
            : null;
}
