using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Ingestion.AspNetCore.Endpoints;
using Ingestion.Hosting;
using Ingestion.Postgres.Scheduling;
using Ingestion.Running;
using Ingestion.Scheduling;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.AspNetCore.Tests.Endpoints;

public class ReadEndpointTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static void Sources(IIngestionBuilder b)
    {
        b.AddSource("read-rows", _ => new ItemSource(_ => ItemSource.Rows(5)), o => { o.Table = "read_rows"; o.CreateTable = true; });
        b.AddSource("read-rejects", _ => new ItemSource(_ => ItemSource.Rows(6).Select(i => i.Id is "i0002" or "i0003" or "i0005" ? new Item { Id = i.Id, Note = "x\0y" } : i)), o =>
        {
            o.Table = "read_rejects";
            o.CreateTable = true;
            o.MaxRejected = 10;
        });
        b.AddSource("read-broken", _ => new FailingSource("Feed answered 500 Internal Server Error."), o => { o.Table = "read_broken"; o.CreateTable = true; });
    }

    [Fact]
    public async Task Jobs_are_paged_newest_first_and_filtered_by_source_status_and_start_time()
    {
        // A database of its own: the totals count every job of the database.
        var own = new PostgresDatabase();
        await own.InitializeAsync();
        try
        {
            await JobsArePagedAndFilteredAsync(own);
        }
        finally
        {
            await own.DisposeAsync();
        }
    }

    private static async Task JobsArePagedAndFilteredAsync(PostgresDatabase db)
    {
        await using var app = await IngestionWebApp.StartAsync(db, Sources);
        var runner = app.Services.GetRequiredService<IIngestionRunner>();
        var started = new List<IngestionResult>();
        foreach (var source in new[] { "read-rows", "read-rows", "read-broken", "read-rows", "read-rejects" })
        {
            started.Add(await runner.RunAsync(source, null, default));
        }

        using var client = app.Client();
        var first = (await client.GetFromJsonAsync<PageResponse<JobResponse>>("ingestion/jobs?limit=2"))!;
        Assert.Equal((5L, 0, 2, true), (first.Total, first.Offset, first.Limit, first.HasMore));
        Assert.Equal([started[4].RunId, started[3].RunId], first.Items.Select(j => j.Id));
        var last = (await client.GetFromJsonAsync<PageResponse<JobResponse>>("ingestion/jobs?limit=2&offset=4"))!;
        Assert.Equal((started[0].RunId, false), (Assert.Single(last.Items).Id, last.HasMore));

        var rows = (await client.GetFromJsonAsync<PageResponse<JobResponse>>("ingestion/jobs?source=read-rows"))!;
        Assert.Equal(3L, rows.Total);
        Assert.All(rows.Items, j => Assert.Equal("read-rows", j.SourceName));

        var failed = Assert.Single((await client.GetFromJsonAsync<PageResponse<JobResponse>>("ingestion/jobs?status=failed"))!.Items);
        Assert.Equal(("read-broken", "Failed"), (failed.SourceName, failed.Status));
        Assert.Contains("500 Internal Server Error", failed.Error, StringComparison.Ordinal);

        var from = Uri.EscapeDataString(started[3].StartedAt.ToString("O"));
        var recent = (await client.GetFromJsonAsync<PageResponse<JobResponse>>($"ingestion/jobs?from={from}"))!;
        Assert.Equal([started[4].RunId, started[3].RunId], recent.Items.Select(j => j.Id));
        var before = (await client.GetFromJsonAsync<PageResponse<JobResponse>>($"ingestion/jobs?to={from}&source=read-rows"))!;
        Assert.Equal([started[1].RunId, started[0].RunId], before.Items.Select(j => j.Id));
    }

    [Fact]
    public async Task A_job_comes_with_a_page_of_its_rejected_records_and_unknown_ids_are_404()
    {
        await using var app = await IngestionWebApp.StartAsync(db, Sources);
        var result = await app.Services.GetRequiredService<IIngestionRunner>().RunAsync("read-rejects", null, default);
        using var client = app.Client();

        var details = (await client.GetFromJsonAsync<JobDetailsResponse>($"ingestion/jobs/{result.RunId}?limit=2"))!;
        Assert.Equal(("PartiallySucceeded", 3L, 3L), (details.Job.Status, details.Job.Counts.Created, details.Job.Counts.Rejected));
        Assert.Equal((3L, 2, true), (details.Rejected.Total, details.Rejected.Items.Count, details.Rejected.HasMore));
        Assert.Equal(("record 2", "note"), (details.Rejected.Items[0].Position, details.Rejected.Items[0].Field));
        var rest = (await client.GetFromJsonAsync<JobDetailsResponse>($"ingestion/jobs/{result.RunId}?offset=2&limit=2"))!;
        Assert.Equal("record 5", Assert.Single(rest.Rejected.Items).Position);

        var missing = await client.GetAsync($"ingestion/jobs/{Guid.NewGuid()}");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("No such job", (await missing.Content.ReadFromJsonAsync<ProblemDetails>())!.Title);
    }

    [Theory]
    [InlineData("ingestion/jobs?status=finished", "status", "'finished' is not a job status")]
    [InlineData("ingestion/jobs?limit=0", "limit", "limit must be between 1 and 500 (was 0)")]
    [InlineData("ingestion/jobs?offset=-1", "query", "Offset must not be negative (was -1)")]
    [InlineData("ingestion/jobs?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "query", "StartedBefore")]
    [InlineData("ingestion/schedules?next=1000", "next", "next must be between 0 and 100")]
    public async Task A_bad_query_is_400_naming_the_parameter(string path, string field, string detail)
    {
        await using var app = await IngestionWebApp.StartAsync(db, Sources);
        using var client = app.Client();

        var response = await client.GetAsync(path);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<ProblemDetails>())!;
        Assert.Equal($"Invalid query parameter '{field}'", problem.Title);
        Assert.Contains(detail, problem.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sources_show_their_last_run_with_counts_and_schedules_their_next_runs_and_pause()
    {
        await using var app = await IngestionWebApp.StartAsync(db, b =>
        {
            Sources(b);
            b.UsePostgresScheduling(o => o.ConnectionString = db.ConnectionString).AddScheduling(s =>
                s.Schedules["read-rows-nightly"] = new ScheduleOptions { Source = "read-rows", Cron = "0 3 * * *", TimeZone = "America/Toronto" });
        });
        await app.Services.GetRequiredService<IIngestionRunner>().RunAsync("read-rows", null, default);
        using var client = app.Client();
        using var operatorClient = app.Client("olivia", "operator");

        var sources = (await client.GetFromJsonAsync<List<SourceResponse>>("ingestion/sources"))!;
        Assert.Equal(["read-rows", "read-rejects", "read-broken"], sources.Select(s => s.Name));
        var rows = sources[0];
        Assert.Equal(("Host", true, "Succeeded", 5L, "read-rows-nightly"), (rows.Origin, rows.Enabled, rows.LastRun?.Status, rows.LastRun?.Counts.Created, rows.NextSchedule));
        Assert.NotNull(rows.LastSuccessAt);
        Assert.Null(sources[1].LastRun);

        var schedule = Assert.Single((await client.GetFromJsonAsync<List<ScheduleResponse>>("ingestion/schedules?next=3"))!);
        Assert.Equal(("read-rows-nightly", "read-rows", "0 3 * * *", false, 3), (schedule.Name, schedule.Source, schedule.Cron, schedule.Paused, schedule.NextRuns.Count));
        Assert.Equal(3, schedule.NextRuns[0].Local.Hour);

        var paused = await operatorClient.PostAsync("ingestion/schedules/read-rows-nightly/pause", null);
        Assert.Equal((true, "olivia"), ((await paused.Content.ReadFromJsonAsync<SchedulePauseResponse>())!.Paused, (await client.GetFromJsonAsync<List<ScheduleResponse>>("ingestion/schedules"))![0].PausedBy));
        Assert.Null((await client.GetFromJsonAsync<List<SourceResponse>>("ingestion/sources"))![0].NextScheduledAt);
        var resumed = (await (await operatorClient.PostAsync("ingestion/schedules/read-rows-nightly/resume", null)).Content.ReadFromJsonAsync<SchedulePauseResponse>())!;
        Assert.Equal((false, true), (resumed.Paused, resumed.WasPaused));
        Assert.Equal(HttpStatusCode.NotFound, (await operatorClient.PostAsync("ingestion/schedules/no-such/pause", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await operatorClient.PostAsync("ingestion/sources/no-such/run", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await operatorClient.PostAsync($"ingestion/jobs/{Guid.NewGuid()}/cancel", null)).StatusCode);
    }

    [Fact]
    public async Task The_OpenAPI_document_describes_the_routes_and_their_shapes()
    {
        await using var app = await IngestionWebApp.StartAsync(db, Sources, services: s => s.AddOpenApi(), map: a => a.MapOpenApi());
        using var client = app.Client();

        using var document = JsonDocument.Parse(await client.GetStringAsync("openapi/v1.json"));

        var paths = document.RootElement.GetProperty("paths");
        foreach (var path in new[] { "/ingestion/jobs", "/ingestion/jobs/{id}", "/ingestion/sources", "/ingestion/schedules", "/ingestion/schedules/runs", "/ingestion/queues", "/ingestion/sources/{name}/run", "/ingestion/run-all", "/ingestion/schedules/{name}/pause", "/ingestion/schedules/{name}/resume", "/ingestion/jobs/{id}/cancel" })
        {
            Assert.True(paths.TryGetProperty(path, out _), $"The OpenAPI document has no path {path}.");
        }

        Assert.False(paths.TryGetProperty("/ingestion/", out _)); // the page is not an API route
        var schemas = document.RootElement.GetProperty("components").GetProperty("schemas");
        var job = schemas.GetProperty("JobResponse").GetProperty("properties");
        foreach (var property in new[] { "id", "sourceName", "trigger", "requestedBy", "status", "counts", "error", "startedAt", "finishedAt" })
        {
            Assert.True(job.TryGetProperty(property, out _), $"JobResponse has no property {property}.");
        }

        Assert.Contains("Runs a source now", paths.GetProperty("/ingestion/sources/{name}/run").GetProperty("post").GetProperty("summary").GetString(), StringComparison.Ordinal);
    }
}
