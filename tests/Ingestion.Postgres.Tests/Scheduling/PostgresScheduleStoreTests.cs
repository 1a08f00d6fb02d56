using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Migrations;
using Ingestion.Postgres.Scheduling;
using Ingestion.Scheduling;
using Ingestion.TestSupport;
using Microsoft.Extensions.Options;

namespace Ingestion.Postgres.Tests.Scheduling;

public class PostgresScheduleStoreTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 8, 7, 0, 0, TimeSpan.Zero);

    private PostgresScheduleStore Store(string schema) =>
        new(new IngestionDatabase(Options.Create(new PostgresIngestionOptions { ConnectionString = db.ConnectionString, Schema = schema }), SchedulingMigrations.All));

    private static SlotClaim Claim(string host, DateTimeOffset slot, string schedule = "s1") =>
        new() { Schedule = schedule, Source = "a", Slot = slot, Host = host, Trigger = ScheduleTriggers.Schedule };

    [Fact]
    public async Task Exactly_one_of_many_concurrent_claims_of_a_slot_wins()
    {
        var stores = Enumerable.Range(0, 3).Select(_ => Store("sched_race")).ToList();
        for (var slot = 0; slot < 10; slot++)
        {
            var at = T0.AddSeconds(slot);
            var results = await Task.WhenAll(stores.SelectMany((s, i) => Enumerable.Range(0, 3).Select(_ => s.TryClaimAsync(Claim($"h{i}", at), at, at.AddMinutes(1), CancellationToken.None).AsTask())));
            Assert.Single(results, r => r == ClaimResult.Claimed);
            Assert.Equal(8, results.Count(r => r == ClaimResult.AlreadyClaimed));
            var winner = Claim("?", at);
            foreach (var (s, i) in stores.Select((s, i) => (s, i)))
            {
                await s.CompleteAsync(winner with { Host = $"h{i}" }, ScheduleRunStatus.Succeeded, at, CancellationToken.None);
            }
        }

        Assert.Equal(10L, await db.ScalarAsync<long>("SELECT count(*) FROM sched_race.schedule_slots WHERE status = 'succeeded'"));
        Assert.Equal(T0.AddSeconds(9), await stores[0].GetLastSlotAsync("s1", CancellationToken.None));
    }

    [Fact]
    public async Task A_slot_due_while_another_runs_is_recorded_skipped_until_the_lease_expires()
    {
        var store = Store("sched_overlap");
        Assert.Equal(ClaimResult.Claimed, await store.TryClaimAsync(Claim("h1", T0), T0, T0.AddMinutes(2), CancellationToken.None));
        Assert.Equal(ClaimResult.Overlapping, await store.TryClaimAsync(Claim("h2", T0.AddMinutes(1)), T0.AddMinutes(1), T0.AddMinutes(3), CancellationToken.None));
        Assert.Equal(ClaimResult.AlreadyClaimed, await store.TryClaimAsync(Claim("h3", T0.AddMinutes(1)), T0.AddMinutes(1), T0.AddMinutes(3), CancellationToken.None));

        // Another schedule is independent; an expired lease no longer blocks.
        Assert.Equal(ClaimResult.Claimed, await store.TryClaimAsync(Claim("h2", T0.AddMinutes(1), "s2"), T0.AddMinutes(1), T0.AddMinutes(3), CancellationToken.None));
        Assert.Equal(ClaimResult.Claimed, await store.TryClaimAsync(Claim("h2", T0.AddMinutes(5)), T0.AddMinutes(5), T0.AddMinutes(7), CancellationToken.None));
    }

    [Fact]
    public async Task Running_claims_of_a_source_are_listed_newest_first_and_a_slot_can_end_superseded()
    {
        var store = Store("sched_superseded");
        await store.TryClaimAsync(Claim("dead", T0), T0, T0.AddSeconds(30), CancellationToken.None);
        await store.TryClaimAsync(Claim("live", T0.AddHours(1)), T0.AddHours(1), T0.AddHours(2), CancellationToken.None);
        await store.TryClaimAsync(Claim("other", T0, "s2") with { Source = "b" }, T0, T0.AddHours(2), CancellationToken.None);

        var running = await store.ListRunningClaimsAsync("a", CancellationToken.None);
        Assert.Equal([("live", T0.AddHours(1), T0.AddHours(2)), ("dead", T0, T0.AddSeconds(30))], running.Select(r => (r.Claim.Host, r.Claim.Slot, r.LeaseUntil)));

        // The superseded status is accepted by both tables (migration v2).
        var run = new ScheduleRun { Id = Guid.NewGuid(), Schedule = "s1", Source = "a", Slot = T0, Host = "h2", Trigger = ScheduleTriggers.Schedule, Attempt = 2, Status = ScheduleRunStatus.Running, StartedAt = T0 };
        await store.AddRunAsync(run, CancellationToken.None);
        await store.UpdateRunAsync(run with { Status = ScheduleRunStatus.Superseded, FinishedAt = T0.AddMinutes(1), Error = "superseded: ... by host 'live'" }, CancellationToken.None);
        await store.CompleteAsync(Claim("dead", T0), ScheduleRunStatus.Superseded, T0.AddMinutes(1), CancellationToken.None);
        Assert.Equal(ScheduleRunStatus.Superseded, Assert.Single(await store.ListRunsAsync(5, "s1", CancellationToken.None)).Status);
        Assert.Equal("superseded", await db.ScalarAsync<string>("SELECT status FROM sched_superseded.schedule_slots WHERE host = 'dead'"));
        Assert.Single(await store.ListRunningClaimsAsync("a", CancellationToken.None));
    }

    [Fact]
    public async Task Expired_claims_are_taken_over_once_and_their_running_attempt_is_abandoned()
    {
        var store = Store("sched_takeover");
        var dead = Claim("dead", T0);
        await store.TryClaimAsync(dead, T0, T0.AddSeconds(30), CancellationToken.None);
        var run = new ScheduleRun { Id = Guid.NewGuid(), Schedule = "s1", Source = "a", Slot = T0, Host = "dead", Trigger = ScheduleTriggers.Schedule, Attempt = 1, Status = ScheduleRunStatus.Running, StartedAt = T0 };
        await store.AddRunAsync(run, CancellationToken.None);

        Assert.Empty(await store.TakeOverExpiredAsync("h2", T0.AddSeconds(10), T0.AddMinutes(1), CancellationToken.None));
        Assert.True(await store.RenewAsync(dead, T0.AddSeconds(40), CancellationToken.None));

        var both = await Task.WhenAll(
            store.TakeOverExpiredAsync("h2", T0.AddSeconds(50), T0.AddMinutes(2), CancellationToken.None).AsTask(),
            store.TakeOverExpiredAsync("h3", T0.AddSeconds(50), T0.AddMinutes(2), CancellationToken.None).AsTask());
        var taken = Assert.Single(both.SelectMany(t => t));
        Assert.Equal("dead", taken.PreviousHost);
        Assert.Equal(1, taken.Claim.Attempt);
        Assert.False(await store.RenewAsync(dead, T0.AddMinutes(3), CancellationToken.None));

        // The dead host's late update does not overwrite the abandoned status.
        await store.UpdateRunAsync(run with { Status = ScheduleRunStatus.Succeeded, FinishedAt = T0.AddMinutes(5) }, CancellationToken.None);
        var row = Assert.Single(await store.ListRunsAsync(10, "s1", CancellationToken.None));
        Assert.Equal(ScheduleRunStatus.Abandoned, row.Status);
        Assert.Contains("'dead' stopped renewing", row.Error, StringComparison.Ordinal);
        Assert.Equal(50_000L, await db.ScalarAsync<long>("SELECT duration_ms FROM sched_takeover.schedule_runs"));
    }

    [Fact]
    public async Task History_round_trips_and_outcomes_are_newest_first()
    {
        var store = Store("sched_history");
        for (var i = 0; i < 4; i++)
        {
            var c = Claim("h1", T0.AddHours(i));
            await store.TryClaimAsync(c, c.Slot, c.Slot.AddMinutes(1), CancellationToken.None);
            var status = i is 1 or 2 ? ScheduleRunStatus.Failed : ScheduleRunStatus.Succeeded;
            var run = new ScheduleRun { Id = Guid.NewGuid(), Schedule = "s1", Source = "a", Slot = c.Slot, Host = "h1", Trigger = c.Trigger, Attempt = 1, Status = ScheduleRunStatus.Running, StartedAt = c.Slot };
            await store.AddRunAsync(run, CancellationToken.None);
            await store.UpdateRunAsync(run with { Status = status, FinishedAt = c.Slot.AddSeconds(3), Error = status == ScheduleRunStatus.Failed ? "boom" : null, Details = "{\"read\": 3}" }, CancellationToken.None);
            await store.CompleteAsync(c, status, c.Slot.AddSeconds(3), CancellationToken.None);
        }

        Assert.Equal([ScheduleRunStatus.Succeeded, ScheduleRunStatus.Failed, ScheduleRunStatus.Failed], await store.GetRecentOutcomesAsync("s1", 3, CancellationToken.None));
        var runs = await store.ListRunsAsync(10, null, CancellationToken.None);
        Assert.Equal(4, runs.Count);
        Assert.Equal(T0.AddHours(3), runs[0].Slot);
        Assert.Equal(TimeSpan.FromSeconds(3), runs[0].Duration);
        Assert.Contains("\"read\": 3", runs[0].Details, StringComparison.Ordinal);
        Assert.Equal("boom", runs[1].Error);
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM sched_history.schedule_runs WHERE duration_ms = 3000"));
    }
}
