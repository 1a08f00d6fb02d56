using Ingestion.Hosting;
using Ingestion.Operations;
using Ingestion.Postgres.Scheduling;
using Ingestion.Running;
using Ingestion.Scheduling;
using Ingestion.Stores;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.CommandLine.Tests.Operations;

/// <summary>The shared read models and actions (<see cref="IIngestionOperations"/>) over the PostgreSQL stores, and the in-memory ones alike.</summary>
public sealed class IngestionOperationsTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Jobs_are_filtered_and_paged_with_their_total_and_a_job_has_its_rejected_records(bool postgres)
    {
        var schema = $"ops_jobs_{(postgres ? "pg" : "mem")}";
        using var host = postgres ? TestHost.Build(db, Configure, schema) : InMemoryHost(Configure);
        var operations = host.Services.GetRequiredService<IIngestionOperations>();
        for (var i = 0; i < 3; i++)
        {
            await operations.RunAsync(new RunSourcesRequest { Sources = ["ops-a"], Trigger = "test" }, default);
        }

        var failed = await operations.RunAsync(new RunSourcesRequest { Sources = ["ops-b"], Trigger = "test" }, default);
        Assert.Equal(IngestionStatus.Failed, failed.Results[0].Status);

        var first = await operations.GetJobsAsync(new ImportJobQuery { Source = "ops-a", Limit = 2 }, default);
        Assert.Equal((2, 3L, true), (first.Items.Count, first.Total, first.HasMore));
        var second = await operations.GetJobsAsync(new ImportJobQuery { Source = "ops-a", Limit = 2, Offset = 2 }, default);
        Assert.Equal((1, 3L, false), (second.Items.Count, second.Total, second.HasMore));
        Assert.Empty(first.Items.Select(j => j.Id).Intersect(second.Items.Select(j => j.Id)));
        var past = await operations.GetJobsAsync(new ImportJobQuery { Source = "ops-a", Limit = 2, Offset = 10 }, default);
        Assert.Equal((0, 3L), (past.Items.Count, past.Total));
        var onlyFailed = await operations.GetJobsAsync(new ImportJobQuery { Status = IngestionStatus.Failed }, default);
        Assert.Equal("ops-b", Assert.Single(onlyFailed.Items).SourceName);
        Assert.Equal(0L, (await operations.GetJobsAsync(new ImportJobQuery { RunningOnly = true }, default)).Total);
        Assert.Equal(0L, (await operations.GetJobsAsync(new ImportJobQuery { StartedFrom = DateTimeOffset.UtcNow.AddMinutes(1) }, default)).Total);
        await Assert.ThrowsAsync<ArgumentException>(() => operations.GetJobsAsync(new ImportJobQuery { Limit = 0 }, default));

        // The failed run's batch over the budget stored its rejected records outside any batch: in both stores.
        var details = await operations.GetJobAsync(failed.Results[0].RunId, 1, 1, default);
        Assert.NotNull(details);
        Assert.Equal((2L, "record 3"), (details.Rejected.Total, Assert.Single(details.Rejected.Items).Position));
        Assert.Null(await operations.GetJobAsync(Guid.NewGuid(), 0, 10, default));

        static void Configure(IIngestionBuilder b) => b.Items("ops-a", 3).Items("ops-b", 4, rejected: [2, 3], maxRejected: 1);
    }

    [Fact]
    public async Task Sources_overview_tells_origin_enablement_last_run_and_last_success()
    {
        using var host = TestHost.Build(db, b => b.Items("ops-seen", 2).Items("ops-never", 1), "ops_sources");
        var operations = host.Services.GetRequiredService<IIngestionOperations>();
        await operations.RunAsync(new RunSourcesRequest { Sources = ["ops-seen"], Trigger = "test" }, default);

        var sources = await operations.GetSourcesAsync(default);
        var seen = sources.Single(s => s.Name == "ops-seen");
        Assert.Equal((SourceOrigin.Host, true, IngestionStatus.Succeeded), (seen.Origin, seen.Enabled, seen.LastRun?.Status));
        Assert.NotNull(seen.LastSuccessAt);
        var never = sources.Single(s => s.Name == "ops-never");
        Assert.Null(never.LastRun);
        Assert.Null(never.NextScheduledAt);
    }

    [Fact]
    public async Task A_run_of_this_host_is_listed_while_it_goes_and_can_be_cancelled_keeping_committed_batches()
    {
        using var host = TestHost.Build(db, b => b.Items("ops-slow", 400, delay: TimeSpan.FromMilliseconds(20)), "ops_cancel");
        var operations = host.Services.GetRequiredService<IIngestionOperations>();
        var run = operations.RunAsync(new RunSourcesRequest { Sources = ["ops-slow"], Trigger = "test" }, default);
        ActiveRun? active = null;
        for (var i = 0; i < 200 && (active is null || active.Progress is null); i++)
        {
            await Task.Delay(50);
            active = operations.GetActiveRuns().SingleOrDefault();
        }

        Assert.NotNull(active?.Progress);
        Assert.Equal(400L, active.Progress.TotalRecords);
        Assert.True(operations.CancelRun(active.RunId));
        var result = Assert.Single((await run).Results);
        Assert.Equal(IngestionStatus.Cancelled, result.Status);
        Assert.True(result.Counts.Created > 0, "the batches committed before the cancel stay");
        Assert.Empty(operations.GetActiveRuns());
        Assert.False(operations.CancelRun(active.RunId));
    }

    [Fact]
    public async Task A_run_whose_outcome_is_being_recorded_is_no_longer_listed_or_cancellable()
    {
        var probe = new EndProbe();
        using var host = TestHost.Build(db, b =>
        {
            b.Items("ops-ended", 10);
            b.Services.AddSingleton<IIngestionObserver>(probe);
        }, "ops_ended");
        probe.Operations = host.Services.GetRequiredService<IIngestionOperations>();

        var result = Assert.Single((await probe.Operations.RunAsync(new RunSourcesRequest { Sources = ["ops-ended"], Trigger = "test" }, default)).Results);

        // Seen by an observer told of the outcome, which comes after the job row is written: the run is over by then.
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal((result.RunId, false, false), (probe.RunId, probe.Listed, probe.Cancellable));
    }

    private sealed class EndProbe : IIngestionObserver
    {
        public IIngestionOperations? Operations { get; set; }

        public Guid RunId { get; private set; }

        public bool Listed { get; private set; } = true;

        public bool Cancellable { get; private set; } = true;

        public ValueTask OnRunCompletedAsync(IngestionResult result, CancellationToken cancellationToken)
        {
            RunId = result.RunId;
            Listed = Operations!.GetActiveRuns().Any(r => r.RunId == result.RunId);
            Cancellable = Operations.CancelRun(result.RunId);
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task A_paused_schedule_is_not_run_on_any_host_until_resumed_and_shows_its_next_runs_in_local_time_and_utc()
    {
        void Configure(IIngestionBuilder b) => b.Items("ops-scheduled", 1).UsePostgresScheduling().AddScheduling(o => o.Schedules["every-second"] = new ScheduleOptions
        {
            Source = "ops-scheduled",
            Cron = "* * * * * *",
            TimeZone = "America/Toronto",
        });

        using var admin = TestHost.Build(db, Configure, "ops_pause");
        var operations = admin.Services.GetRequiredService<IIngestionOperations>();
        var pause = await operations.PauseScheduleAsync("every-second", "tester", default);
        Assert.Equal("tester", pause.PausedBy);
        var schedule = Assert.Single(await operations.GetSchedulesAsync(2, default));
        Assert.Equal(("ops-scheduled", false, "tester"), (schedule.Source, schedule.Active, schedule.Pause?.PausedBy));
        Assert.Equal(2, schedule.NextRuns.Count);
        var next = schedule.NextRuns[0];
        Assert.Equal(next.Utc, next.Local);
        Assert.Equal(TimeZoneInfo.FindSystemTimeZoneById("America/Toronto").GetUtcOffset(next.Utc), next.Local.Offset);
        await Assert.ThrowsAsync<ArgumentException>(() => operations.PauseScheduleAsync("no-such-schedule", "tester", default));

        // Another host serves the schedule: while paused no slot runs; resumed, slots run again.
        using (var server = TestHost.Build(db, Configure, "ops_pause"))
        {
            await server.StartAsync();
            await Task.Delay(2500);
            Assert.Empty(await operations.GetScheduleRunsAsync("every-second", 10, default));
            Assert.True(await operations.ResumeScheduleAsync("every-second", default));
            for (var i = 0; i < 100 && (await operations.GetScheduleRunsAsync("every-second", 10, default)).Count == 0; i++)
            {
                await Task.Delay(100);
            }

            await server.StopAsync();
        }

        Assert.NotEmpty(await operations.GetScheduleRunsAsync("every-second", 10, default));
        Assert.False(await operations.ResumeScheduleAsync("every-second", default));
        Assert.Null(Assert.Single(await operations.GetSchedulesAsync(1, default)).Pause);
    }

    private static IHost InMemoryHost(Action<IIngestionBuilder> configure)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        configure(builder.Services.AddIngestion());
        return builder.Build();
    }
}
