using System.CommandLine;
using Ingestion.CommandLine.Output;
using Ingestion.Operations;
using Ingestion.Stores;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.CommandLine.Commands;

/// <summary><c>sources</c>, <c>jobs</c>, <c>job ID</c> and <c>plugins</c>: read-only views of the host.</summary>
internal static class InspectCommands
{
    public static Command Sources(IngestionCommandContext context)
    {
        var command = new Command("sources", "List the registered sources: origin, enabled, last run, last success, next schedule.");
        command.SetAction(async (_, ct) =>
        {
            var sources = await Operations(context).GetSourcesAsync(ct).ConfigureAwait(false);
            Tables.Write(
                context,
                "Sources",
                ["source", "origin", "enabled", "last run", "last status", "last success", "next run", "schedule"],
                sources.Select(s => (IReadOnlyList<string>)
                [
                    s.Name,
                    s.Origin.ToString(),
                    s.Enabled ? "yes" : "no",
                    Tables.Time(s.LastRun?.StartedAt),
                    s.RunningHere ? "running" : s.LastRun is { } j ? j.Status?.ToString() ?? "running" : string.Empty,
                    Tables.Time(s.LastSuccessAt),
                    Tables.Time(s.NextScheduledAt),
                    s.NextSchedule ?? string.Empty,
                ]));
            return ExitCodes.Success;
        });
        return command;
    }

    public static Command Jobs(IngestionCommandContext context)
    {
        var source = new Option<string?>("--source") { Description = "Only this source's jobs." };
        var status = new Option<string?>("--status") { Description = "Only jobs with this status (Succeeded, PartiallySucceeded, Failed, Cancelled, NotModified, AlreadyRunning, or Running)." };
        var last = new Option<int>("--last") { Description = "How many jobs (newest first).", DefaultValueFactory = _ => 30 };
        var command = new Command("jobs", "List recent import jobs with their counts.") { source, status, last };
        command.SetAction(async (parse, ct) =>
        {
            var statusText = parse.GetValue(status);
            var running = string.Equals(statusText, "Running", StringComparison.OrdinalIgnoreCase);
            IngestionStatus? filter = null;
            if (statusText is not null && !running)
            {
                if (!Enum.TryParse<IngestionStatus>(statusText, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed))
                {
                    throw new CommandLineException(ExitCodes.BadArguments, $"--status '{statusText}' is not one of Running, {string.Join(", ", Enum.GetNames<IngestionStatus>())}.");
                }

                filter = parsed;
            }

            var query = new ImportJobQuery { Source = parse.GetValue(source), Status = filter, RunningOnly = running, Limit = parse.GetValue(last) };
            if (query.Validate() is { Count: > 0 } problems)
            {
                throw new CommandLineException(ExitCodes.BadArguments, string.Join(" ", problems).Replace("Limit", "--last", StringComparison.Ordinal));
            }

            var page = await Operations(context).GetJobsAsync(query, ct).ConfigureAwait(false);
            WriteJobs(context, page.Items);
            return ExitCodes.Success;
        });
        return command;
    }

    public static Command Job(IngestionCommandContext context)
    {
        var id = new Argument<Guid>("ID") { Description = "The job (run) identifier." };
        var rejected = new Option<int>("--rejected") { Description = "How many rejected records to show.", DefaultValueFactory = _ => 50 };
        var command = new Command("job", "Show one job: counts, error and its rejected records.") { id, rejected };
        command.SetAction(async (parse, ct) =>
        {
            var limit = Math.Clamp(parse.GetValue(rejected), 1, 1000);
            var details = await Operations(context).GetJobAsync(parse.GetValue(id), 0, limit, ct).ConfigureAwait(false)
                ?? throw new CommandLineException(ExitCodes.BadArguments, $"No job has the identifier {parse.GetValue(id)}.");
            WriteJobs(context, [details.Job]);
            var j = details.Job;
            if (j.Error is { } error)
            {
                Tables.Line(context, "error", ("job", j.Id), ("message", error));
            }

            Tables.Write(
                context,
                $"Rejected records ({details.Rejected.Items.Count} of {details.Rejected.Total})",
                ["position", "field", "reason", "raw value"],
                details.Rejected.Items.Select(r => (IReadOnlyList<string>)[r.Position, r.Field ?? string.Empty, r.Reason, r.RawValue ?? string.Empty]));
            return ExitCodes.Success;
        });
        return command;
    }

    public static Command Plugins(IngestionCommandContext context)
    {
        var command = new Command("plugins", "List the plug-ins the host loaded or refused, with their sources.");
        command.SetAction(_ =>
        {
            Tables.Write(
                context,
                "Plug-ins",
                ["plug-in", "status", "version", "sources", "path", "error"],
                Operations(context).GetPlugins().Select(p => (IReadOnlyList<string>)
                [
                    p.Name,
                    p.Status.ToString(),
                    p.AssemblyVersion?.ToString() ?? string.Empty,
                    string.Join(", ", p.Sources),
                    p.AssemblyPath,
                    p.Error ?? p.ReloadError ?? string.Empty,
                ]));
            return ExitCodes.Success;
        });
        return command;
    }

    internal static IIngestionOperations Operations(IngestionCommandContext context) => context.Services.GetRequiredService<IIngestionOperations>();

    private static void WriteJobs(IngestionCommandContext context, IReadOnlyList<ImportJob> jobs) =>
        Tables.Write(
            context,
            "Import jobs (newest first)",
            ["job", "started (UTC)", "source", "trigger", "by", "mode", "status", "secs", .. Tables.CountHeaders, "error"],
            jobs.Select(j => (IReadOnlyList<string>)
            [
                j.Id.ToString(),
                Tables.Time(j.StartedAt),
                j.SourceName,
                j.Trigger,
                j.RequestedBy ?? string.Empty,
                (j.IsDryRun ? "dry-run " : string.Empty) + (j.Mode == IngestionMode.FullRefresh ? "full" : "incremental"),
                j.Status?.ToString() ?? "Running",
                Tables.Seconds(j.FinishedAt - j.StartedAt),
                .. Tables.Counts(j.Counts),
                j.Error is { Length: > 80 } e && context.IsTerminal ? e[..77] + "..." : j.Error ?? string.Empty,
            ]));
}
