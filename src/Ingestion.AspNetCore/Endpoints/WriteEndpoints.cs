using Ingestion.AspNetCore.Diagnostics;
using Ingestion.AspNetCore.Security;
using Ingestion.Hosting;
using Ingestion.Operations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Ingestion.AspNetCore.Endpoints;

/// <summary>The POST routes: runs (trigger <c>http</c>, recorded with the caller's name), schedule pause and resume, cancel.</summary>
internal static class WriteEndpoints
{
    /// <summary>The trigger recorded with runs started over HTTP.</summary>
    public const string Trigger = "http";

    public static void Map(RouteGroupBuilder group)
    {
        group.MapPost("/sources/{name}/run", RunSourceAsync).WithName("IngestionRunSource")
            .WithSummary("Runs a source now (trigger 'http', recorded with the caller). Returns 202 at once, or 200 with the result with ?wait=true. Options: dryRun, full.");
        group.MapPost("/run-all", RunAllAsync).WithName("IngestionRunAll")
            .WithSummary("Runs every enabled source now, one after the other (trigger 'http'). Returns 202 at once, or 200 with the results with ?wait=true.");
        group.MapPost("/schedules/{name}/pause", PauseAsync).WithName("IngestionPauseSchedule")
            .WithSummary("Pauses a schedule for every host: its slots do not run until resumed.");
        group.MapPost("/schedules/{name}/resume", ResumeAsync).WithName("IngestionResumeSchedule")
            .WithSummary("Resumes a paused schedule.");
        group.MapPost("/jobs/{id:guid}/cancel", Cancel).WithName("IngestionCancelJob")
            .WithSummary("Asks a run going on in the host that answers to stop; it ends as cancelled, its committed batches kept. 404 when the run is not on this host.");
    }

    private static async Task<Results<Accepted<RunAcceptedResponse>, Ok<RunCompletedResponse>, NotFound<ProblemDetails>>> RunSourceAsync(
        HttpContext context, string name, bool? wait, bool? dryRun, bool? full, SourceCatalog catalog, CancellationToken cancellationToken)
    {
        if (catalog.Find(name) is null)
        {
            return Problems.NotFound("No such source", $"No source named '{name}' is registered. Registered sources: {string.Join(", ", catalog.Sources.Select(s => s.Name))}.");
        }

        return (await RunAsync(context, [name], all: false, wait, dryRun, full, cancellationToken).ConfigureAwait(false)).Result switch
        {
            Ok<RunCompletedResponse> completed => completed,
            var accepted => (Accepted<RunAcceptedResponse>)accepted,
        };
    }

    private static Task<Results<Accepted<RunAcceptedResponse>, Ok<RunCompletedResponse>>> RunAllAsync(
        HttpContext context, bool? wait, bool? dryRun, bool? full, CancellationToken cancellationToken) =>
        RunAsync(context, [], all: true, wait, dryRun, full, cancellationToken);

    private static async Task<Results<Accepted<RunAcceptedResponse>, Ok<RunCompletedResponse>>> RunAsync(
        HttpContext context, IReadOnlyList<string> sources, bool all, bool? wait, bool? dryRun, bool? full, CancellationToken cancellationToken)
    {
        var services = context.RequestServices;
        var caller = WriteAccess.CallerName(context.User);
        var request = new RunSourcesRequest
        {
            Sources = sources,
            All = all,
            DryRun = dryRun ?? false,
            FullRefresh = full ?? false,
            Trigger = Trigger,
            RequestedBy = caller,
        };
        Log.RunRequested(Logger(context), all ? "every enabled source" : string.Join(", ", sources), caller);
        if (wait == true)
        {
            var summary = await services.GetRequiredService<IIngestionOperations>().RunAsync(request, cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok(new RunCompletedResponse(Trigger, caller, summary.AllSucceeded, summary.Results.Select(ContractMapping.ToResponse).ToList()));
        }

        services.GetRequiredService<BackgroundRuns>().Start(request);
        var location = services.GetRequiredService<LinkGenerator>().GetPathByName(
            context, "IngestionJobs", all ? new RouteValueDictionary { ["status"] = "running" } : new RouteValueDictionary { ["source"] = sources[0] });
        return TypedResults.Accepted(
            location,
            new RunAcceptedResponse(sources, all, Trigger, caller, services.GetRequiredService<TimeProvider>().GetUtcNow()));
    }

    private static async Task<Results<Ok<SchedulePauseResponse>, NotFound<ProblemDetails>, ProblemHttpResult>> PauseAsync(
        HttpContext context, string name, IIngestionOperations operations, CancellationToken cancellationToken)
    {
        var caller = WriteAccess.CallerName(context.User);
        try
        {
            var wasPaused = (await operations.GetSchedulesAsync(0, cancellationToken).ConfigureAwait(false)).Any(s => s.Name == name && s.Pause is not null);
            await operations.PauseScheduleAsync(name, caller, cancellationToken).ConfigureAwait(false);
            Log.ScheduleChanged(Logger(context), name, "paused", caller);
            return TypedResults.Ok(new SchedulePauseResponse(name, Paused: true, caller, wasPaused));
        }
        catch (ArgumentException e)
        {
            return NoSuchSchedule(e);
        }
        catch (InvalidOperationException e)
        {
            return NoScheduling(e);
        }
    }

    private static async Task<Results<Ok<SchedulePauseResponse>, NotFound<ProblemDetails>, ProblemHttpResult>> ResumeAsync(
        HttpContext context, string name, IIngestionOperations operations, CancellationToken cancellationToken)
    {
        var caller = WriteAccess.CallerName(context.User);
        try
        {
            var wasPaused = await operations.ResumeScheduleAsync(name, cancellationToken).ConfigureAwait(false);
            Log.ScheduleChanged(Logger(context), name, "resumed", caller);
            return TypedResults.Ok(new SchedulePauseResponse(name, Paused: false, caller, wasPaused));
        }
        catch (ArgumentException e)
        {
            return NoSuchSchedule(e);
        }
        catch (InvalidOperationException e)
        {
            return NoScheduling(e);
        }
    }

    private static Results<Accepted<CancelAcceptedResponse>, NotFound<ProblemDetails>> Cancel(HttpContext context, Guid id, IIngestionOperations operations, IOptions<IngestionOptions> ingestion)
    {
        var caller = WriteAccess.CallerName(context.User);
        if (!operations.CancelRun(id))
        {
            return Problems.NotFound("No such run on this host", $"No run with the identifier {id} is going on in host '{ingestion.Value.HostName}'; a run can only be cancelled on the host that runs it.");
        }

        Log.CancelRequested(Logger(context), id, caller);
        return TypedResults.Accepted((string?)null, new CancelAcceptedResponse(id, caller));
    }

    private static NotFound<ProblemDetails> NoSuchSchedule(ArgumentException e) => Problems.NotFound("No such schedule", e.Message);

    private static ProblemHttpResult NoScheduling(InvalidOperationException e) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Scheduling is not available", detail: e.Message);

    private static ILogger Logger(HttpContext context) =>
        context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Ingestion.AspNetCore");
}
