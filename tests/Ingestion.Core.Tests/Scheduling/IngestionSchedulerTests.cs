using System.Runtime.CompilerServices;
using Ingestion.Core.Tests.Running;
using Ingestion.Scheduling;
using Ingestion.Stores;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Core.Tests.Scheduling;

public class IngestionSchedulerTests
{
    internal static DateTimeOffset Utc(int y, int mo, int d, int h, int mi = 0, int s = 0) => new(y, mo, d, h, mi, s, TimeSpan.Zero);

    internal static Dictionary<string, string?> Schedule(string cron, string? zone = null, params (string Key, string Value)[] extra)
    {
        var d = new Dictionary<string, string?>
        {
            ["Ingestion:Scheduling:Schedules:s1:Source"] = "a",
            ["Ingestion:Scheduling:Schedules:s1:Cron"] = cron,
            ["Ingestion:Scheduling:Schedules:s1:TimeZone"] = zone,
            ["Ingestion:Scheduling:RecoveryInterval"] = "00:00:30",
        };
        foreach (var (k, v) in extra)
        {
            d[k.StartsWith("Ingestion:", StringComparison.Ordinal) ? k : $"Ingestion:Scheduling:Schedules:s1:{k}"] = v;
        }

        return d;
    }

    [Fact]
    public async Task Runs_each_slot_once_at_its_time_through_the_runner()
    {
        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 0, 0, 30), Schedule("*/5 * * * *"), b => b.AddSource("a", SchedulerHarness.Items(3), SchedulerHarness.NoRunnerRetries));
        await h.StartAsync();
        await h.AdvanceUntilAsync(() => h.Runs().Count(r => r.Status == ScheduleRunStatus.Succeeded) >= 4, TimeSpan.FromMinutes(1), 21);

        var runs = h.Runs();
        Assert.Equal([Utc(2026, 1, 5, 0, 5), Utc(2026, 1, 5, 0, 10), Utc(2026, 1, 5, 0, 15), Utc(2026, 1, 5, 0, 20)], runs.Select(r => r.Slot).Take(4));
        Assert.All(runs.Take(4), r =>
        {
            Assert.Equal(ScheduleRunStatus.Succeeded, r.Status);
            Assert.Equal(1, r.Attempt);
            Assert.Equal("host-a", r.Host);
            Assert.Equal(ScheduleTriggers.Schedule, r.Trigger);
            Assert.Contains("\"read\":3", r.Details, StringComparison.Ordinal);
            Assert.True(r.StartedAt >= r.Slot);
        });
        Assert.Equal(runs.Count, runs.Select(r => r.Slot).Distinct().Count());
        var jobs = await h.Services.GetRequiredService<IImportJobStore>().ListRecentAsync(10, "a", CancellationToken.None);
        Assert.All(jobs, j => Assert.Equal("schedule:s1", j.Trigger));
    }

    [Theory]
    [InlineData("30 2 * * *", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z")] // spring forward: 2:30 missing
    [InlineData("30 1 * * *", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z")] // fall back: 1:30 twice
    public async Task Toronto_dst_transitions_run_each_daily_slot_once(string cron, string start, string first, string second)
    {
        await using var h = SchedulerHarness.Create(DateTimeOffset.Parse(start, System.Globalization.CultureInfo.InvariantCulture), Schedule(cron, "America/Toronto", ("Ingestion:Scheduling:ClaimLease", "01:00:00")), b => b.AddSource("a", SchedulerHarness.Items(1), SchedulerHarness.NoRunnerRetries));
        await h.StartAsync();
        await h.AdvanceAsync(TimeSpan.FromHours(48), TimeSpan.FromMinutes(15));
        await SchedulerHarness.WaitForAsync(() => h.Runs().Count(r => r.Status == ScheduleRunStatus.Succeeded) >= 2, () => string.Join("; ", h.Runs().Select(r => $"{r.Slot:O} {r.Status} {r.Error}")));
        Assert.Equal([DateTimeOffset.Parse(first, System.Globalization.CultureInfo.InvariantCulture), DateTimeOffset.Parse(second, System.Globalization.CultureInfo.InvariantCulture)], h.Runs().Select(r => r.Slot));
    }

    [Theory]
    [InlineData(MisfirePolicy.Skip, new[] { 6 })]
    [InlineData(MisfirePolicy.RunOnce, new[] { 5, 6 })]
    [InlineData(MisfirePolicy.CatchUp, new[] { 4, 5, 6 })]
    public async Task Misfire_policy_after_downtime(MisfirePolicy policy, int[] expectedHours)
    {
        // The schedule last ran at 00:00; the hosts were down until 05:20: slots 01:00-05:00 were missed.
        var store = new InMemoryScheduleStore();
        var old = new SlotClaim { Schedule = "s1", Source = "a", Slot = Utc(2026, 1, 5, 0), Host = "old", Trigger = ScheduleTriggers.Schedule };
        await store.TryClaimAsync(old, old.Slot, old.Slot.AddMinutes(2), CancellationToken.None);
        await store.CompleteAsync(old, ScheduleRunStatus.Succeeded, old.Slot.AddMinutes(1), CancellationToken.None);

        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 5, 20), Schedule("0 * * * *", null, ("Misfire", policy.ToString()), ("MaxCatchUp", "2")), b => b.AddSource("a", SchedulerHarness.Items(1), SchedulerHarness.NoRunnerRetries), store);
        await h.StartAsync();
        await h.AdvanceUntilAsync(() => h.Runs().Any(r => r.Slot == Utc(2026, 1, 5, 6) && r.Status == ScheduleRunStatus.Succeeded), TimeSpan.FromMinutes(5), 12);
        await h.AdvanceAsync(TimeSpan.FromMinutes(20), TimeSpan.FromMinutes(5));
        Assert.Equal(expectedHours.Select(x => Utc(2026, 1, 5, x)), h.Runs().Select(r => r.Slot));
        Assert.All(h.Runs(), r => Assert.Equal(ScheduleRunStatus.Succeeded, r.Status));
    }

    [Fact]
    public async Task Retries_a_failed_slot_with_the_schedule_delay_then_succeeds()
    {
        var calls = 0;
        async IAsyncEnumerable<Item> Flaky([EnumeratorCancellation] CancellationToken ct = default)
        {
            await Task.Yield();
            if (Interlocked.Increment(ref calls) <= 2)
            {
                throw new InvalidOperationException($"boom {calls}");
            }

            yield return new Item { Id = "k1", Value = 1 };
        }

        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 0, 59, 30), Schedule("0 * * * *", null, ("RetryAttempts", "3"), ("RetryDelay", "00:05:00")), b => b.AddSource("a", _ => new ScriptedSource((_, ct) => Flaky(ct)), SchedulerHarness.NoRunnerRetries));
        await h.StartAsync();
        await h.AdvanceUntilAsync(() => h.Runs().Any(r => r.Status == ScheduleRunStatus.Succeeded), TimeSpan.FromMinutes(1), 30);

        var runs = h.Runs();
        Assert.Equal([1, 2, 3], runs.Select(r => r.Attempt));
        Assert.Equal([ScheduleRunStatus.Failed, ScheduleRunStatus.Failed, ScheduleRunStatus.Succeeded], runs.Select(r => r.Status));
        Assert.Contains("boom 1", runs[0].Error, StringComparison.Ordinal);
        Assert.All(runs, r => Assert.Equal(Utc(2026, 1, 5, 1), r.Slot));
        for (var i = 1; i < runs.Count; i++)
        {
            Assert.True(runs[i].StartedAt - runs[i - 1].FinishedAt!.Value >= TimeSpan.FromMinutes(5), $"attempt {i + 1} started {runs[i].StartedAt - runs[i - 1].FinishedAt} after attempt {i}");
        }

        Assert.Equal([ScheduleRunStatus.Succeeded], await h.Store.GetRecentOutcomesAsync("s1", 5, CancellationToken.None));
    }

    [Fact]
    public async Task A_slot_that_fails_every_attempt_is_recorded_failed_once()
    {
        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 0, 59, 30), Schedule("0 */6 * * *", null, ("RetryAttempts", "2"), ("RetryDelay", "00:01:00")), b => b.AddSource("a", _ => new ScriptedSource((_, _) => throw new InvalidOperationException("always")), SchedulerHarness.NoRunnerRetries));
        await h.StartAsync();
        await h.AdvanceUntilAsync(() => h.Store.GetRecentOutcomesAsync("s1", 5, CancellationToken.None).Result.Count == 1, TimeSpan.FromMinutes(1), 400);
        Assert.Equal([ScheduleRunStatus.Failed], await h.Store.GetRecentOutcomesAsync("s1", 5, CancellationToken.None));
        Assert.Equal([1, 2], h.Runs().Select(r => r.Attempt));
    }

    [Fact]
    public async Task An_overlapping_slot_is_skipped_and_recorded_while_the_previous_run_goes_on()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async IAsyncEnumerable<Item> Slow([EnumeratorCancellation] CancellationToken ct = default)
        {
            yield return new Item { Id = "k1", Value = 1 };
            await release.Task.WaitAsync(ct);
        }

        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 0, 0, 30), Schedule("* * * * *"), b => b.AddSource("a", _ => new ScriptedSource((_, ct) => Slow(ct)), SchedulerHarness.NoRunnerRetries));
        await h.StartAsync();
        await h.AdvanceUntilAsync(() => h.Runs().Any(r => r.Status == ScheduleRunStatus.Running), TimeSpan.FromSeconds(30), 4);
        await h.AdvanceUntilAsync(() => h.Runs().Any(r => r.Status == ScheduleRunStatus.Skipped), TimeSpan.FromSeconds(30), 4);
        release.SetResult();
        await SchedulerHarness.WaitForAsync(() => h.Runs().Any(r => r.Status == ScheduleRunStatus.Succeeded));

        var runs = h.Runs();
        Assert.Equal(ScheduleRunStatus.Succeeded, runs[0].Status);
        Assert.Equal(Utc(2026, 1, 5, 0, 1), runs[0].Slot);
        Assert.Equal(ScheduleRunStatus.Skipped, runs[1].Status);
        Assert.Equal(Utc(2026, 1, 5, 0, 2), runs[1].Slot);
        Assert.Contains("still going", runs[1].Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_now_goes_through_the_same_path_and_history()
    {
        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 0, 0, 30), Schedule("0 4 * * *", "America/Toronto"), b => b.AddSource("a", SchedulerHarness.Items(2), SchedulerHarness.NoRunnerRetries));
        await h.StartAsync();
        var outcome = await h.Scheduler.RunNowAsync("s1", CancellationToken.None);
        Assert.Equal(ScheduleRunStatus.Succeeded, outcome.Status);
        Assert.Equal(2, outcome.Result!.Counts.Read);
        var run = Assert.Single(h.Runs());
        Assert.Equal(ScheduleTriggers.Manual, run.Trigger);
        Assert.Equal(Utc(2026, 1, 5, 0, 0, 30), run.Slot);
        var job = Assert.Single(await h.Services.GetRequiredService<IImportJobStore>().ListRecentAsync(10, "a", CancellationToken.None));
        Assert.Equal("manual:s1", job.Trigger);
        Assert.Contains("'nope'", (await Assert.ThrowsAsync<ArgumentException>(() => h.Scheduler.RunNowAsync("nope", CancellationToken.None))).Message, StringComparison.Ordinal);

        // A manual run does not count as the schedule's last slot for misfires.
        Assert.Null(await h.Store.GetLastSlotAsync("s1", CancellationToken.None));
    }

    [Fact]
    public async Task Shutdown_cancels_runs_after_the_grace_period_and_records_committed_progress()
    {
        var committed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async IAsyncEnumerable<Item> Endless([EnumeratorCancellation] CancellationToken ct = default)
        {
            for (var i = 1; i <= 3; i++)
            {
                yield return new Item { Id = $"k{i}", Value = i };
            }

            committed.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        }

        var h = SchedulerHarness.Create(Utc(2026, 1, 5, 0, 0, 30), Schedule("* * * * *"), b => b.AddSource("a", _ => new ScriptedSource((_, ct) => Endless(ct)), SchedulerHarness.NoRunnerRetries));
        await using (h)
        {
            await h.StartAsync();
            await h.AdvanceUntilAsync(() => committed.Task.IsCompleted, TimeSpan.FromSeconds(30), 4);

            using var grace = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await h.Scheduler.StopAsync(grace.Token);

            var run = Assert.Single(h.Runs());
            Assert.Equal(ScheduleRunStatus.Cancelled, run.Status);
            Assert.Contains("\"read\":3", run.Details, StringComparison.Ordinal);
            Assert.Contains("\"created\":3", run.Details, StringComparison.Ordinal);
            Assert.Equal([ScheduleRunStatus.Cancelled], await h.Store.GetRecentOutcomesAsync("s1", 5, CancellationToken.None));
            var job = Assert.Single(await h.Services.GetRequiredService<IImportJobStore>().ListRecentAsync(10, "a", CancellationToken.None));
            Assert.Equal(IngestionStatus.Cancelled, job.Status);
            await Assert.ThrowsAsync<InvalidOperationException>(() => h.Scheduler.RunNowAsync("s1", CancellationToken.None));
        }
    }

    [Fact]
    public async Task Shutdown_lets_a_run_finish_within_the_grace_period()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async IAsyncEnumerable<Item> Slow([EnumeratorCancellation] CancellationToken ct = default)
        {
            started.TrySetResult();
            await release.Task;
            yield return new Item { Id = "k1", Value = 1 };
        }

        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 0, 0, 30), Schedule("* * * * *"), b => b.AddSource("a", _ => new ScriptedSource((_, ct) => Slow(ct)), SchedulerHarness.NoRunnerRetries));
        await h.StartAsync();
        await h.AdvanceUntilAsync(() => started.Task.IsCompleted, TimeSpan.FromSeconds(30), 4);
        var stop = h.Scheduler.StopAsync(CancellationToken.None);
        Assert.False(stop.IsCompleted);
        release.SetResult();
        await stop;
        Assert.Equal(ScheduleRunStatus.Succeeded, Assert.Single(h.Runs()).Status);
    }

    [Fact]
    public async Task Enabled_flags_reload_without_restart()
    {
        var settings = Schedule("*/10 * * * *");
        settings["Ingestion:Sources:a:Enabled"] = "false";
        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 0, 0, 30), settings, b => b.AddSource("a", SchedulerHarness.Items(1), SchedulerHarness.NoRunnerRetries));
        await h.StartAsync();
        await h.AdvanceAsync(TimeSpan.FromMinutes(15), TimeSpan.FromMinutes(1));
        Assert.Empty(h.Runs());

        h.Config["Ingestion:Sources:a:Enabled"] = "true";
        h.Config.Reload();
        await h.AdvanceUntilAsync(() => h.Runs().Count == 1, TimeSpan.FromMinutes(1), 10);
        Assert.Equal(Utc(2026, 1, 5, 0, 20), Assert.Single(h.Runs()).Slot);

        h.Config["Ingestion:Scheduling:Enabled"] = "false";
        h.Config.Reload();
        await h.AdvanceAsync(TimeSpan.FromMinutes(30), TimeSpan.FromMinutes(1));
        Assert.Single(h.Runs());

        // Per schedule, and a new cron, also without restart.
        h.Config["Ingestion:Scheduling:Enabled"] = "true";
        h.Config["Ingestion:Scheduling:Schedules:s1:Cron"] = "5 * * * *";
        h.Config.Reload();
        await h.AdvanceUntilAsync(() => h.Runs().Count == 2, TimeSpan.FromMinutes(1), 30);
        Assert.Equal(Utc(2026, 1, 5, 1, 5), h.Runs()[1].Slot);

        // An invalid change is refused; the previous schedule keeps running.
        h.Config["Ingestion:Scheduling:Schedules:s1:Cron"] = "99 * * * *";
        h.Config.Reload();
        await h.AdvanceUntilAsync(() => h.Runs().Count == 3, TimeSpan.FromMinutes(5), 20);
        Assert.Equal(Utc(2026, 1, 5, 2, 5), h.Runs()[2].Slot);
    }

    [Theory]
    [InlineData(2, ScheduleRunStatus.Succeeded)]
    [InlineData(1, ScheduleRunStatus.Failed)]
    public async Task A_dead_hosts_expired_claim_is_retried_or_failed_by_another_host(int attempts, ScheduleRunStatus expected)
    {
        var store = new InMemoryScheduleStore();
        var slot = Utc(2026, 1, 5, 0);
        var dead = new SlotClaim { Schedule = "s1", Source = "a", Slot = slot, Host = "dead", Trigger = ScheduleTriggers.Schedule };
        await store.TryClaimAsync(dead, slot, slot.AddMinutes(1), CancellationToken.None);
        await store.AddRunAsync(new ScheduleRun { Id = Guid.NewGuid(), Schedule = "s1", Source = "a", Slot = slot, Host = "dead", Trigger = ScheduleTriggers.Schedule, Attempt = 1, Status = ScheduleRunStatus.Running, StartedAt = slot }, CancellationToken.None);
        var outcomes = new List<SlotOutcome>();

        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 0, 0, 30), Schedule("0 0 * * *", null, ("RetryAttempts", attempts.ToString(System.Globalization.CultureInfo.InvariantCulture))), b => b.AddSource("a", SchedulerHarness.Items(1), SchedulerHarness.NoRunnerRetries), store, s => s.AddSingleton<IScheduleObserver>(new RecordingObserver(outcomes)));
        await h.StartAsync();
        await h.AdvanceUntilAsync(() => store.GetRecentOutcomesAsync("s1", 1, CancellationToken.None).Result.Count == 1, TimeSpan.FromSeconds(30), 10);

        Assert.Equal([expected], await store.GetRecentOutcomesAsync("s1", 5, CancellationToken.None));
        var runs = h.Runs();
        Assert.Equal(ScheduleRunStatus.Abandoned, runs[0].Status);
        Assert.Contains("'dead' stopped renewing", runs[0].Error, StringComparison.Ordinal);
        if (attempts == 2)
        {
            Assert.Equal(2, runs[1].Attempt);
            Assert.Equal("host-a", runs[1].Host);
            Assert.Equal(ScheduleRunStatus.Succeeded, runs[1].Status);
        }
        else
        {
            Assert.Single(runs);
        }

        lock (outcomes)
        {
            Assert.Equal(expected, Assert.Single(outcomes).Status);
        }
    }

    [Fact]
    public async Task A_taken_over_slot_whose_source_is_still_locked_fails_instead_of_being_skipped()
    {
        // The previous host's claim expired, but its run still holds the source's run lock (it stalled rather than died):
        // the slot's work was not done, so the takeover attempt is a failure, not an overlap skip.
        var store = new InMemoryScheduleStore();
        var slot = Utc(2026, 1, 5, 0);
        var stalled = new SlotClaim { Schedule = "s1", Source = "a", Slot = slot, Host = "stalled", Trigger = ScheduleTriggers.Schedule };
        await store.TryClaimAsync(stalled, slot, slot.AddMinutes(1), CancellationToken.None);
        await store.AddRunAsync(new ScheduleRun { Id = Guid.NewGuid(), Schedule = "s1", Source = "a", Slot = slot, Host = "stalled", Trigger = ScheduleTriggers.Schedule, Attempt = 1, Status = ScheduleRunStatus.Running, StartedAt = slot }, CancellationToken.None);

        await using var h = SchedulerHarness.Create(Utc(2026, 1, 5, 0, 0, 30), Schedule("0 0 * * *", null, ("RetryAttempts", "2")), b => b.AddSource("a", SchedulerHarness.Items(1), SchedulerHarness.NoRunnerRetries), store);
        await using (var held = await h.Services.GetRequiredService<IRunLockProvider>().TryAcquireAsync("a", Guid.NewGuid(), CancellationToken.None))
        {
            Assert.NotNull(held);
            await h.StartAsync();
            await h.AdvanceUntilAsync(() => store.GetRecentOutcomesAsync("s1", 1, CancellationToken.None).Result.Count == 1, TimeSpan.FromSeconds(30), 10);
        }

        Assert.Equal([ScheduleRunStatus.Failed], await store.GetRecentOutcomesAsync("s1", 5, CancellationToken.None));
        var retry = h.Runs()[1];
        Assert.Equal((2, "host-a", ScheduleRunStatus.Failed), (retry.Attempt, retry.Host, retry.Status));
        Assert.Contains("still locked", retry.Error, StringComparison.Ordinal);
        Assert.Contains("no schedule slot of this source is running", retry.Error, StringComparison.Ordinal);
    }

    internal sealed class RecordingObserver(List<SlotOutcome> outcomes) : IScheduleObserver
    {
        public ValueTask OnSlotCompletedAsync(SlotOutcome outcome, CancellationToken cancellationToken)
        {
            lock (outcomes)
            {
                outcomes.Add(outcome);
            }

            return ValueTask.CompletedTask;
        }
    }
}
