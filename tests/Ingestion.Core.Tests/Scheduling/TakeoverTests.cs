using Ingestion.Hosting;
using Ingestion.Scheduling;
using Ingestion.Stores;
using Microsoft.Extensions.DependencyInjection;
using static Ingestion.Core.Tests.Scheduling.IngestionSchedulerTests;

namespace Ingestion.Core.Tests.Scheduling;

/// <summary>A slot taken over from a dead host: superseded by a newer live run, or blocked and naming the holder; short leases.</summary>
public sealed class TakeoverTests
{
    private static async Task<InMemoryScheduleStore> StoreWithDeadClaimAsync(DateTimeOffset slot, DateTimeOffset leaseUntil)
    {
        var store = new InMemoryScheduleStore();
        var dead = new SlotClaim { Schedule = "s1", Source = "a", Slot = slot, Host = "dead", Trigger = ScheduleTriggers.Schedule };
        await store.TryClaimAsync(dead, slot, leaseUntil, CancellationToken.None);
        await store.AddRunAsync(new ScheduleRun { Id = Guid.NewGuid(), Schedule = "s1", Source = "a", Slot = slot, Host = "dead", Trigger = ScheduleTriggers.Schedule, Attempt = 1, Status = ScheduleRunStatus.Running, StartedAt = slot }, CancellationToken.None);
        return store;
    }

    [Fact]
    public async Task A_taken_over_slot_finding_a_newer_slots_live_run_is_superseded_naming_that_run()
    {
        // The dead host's 00:00 slot expired; a live host is running the 01:00 slot and holds the source's lock.
        var store = await StoreWithDeadClaimAsync(Utc(2026, 1, 5, 0), Utc(2026, 1, 5, 0, 1));
        var live = new SlotClaim { Schedule = "s1", Source = "a", Slot = Utc(2026, 1, 5, 1), Host = "live", Trigger = ScheduleTriggers.Schedule };
        Assert.Equal(ClaimResult.Claimed, await store.TryClaimAsync(live, Utc(2026, 1, 5, 1), Utc(2026, 1, 5, 3), CancellationToken.None));

        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 1, 0, 30), Schedule("0 * * * *", null, ("RetryAttempts", "3")), b => b.AddSource("a", SchedulerHarness.Items(1), SchedulerHarness.NoRunnerRetries), store);
        await using (var held = await h.Services.GetRequiredService<IRunLockProvider>().TryAcquireAsync("a", Guid.NewGuid(), CancellationToken.None))
        {
            Assert.NotNull(held);
            await h.StartAsync();
            await h.AdvanceUntilAsync(() => h.Runs().Any(r => r.Host == "host-a" && r.Status != ScheduleRunStatus.Running), TimeSpan.FromSeconds(30), 10);
        }

        var retry = Assert.Single(h.Runs(), r => r.Host == "host-a");
        Assert.Equal((Utc(2026, 1, 5, 0), 2, ScheduleRunStatus.Superseded), (retry.Slot, retry.Attempt, retry.Status));
        Assert.Contains("superseded", retry.Error, StringComparison.Ordinal);
        Assert.Contains("newer slot 2026-01-05T01:00:00.0000000+00:00 of schedule 's1' by host 'live'", retry.Error, StringComparison.Ordinal);

        // Superseded is final: no further attempt, and it is not counted as a failure.
        await h.AdvanceAsync(TimeSpan.FromMinutes(15), TimeSpan.FromMinutes(1));
        Assert.Single(h.Runs(), r => r.Host == "host-a" && r.Slot == Utc(2026, 1, 5, 0));
        Assert.DoesNotContain(ScheduleRunStatus.Failed, await store.GetRecentOutcomesAsync("s1", 5, CancellationToken.None));
    }

    [Fact]
    public async Task A_slot_blocked_by_an_older_run_names_its_holder_and_fails()
    {
        // An older slot of the source (another schedule) is still running on a live host: not a newer run, so this
        // slot's work was not done; the message names who holds the source.
        var store = await StoreWithDeadClaimAsync(Utc(2026, 1, 5, 1), Utc(2026, 1, 5, 1, 1));
        var other = new SlotClaim { Schedule = "s2", Source = "a", Slot = Utc(2026, 1, 5, 0, 30), Host = "stuck", Trigger = ScheduleTriggers.Schedule };
        await store.TryClaimAsync(other, Utc(2026, 1, 5, 0, 30), Utc(2026, 1, 5, 3), CancellationToken.None);

        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 1, 0, 30), Schedule("0 * * * *", null, ("RetryAttempts", "2")), b => b.AddSource("a", SchedulerHarness.Items(1), SchedulerHarness.NoRunnerRetries), store);
        await using (var held = await h.Services.GetRequiredService<IRunLockProvider>().TryAcquireAsync("a", Guid.NewGuid(), CancellationToken.None))
        {
            await h.StartAsync();
            await h.AdvanceUntilAsync(() => h.Runs().Any(r => r.Host == "host-a" && r.Status != ScheduleRunStatus.Running), TimeSpan.FromSeconds(30), 10);
        }

        var retry = h.Runs().First(r => r.Host == "host-a" && r.Slot == Utc(2026, 1, 5, 1));
        Assert.Equal(ScheduleRunStatus.Failed, retry.Status);
        Assert.Contains("the lock is held by host 'stuck' running slot 2026-01-05T00:30:00.0000000+00:00 of schedule 's2' (claim live until 2026-01-05T03:00:00.0000000+00:00)", retry.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_short_claim_lease_frees_a_dead_hosts_slot_within_lease_plus_recovery_interval()
    {
        // ClaimLease 10 s, RecoveryInterval 2 s: the dead host's slot is retried by host-a at most ~12 s after its last renewal
        // (with the default 2-minute lease it would wait up to 2.5 minutes).
        var slot = Utc(2026, 1, 5, 0);
        var store = await StoreWithDeadClaimAsync(slot, slot.AddSeconds(10));
        await using var h = SchedulerHarness.Create(
            slot.AddSeconds(1),
            Schedule("0 0 * * *", null, ("RetryAttempts", "2"), ("Ingestion:Scheduling:ClaimLease", "00:00:10"), ("Ingestion:Scheduling:RecoveryInterval", "00:00:02")),
            b => b.AddSource("a", SchedulerHarness.Items(1), SchedulerHarness.NoRunnerRetries),
            store);
        await h.StartAsync();
        await h.AdvanceUntilAsync(() => h.Runs().Any(r => r.Host == "host-a" && r.Status == ScheduleRunStatus.Succeeded), TimeSpan.FromSeconds(1), 30);

        var retry = h.Runs().Single(r => r.Host == "host-a");
        Assert.InRange(retry.StartedAt, slot.AddSeconds(10), slot.AddSeconds(13));
        Assert.Equal(ScheduleRunStatus.Abandoned, h.Runs().Single(r => r.Host == "dead").Status);
    }
}
