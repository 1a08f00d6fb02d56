using System.Net;
using System.Net.Http.Json;
using Ingestion.AspNetCore.Endpoints;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Mvc;

namespace Ingestion.AspNetCore.Tests.Endpoints;

public class WriteSecurityTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static void OneSource(IIngestionBuilder b, string name) =>
        b.AddSource(name, _ => new ItemSource(_ => ItemSource.Rows(4)), o => { o.Table = name.Replace('-', '_'); o.CreateTable = true; });

    [Fact]
    public async Task With_a_write_policy_an_anonymous_write_is_401_a_caller_without_the_policy_403_and_reads_stay_open()
    {
        await using var app = await IngestionWebApp.StartAsync(db, b => OneSource(b, "sec-policy"));
        using var anonymous = app.Client();
        using var viewer = app.Client("vera", "viewer");

        foreach (var path in new[] { "ingestion/sources/sec-policy/run", "ingestion/run-all", "ingestion/schedules/any/pause", "ingestion/schedules/any/resume", $"ingestion/jobs/{Guid.NewGuid()}/cancel" })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync(path, null)).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsync(path, null)).StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("ingestion/jobs")).StatusCode);
        var jobs = await anonymous.GetFromJsonAsync<PageResponse<JobResponse>>("ingestion/jobs?source=sec-policy");
        Assert.Equal(0L, jobs!.Total); // nothing ran
    }

    [Fact]
    public async Task A_run_started_over_http_is_recorded_with_trigger_http_and_the_callers_name()
    {
        await using var app = await IngestionWebApp.StartAsync(db, b => OneSource(b, "sec-run"));
        using var operatorClient = app.Client("olivia", "operator");

        var response = await operatorClient.PostAsync("ingestion/sources/sec-run/run?wait=true", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var completed = (await response.Content.ReadFromJsonAsync<RunCompletedResponse>())!;
        Assert.Equal(("http", "olivia", true), (completed.Trigger, completed.RequestedBy, completed.AllSucceeded));
        var result = Assert.Single(completed.Results);
        Assert.Equal(("sec-run", "Succeeded", 4L), (result.SourceName, result.Status, result.Counts.Created));

        var job = (await operatorClient.GetFromJsonAsync<JobDetailsResponse>($"ingestion/jobs/{result.RunId}"))!.Job;
        Assert.Equal(("http", "olivia", "Succeeded", 4L), (job.Trigger, job.RequestedBy, job.Status, job.Counts.Created));
        Assert.Equal(1L, await db.ScalarAsync<long>($"SELECT count(*) FROM ingestion.import_jobs WHERE id = '{result.RunId}' AND trigger = 'http' AND requested_by = 'olivia'"));
    }

    [Fact]
    public async Task A_run_not_waited_for_is_accepted_at_once_and_appears_in_the_jobs()
    {
        await using var app = await IngestionWebApp.StartAsync(db, b => OneSource(b, "sec-background"));
        using var operatorClient = app.Client("otto", "operator");

        var response = await operatorClient.PostAsync("ingestion/sources/sec-background/run", null);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("/ingestion/jobs?source=sec-background", response.Headers.Location?.OriginalString);
        var accepted = (await response.Content.ReadFromJsonAsync<RunAcceptedResponse>())!;
        Assert.Equal(["sec-background"], accepted.Sources);
        Assert.Equal(("http", "otto"), (accepted.Trigger, accepted.RequestedBy));

        var deadline = DateTime.UtcNow.AddSeconds(30);
        JobResponse? job = null;
        while (DateTime.UtcNow < deadline && job?.Status is null)
        {
            await Task.Delay(100);
            job = (await operatorClient.GetFromJsonAsync<PageResponse<JobResponse>>("ingestion/jobs?source=sec-background"))!.Items.FirstOrDefault();
        }

        Assert.Equal(("Succeeded", "http", "otto", 4L), (job?.Status, job?.Trigger, job?.RequestedBy, job?.Counts.Created));
    }

    [Fact]
    public async Task Without_a_write_policy_writes_are_refused_outside_Development_and_open_in_Development()
    {
        await using (var production = await IngestionWebApp.StartAsync(db, b => OneSource(b, "sec-none"), "Production", endpoints: _ => { }))
        {
            using var client = production.Client("olivia", "operator");
            var refused = await client.PostAsync("ingestion/sources/sec-none/run?wait=true", null);
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            var problem = (await refused.Content.ReadFromJsonAsync<ProblemDetails>())!;
            Assert.Contains("IngestionEndpointOptions.WritePolicy", problem.Detail, StringComparison.Ordinal);
            Assert.Contains("'Production'", problem.Detail, StringComparison.Ordinal);
            Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM ingestion.import_jobs WHERE source = 'sec-none'"));
        }

        await using var development = await IngestionWebApp.StartAsync(db, b => OneSource(b, "sec-none"), "Development", endpoints: _ => { });
        using var anonymous = development.Client();
        var allowed = await anonymous.PostAsync("ingestion/sources/sec-none/run?wait=true", null);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal("anonymous", (await allowed.Content.ReadFromJsonAsync<RunCompletedResponse>())!.RequestedBy);
    }

    [Fact]
    public async Task A_write_policy_that_is_not_registered_fails_at_start_naming_it()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => IngestionWebApp.StartAsync(db, b => OneSource(b, "sec-typo"), endpoints: o => o.WritePolicy = "ingestion-operatorz"));

        Assert.Equal("IngestionEndpointOptions.WritePolicy names the policy 'ingestion-operatorz', which is not registered: add it with services.AddAuthorization(o => o.AddPolicy(\"ingestion-operatorz\", ...)).", error.Message);
    }

    [Fact]
    public async Task A_cross_site_browser_request_cannot_write_even_for_a_signed_in_caller()
    {
        await using var app = await IngestionWebApp.StartAsync(db, b => OneSource(b, "sec-csrf"));
        using var client = app.Client("olivia", "operator");
        using var request = new HttpRequestMessage(HttpMethod.Post, "ingestion/sources/sec-csrf/run?wait=true");
        request.Headers.Add("Sec-Fetch-Site", "cross-site");

        var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("another site", (await response.Content.ReadFromJsonAsync<ProblemDetails>())!.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_run_of_this_host_is_cancelled_over_http_by_an_operator_only()
    {
        await using var app = await IngestionWebApp.StartAsync(db, b => b.AddSource("sec-waiting", _ => new WaitingSource(), o => { o.Table = "sec_waiting"; o.CreateTable = true; }));
        using var operatorClient = app.Client("olivia", "operator");
        using var viewer = app.Client("vera", "viewer");
        Assert.Equal(HttpStatusCode.Accepted, (await operatorClient.PostAsync("ingestion/sources/sec-waiting/run", null)).StatusCode);

        var running = await WaitForAsync(async () => (await operatorClient.GetFromJsonAsync<PageResponse<JobResponse>>("ingestion/jobs?source=sec-waiting&status=running"))!.Items.FirstOrDefault());
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsync($"ingestion/jobs/{running.Id}/cancel", null)).StatusCode);
        var cancel = await WaitForAsync(async () => await operatorClient.PostAsync($"ingestion/jobs/{running.Id}/cancel", null) is { StatusCode: HttpStatusCode.Accepted } r ? r : null);
        var accepted = (await cancel.Content.ReadFromJsonAsync<CancelAcceptedResponse>())!;
        Assert.Equal((running.Id, "olivia"), (accepted.RunId, accepted.RequestedBy));

        var ended = await WaitForAsync(async () => (await operatorClient.GetFromJsonAsync<JobDetailsResponse>($"ingestion/jobs/{running.Id}"))!.Job is { Status: not null } j ? j : null);
        Assert.Equal("Cancelled", ended.Status);
        Assert.Equal(HttpStatusCode.NotFound, (await operatorClient.PostAsync($"ingestion/jobs/{running.Id}/cancel", null)).StatusCode); // no longer running here
    }

    private static async Task<T> WaitForAsync<T>(Func<Task<T?>> probe)
        where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < deadline, "Timed out after 30 s.");
            await Task.Delay(100);
        }
    }
}
