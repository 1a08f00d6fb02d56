using System.CommandLine;
using Ingestion.CommandLine.Output;
using Ingestion.Queue;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.CommandLine.Commands;

/// <summary><c>queue stats|dead|requeue|reconcile</c>.</summary>
internal static class QueueCommands
{
    public static Command Create(IngestionCommandContext context)
    {
        var command = new Command("queue", "Inspect and repair the work queues: stats, dead items, requeue, reconcile.");
        command.Subcommands.Add(Stats(context));
        command.Subcommands.Add(Dead(context));
        command.Subcommands.Add(Requeue(context));
        command.Subcommands.Add(Reconcile(context));
        return command;
    }

    private static Command Stats(IngestionCommandContext context)
    {
        var command = new Command("stats", "Counts of every registered queue.");
        command.SetAction(async (_, ct) =>
        {
            foreach (var s in await InspectCommands.Operations(context).GetQueueStatsAsync(ct).ConfigureAwait(false))
            {
                Tables.Line(
                    context,
                    "queue",
                    ("name", s.Queue),
                    ("pending", s.Pending),
                    ("running", s.Running),
                    ("done", s.Done),
                    ("failed", s.Failed),
                    ("dead", s.Dead),
                    ("oldest_pending_s", s.OldestPendingAge is { } age ? Math.Round(age.TotalSeconds, 1) : null),
                    ("throughput_per_s", Math.Round(s.ThroughputPerSecond, 2)));
            }

            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Dead(IngestionCommandContext context)
    {
        var queue = new Argument<string>("QUEUE") { Description = "The queue." };
        var last = new Option<int>("--last") { Description = "How many items.", DefaultValueFactory = _ => 50 };
        var command = new Command("dead", "List a queue's dead items, most recently failed first.") { queue, last };
        command.SetAction(async (parse, ct) =>
        {
            var items = await InspectCommands.Operations(context).GetDeadItemsAsync(parse.GetValue(queue)!, Math.Max(1, parse.GetValue(last)), ct).ConfigureAwait(false);
            Tables.Write(
                context,
                "Dead items",
                ["key", "attempts", "failed (UTC)", "last error"],
                items.Select(d => (IReadOnlyList<string>)[d.Key, Tables.Number(d.Attempts), Tables.Time(d.FailedAt), d.LastError ?? string.Empty]));
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Requeue(IngestionCommandContext context)
    {
        var queue = new Argument<string>("QUEUE") { Description = "The queue." };
        var keys = new Argument<string[]>("KEY") { Description = "The dead items to requeue (none: all of them).", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("requeue", "Make dead items ready again with a fresh attempt count.") { queue, keys };
        command.SetAction(async (parse, ct) =>
        {
            var named = parse.GetValue(keys) ?? [];
            var n = await InspectCommands.Operations(context).RequeueDeadAsync(parse.GetValue(queue)!, named.Length > 0 ? named : null, ct).ConfigureAwait(false);
            Tables.Line(context, "requeued", ("queue", parse.GetValue(queue)), ("items", n));
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Reconcile(IngestionCommandContext context)
    {
        var queue = new Argument<string>("QUEUE") { Description = "The queue (the host registers its storage listing, IQueueStorageListing)." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Count only; enqueue nothing." };
        var command = new Command("reconcile", "Enqueue keys in storage the queue does not know; report queued keys missing from storage.") { queue, dryRun };
        command.SetAction(async (parse, ct) =>
        {
            var name = parse.GetValue(queue)!;
            var store = context.Services.GetService<IWorkQueueStore>()
                ?? throw new CommandLineException(ExitCodes.BadArguments, $"Queue '{name}': the host registered no queue store.");
            var listing = context.Services.GetServices<IQueueStorageListing>().FirstOrDefault(l => l.Queue == name)
                ?? throw new CommandLineException(ExitCodes.BadArguments, $"Queue '{name}': the host registered no storage listing (IQueueStorageListing) for it.");
            var r = await store.ReconcileAsync(name, listing.ListAsync(ct), new ReconcileOptions { DryRun = parse.GetValue(dryRun), MaxReported = 20 }, ct).ConfigureAwait(false);
            Tables.Line(context, "reconcile", ("queue", name), ("storage_keys", r.StorageKeys), ("missing_from_queue", r.MissingFromQueue), ("enqueued", r.Enqueued), ("missing_from_storage", r.MissingFromStorage), ("dry_run", parse.GetValue(dryRun)));
            foreach (var k in r.MissingFromStorageSample)
            {
                Tables.Line(context, "missing", ("queue", name), ("key", k));
            }

            return r.MissingFromStorage > 0 ? ExitCodes.Failed : ExitCodes.Success;
        });
        return command;
    }
}
