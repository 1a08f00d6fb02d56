using System.Net;
using Ingestion.Postgres.Queue;
using Ingestion.Queue;
using Ingestion.Running;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Ingestion.AspNetCore.Tests.HealthChecks;

public class IngestionHealthCheckTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static async Task<HealthReport> CheckAsync(IngestionWebApp app) =>
        await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();

    [Fact]
    public async Task A_source_is_unhealthy_before_its_first_success_healthy_after_it_and_unhealthy_again_when_it_gets_too_old()
    {
        var time = new ShiftedTime();
        await using var app = await IngestionWebApp.StartAsync(
            db,
            b => b.AddSource("health-daily", _ => new ItemSource(_ => ItemSource.Rows(3)), o => { o.Table = "health_daily"; o.CreateTable = true; })
                  .AddSource("health-other", _ => new ItemSource(_ => ItemSource.Rows(1)), o => { o.Table = "health_other"; o.CreateTable = true; o.Enabled = false; }),
            services: s =>
            {
                s.AddSingleton<TimeProvider>(time);
                s.AddHealthChecks().AddIngestion(o => o.MaxSuccessAge = TimeSpan.FromHours(26));
            },
            map: a => a.MapHealthChecks("/health"));
        using var client = app.Client();

        var before = await CheckAsync(app);
        Assert.Equal(HealthStatus.Unhealthy, before.Status);
        Assert.Contains("Source 'health-daily' never succeeded", before.Entries["ingestion"].Description, StringComparison.Ordinal);
        Assert.DoesNotContain("health-other", before.Entries["ingestion"].Description, StringComparison.Ordinal); // disabled: not checked
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.GetAsync("health")).StatusCode);

        var result = await app.Services.GetRequiredService<IIngestionRunner>().RunAsync("health-daily", null, default);
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(app)).Status);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("health")).StatusCode);

        time.Offset = TimeSpan.FromHours(27);
        var late = await CheckAsync(app);
        Assert.Equal(HealthStatus.Unhealthy, late.Status);
        Assert.Contains("Source 'health-daily' last succeeded at", late.Entries["ingestion"].Description, StringComparison.Ordinal);
        Assert.Contains("more than its allowed 1.02:00:00", late.Entries["ingestion"].Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_per_source_age_overrides_the_shared_one_and_an_unknown_source_name_is_reported()
    {
        var time = new ShiftedTime();
        await using var app = await IngestionWebApp.StartAsync(
            db,
            b => b.AddSource("health-weekly", _ => new ItemSource(_ => ItemSource.Rows(2)), o => { o.Table = "health_weekly"; o.CreateTable = true; }),
            services: s =>
            {
                s.AddSingleton<TimeProvider>(time);
                s.AddHealthChecks().AddIngestion(o =>
                {
                    o.MaxSuccessAge = TimeSpan.FromHours(1);
                    o.SourceMaxSuccessAge["health-weekly"] = TimeSpan.FromDays(8);
                });
                s.AddHealthChecks().AddIngestion(o => o.SourceMaxSuccessAge["no-such-source"] = TimeSpan.FromDays(1), name: "typo");
            });
        await app.Services.GetRequiredService<IIngestionRunner>().RunAsync("health-weekly", null, default);
        time.Offset = TimeSpan.FromDays(3);

        var report = await CheckAsync(app);
        Assert.Equal(HealthStatus.Healthy, report.Entries["ingestion"].Status);
        Assert.Equal(HealthStatus.Unhealthy, report.Entries["typo"].Status);
        Assert.Contains("names source 'no-such-source', which is not registered", report.Entries["typo"].Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dead_queue_items_past_the_threshold_are_unhealthy()
    {
        await using var app = await IngestionWebApp.StartAsync(
            db,
            b => b.UsePostgresQueue(o => o.ConnectionString = db.ConnectionString),
            services: s =>
            {
                s.AddHealthChecks().AddIngestion(o => o.Queues.Add("health-files"));
                s.AddHealthChecks().AddIngestion(o => { o.Queues.Add("health-files"); o.MaxDeadItems = 1; }, name: "tolerant");
            });
        var queue = app.Services.GetRequiredService<IWorkQueueStore>();
        Assert.Equal(HealthStatus.Healthy, (await CheckAsync(app)).Status);

        await queue.EnqueueAsync("health-files", new WorkItemRequest("doc-1"), default);
        var claim = await queue.ClaimAsync(new ClaimRequest("health-files", "test-worker", 1, TimeSpan.FromMinutes(1)), default);
        var item = Assert.Single(claim.Items);
        await queue.FailAsync("health-files", "test-worker", 1, [new WorkItemFailure(new WorkItemHandle(item.Key, item.Attempt), "broken PDF", TimeSpan.Zero)], default);

        var report = await CheckAsync(app);
        Assert.Equal(HealthStatus.Unhealthy, report.Entries["ingestion"].Status);
        Assert.Equal("Queue 'health-files' has 1 dead item(s), more than the allowed 0.", report.Entries["ingestion"].Description);
        Assert.Equal(1L, report.Entries["ingestion"].Data["queue:health-files:dead"]);
        Assert.Equal(HealthStatus.Healthy, report.Entries["tolerant"].Status);
    }
}
