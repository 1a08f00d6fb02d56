using Microsoft.Extensions.Logging;

namespace Ingestion.Scheduling;

/// <summary>What a slot taken over from a dead host does when it finds its source locked.</summary>
public sealed partial class IngestionScheduler
{
    /// <summary>
    /// A taken-over slot found its source locked. When a newer slot of the source runs under a live claim, that run does
    /// this slot's work: the slot is superseded, naming it. Otherwise the holder is the previous host (stalled, not dead,
    /// or its session not ended yet) or a run outside the schedules: the slot's work was not done, so the attempt fails
    /// (retried while attempts remain), naming whoever holds the source when the store knows.
    /// </summary>
    private async Task<(ScheduleRunStatus Status, string Error)> TakenOverButLockedAsync(ScheduleDef def, SlotClaim claim)
    {
        IReadOnlyList<RunningClaim> running;
        try
        {
            running = await _store.ListRunningClaimsAsync(def.Source, CancellationToken.None).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // not knowing the holder only makes the message vaguer
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogHolderUnknown(_logger, e, def.Source);
            running = [];
        }

        var now = _time.GetUtcNow();
        var others = running.Where(r => !(r.Claim.Schedule == claim.Schedule && r.Claim.Slot == claim.Slot)).ToList();
        if (others.FirstOrDefault(r => r.Claim.Slot > claim.Slot && r.LeaseUntil > now) is { } newer)
        {
            LogSuperseded(_logger, claim.Schedule, claim.Slot, newer.Claim.Schedule, newer.Claim.Slot, newer.Claim.Host);
            return (ScheduleRunStatus.Superseded, $"superseded: source '{def.Source}' is being run for the newer slot {newer.Claim.Slot:O} of schedule '{newer.Claim.Schedule}' by host '{newer.Claim.Host}' (attempt {newer.Claim.Attempt}, claim live until {newer.LeaseUntil:O}), which does this slot's work");
        }

        var holder = others.Count == 0
            ? "no schedule slot of this source is running: the lock is held by a run outside the schedules (manual, another host's code) or by the previous host's session, not ended yet"
            : "the lock is held by " + string.Join("; ", others.Select(r => $"host '{r.Claim.Host}' running slot {r.Claim.Slot:O} of schedule '{r.Claim.Schedule}' (claim {(r.LeaseUntil > now ? "live" : "expired")} until {r.LeaseUntil:O})"));
        return (ScheduleRunStatus.Failed, $"source '{def.Source}' was still locked when this host took over the expired claim of slot {claim.Slot:O}: {holder}");
    }

    [LoggerMessage(3015, LogLevel.Information, "Schedule {Schedule} slot {Slot:O} is superseded by the live run of slot {NewerSlot:O} of schedule {NewerSchedule} on host {Host}, which does its work")]
    private static partial void LogSuperseded(ILogger logger, string schedule, DateTimeOffset slot, string newerSchedule, DateTimeOffset newerSlot, string host);

    [LoggerMessage(3016, LogLevel.Warning, "Could not list the running claims of source {Source}; the holder of its lock is not named")]
    private static partial void LogHolderUnknown(ILogger logger, Exception exception, string source);
}
