using System.CommandLine;
using Ingestion.CommandLine.Output;

namespace Ingestion.CommandLine.Commands;

/// <summary><c>schedules [--pause NAME | --resume NAME]</c> and <c>schedule-runs</c>.</summary>
internal static class ScheduleCommands
{
    public static Command Schedules(IngestionCommandContext context)
    {
        var next = new Option<int>("--next") { Description = "Next slots per schedule.", DefaultValueFactory = _ => 3 };
        var pause = new Option<string?>("--pause") { Description = "Pause this schedule on every host (manual runs still go)." };
        var resume = new Option<string?>("--resume") { Description = "Resume this paused schedule." };
        var command = new Command("schedules", "List the schedules with their next runs in local time and UTC; pause or resume one.") { next, pause, resume };
        command.SetAction(async (parse, ct) =>
        {
            var operations = InspectCommands.Operations(context);
            if (parse.GetValue(pause) is { } paused)
            {
                var p = await operations.PauseScheduleAsync(paused, Environment.UserName, ct).ConfigureAwait(false);
                Tables.Line(context, "paused", ("schedule", paused), ("at", p.PausedAt), ("by", p.PausedBy));
            }

            if (parse.GetValue(resume) is { } resumed)
            {
                var was = await operations.ResumeScheduleAsync(resumed, ct).ConfigureAwait(false);
                Tables.Line(context, "resumed", ("schedule", resumed), ("was_paused", was));
            }

            var schedules = await operations.GetSchedulesAsync(Math.Max(1, parse.GetValue(next)), ct).ConfigureAwait(false);
            Tables.Write(
                context,
                "Schedules",
                ["schedule", "source", "cron", "time zone", "active", "paused", "next (local)", "next (UTC)", "last run", "last status"],
                schedules.Select(s => (IReadOnlyList<string>)
                [
                    s.Name,
                    s.Source,
                    s.Cron,
                    s.TimeZone,
                    s.Active ? "yes" : "no",
                    s.Pause is { } p ? $"by {p.PausedBy} at {Tables.Time(p.PausedAt)}" : string.Empty,
                    string.Join(", ", s.NextRuns.Select(n => n.Local.ToString("yyyy-MM-dd HH:mm:ss zzz", System.Globalization.CultureInfo.InvariantCulture))),
                    string.Join(", ", s.NextRuns.Select(n => Tables.Time(n.Utc))),
                    Tables.Time(s.LastRun?.StartedAt),
                    s.LastRun?.Status.ToString() ?? string.Empty,
                ]));
            return ExitCodes.Success;
        });
        return command;
    }

    public static Command Runs(IngestionCommandContext context)
    {
        var schedule = new Option<string?>("--schedule") { Description = "Only this schedule's runs." };
        var last = new Option<int>("--last") { Description = "How many rows (newest first).", DefaultValueFactory = _ => 30 };
        var command = new Command("schedule-runs", "List the schedule history: one row per attempt or skipped slot.") { schedule, last };
        command.SetAction(async (parse, ct) =>
        {
            var runs = await InspectCommands.Operations(context).GetScheduleRunsAsync(parse.GetValue(schedule), Math.Max(1, parse.GetValue(last)), ct).ConfigureAwait(false);
            Tables.Write(
                context,
                "Schedule runs (newest first)",
                ["schedule", "source", "slot (UTC)", "trigger", "attempt", "status", "host", "started (UTC)", "secs", "error"],
                runs.Select(r => (IReadOnlyList<string>)
                [
                    r.Schedule,
                    r.Source,
                    Tables.Time(r.Slot),
                    r.Trigger,
                    Tables.Number(r.Attempt),
                    r.Status.ToString(),
                    r.Host,
                    Tables.Time(r.StartedAt),
                    Tables.Seconds(r.Duration),
                    r.Error ?? string.Empty,
                ]));
            return ExitCodes.Success;
        });
        return command;
    }
}
