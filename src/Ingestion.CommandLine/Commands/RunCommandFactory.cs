using System.CommandLine;
using Ingestion.CommandLine.Output;
using Ingestion.Hosting;
using Ingestion.Operations;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Ingestion.CommandLine.Commands;

/// <summary><c>run [SOURCE...] [--all] [--dry-run] [--full] [--parallel N]</c>.</summary>
internal static class RunCommandFactory
{
    public static Command Create(IngestionCommandContext context)
    {
        var sources = new Argument<string[]>("SOURCE") { Description = "The sources to run, in order (none: every enabled source).", Arity = ArgumentArity.ZeroOrMore };
        var all = new Option<bool>("--all") { Description = "Run every enabled source." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Read and validate everything, commit nothing." };
        var full = new Option<bool>("--full") { Description = "Full refresh: ignore saved cursors and read everything." };
        var parallel = new Option<int>("--parallel") { Description = "Run up to N sources at once.", DefaultValueFactory = _ => 1 };
        var requestedBy = new Option<string?>("--requested-by") { Description = "Who asks for the run (recorded); defaults to the user name." };
        var command = new Command("run", "Run sources once, with live progress, then print a summary table.") { sources, all, dryRun, full, parallel, requestedBy };
        command.SetAction(async (parse, ct) =>
        {
            var names = parse.GetValue(sources) ?? [];
            var request = new RunSourcesRequest
            {
                Sources = names,
                All = parse.GetValue(all) || names.Length == 0,
                DryRun = parse.GetValue(dryRun),
                FullRefresh = parse.GetValue(full),
                Parallelism = parse.GetValue(parallel),
                Trigger = "cli",
                RequestedBy = parse.GetValue(requestedBy) ?? Environment.UserName,
            };
            return await RunAsync(context, request, ct).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(IngestionCommandContext context, RunSourcesRequest request, CancellationToken cancellationToken)
    {
        if (request.Validate() is { Count: > 0 } problems)
        {
            throw new CommandLineException(ExitCodes.BadArguments, string.Join(" ", problems));
        }

        var services = context.Services;
        var operations = services.GetRequiredService<IIngestionOperations>();
        var catalog = services.GetRequiredService<SourceCatalog>();
        var enabled = services.GetRequiredService<IOptionsMonitor<SourceOptions>>();
        var names = request.All
            ? catalog.Sources.Select(s => s.Name).Where(n => enabled.Get(n).Enabled).ToList()
            : request.Sources.ToList();
        var display = new RunProgressDisplay(context, services.GetService<TimeProvider>() ?? TimeProvider.System);
        await context.Host.StartAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var work = operations.RunAsync(request with { Progress = display }, cancellationToken);
            var summary = await display.ShowWhileAsync(names, operations.GetActiveRuns, work).ConfigureAwait(false);
            WriteSummary(context, summary);
            return ExitCodes.Of(summary.Results);
        }
        finally
        {
            await context.Host.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static void WriteSummary(IngestionCommandContext context, Running.IngestionRunSummary summary)
    {
        if (!context.IsTerminal)
        {
            foreach (var r in summary.Results)
            {
                var c = r.Counts;
                Tables.Line(
                    context,
                    "result",
                    ("source", r.SourceName),
                    ("status", r.Status),
                    ("job", r.RunId),
                    ("dry_run", r.IsDryRun),
                    ("seconds", Math.Round(r.Duration.TotalSeconds, 3)),
                    ("read", c.Read),
                    ("created", c.Created),
                    ("updated", c.Updated),
                    ("unchanged", c.Unchanged),
                    ("duplicates", c.Duplicates),
                    ("rejected", c.Rejected),
                    ("deleted", c.Deleted),
                    ("error", r.Error?.ToString()));
            }

            Tables.Line(context, "summary", ("sources", summary.Results.Count), ("failed", summary.Results.Count(r => !r.IsSuccess)), ("exit", ExitCodes.Of(summary.Results)));
            return;
        }

        Tables.Write(
            context,
            "This run",
            ["source", "status", "secs", .. Tables.CountHeaders, "error"],
            summary.Results.Select(r => (IReadOnlyList<string>)
            [
                r.SourceName,
                (r.IsDryRun ? "dry-run " : string.Empty) + r.Status,
                Tables.Seconds(r.Duration),
                .. Tables.Counts(r.Counts),
                r.Error?.ToString() ?? string.Empty,
            ]));
    }
}
