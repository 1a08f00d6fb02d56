using System.Globalization;
using Ingestion.Scheduling;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.Sample.Host.Scheduling;

/// <summary><c>serve [--for=seconds]</c>: runs the bundled sources on their schedules until Ctrl+C (graceful shutdown).</summary>
public sealed class ServeCommand : ISampleCommand
{
    public const string CommandName = "serve";

    public string Name => CommandName;

    public string Description => "run the sources on the schedules of appsettings.json until Ctrl+C; --for=<seconds> to stop by itself";

    public async Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        var scheduler = host.Services.GetRequiredService<IIngestionScheduler>();
        await host.StartAsync(cancellationToken);
        NextRunsCommand.Print(scheduler, 1);
        var limit = args.FirstOrDefault(a => a.StartsWith("--for=", StringComparison.Ordinal))?["--for=".Length..];
        try
        {
            if (double.TryParse(limit, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
            {
                await Task.Delay(TimeSpan.FromSeconds(seconds), cancellationToken);
            }
            else
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }

        await host.StopAsync(CancellationToken.None);
        await ScheduleRunsCommand.PrintAsync(host.Services.GetRequiredService<IScheduleStore>(), 20, CancellationToken.None);
        return 0;
    }
}

/// <summary><c>next-runs [count]</c>: the next slots of every schedule, in its time zone and in UTC.</summary>
public sealed class NextRunsCommand : ISampleCommand
{
    public const string CommandName = "next-runs";

    public string Name => CommandName;

    public string Description => "list the next runs of every schedule (default 3 each)";

    public Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        var count = args.Length > 0 && int.TryParse(args[0], CultureInfo.InvariantCulture, out var n) ? n : 3;
        Print(host.Services.GetRequiredService<IIngestionScheduler>(), count);
        return Task.FromResult(0);
    }

    internal static void Print(IIngestionScheduler scheduler, int count)
    {
        Console.WriteLine($"{"schedule",-20} {"source",-16} {"cron",-20} {"time zone",-18} {"next run (local)",-26} next run (UTC)");
        foreach (var s in scheduler.GetNextRuns(TimeProvider.System.GetUtcNow(), count))
        {
            var first = true;
            foreach (var slot in s.Slots)
            {
                var local = TimeZoneInfo.ConvertTime(slot, s.TimeZone);
                var head = first ? $"{s.Schedule + (s.Active ? string.Empty : " (off)"),-20} {s.Source,-16} {s.Cron,-20} {s.TimeZone.Id,-18}" : new string(' ', 78);
                Console.WriteLine($"{head} {local.ToString("ddd yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture),-26} {slot.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}Z");
                first = false;
            }
        }
    }
}

/// <summary><c>run-now schedule</c>: runs a schedule now through the scheduler (claim, retries, history, notifications).</summary>
public sealed class RunNowCommand : ISampleCommand
{
    public const string CommandName = "run-now";

    public string Name => CommandName;

    public string Description => "run a schedule now through the scheduler (same claim, retries, history and notifications)";

    public async Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        var name = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal));
        if (name is null)
        {
            Console.Error.WriteLine("usage: run-now <schedule>");
            return 2;
        }

        await host.StartAsync(cancellationToken);
        try
        {
            var outcome = await host.Services.GetRequiredService<IIngestionScheduler>().RunNowAsync(name, cancellationToken);
            Console.WriteLine($"{outcome.Schedule}: {outcome.Status} after {outcome.Attempts} attempt(s){(outcome.Result is { } r ? $", {r.Counts}" : string.Empty)}{(outcome.Error is { } e ? $", {e}" : string.Empty)}");
            return outcome.Status == ScheduleRunStatus.Succeeded ? 0 : 1;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }
}

/// <summary><c>schedule-runs [count]</c>: the most recent rows of the <c>schedule_runs</c> history.</summary>
public sealed class ScheduleRunsCommand : ISampleCommand
{
    public const string CommandName = "schedule-runs";

    public string Name => CommandName;

    public string Description => "print the most recent schedule runs (default 20)";

    public async Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        var count = args.Length > 0 && int.TryParse(args[0], CultureInfo.InvariantCulture, out var n) ? n : 20;
        await PrintAsync(host.Services.GetRequiredService<IScheduleStore>(), count, cancellationToken);
        return 0;
    }

    internal static async Task PrintAsync(IScheduleStore store, int count, CancellationToken cancellationToken)
    {
        var runs = await store.ListRunsAsync(count, null, cancellationToken);
        Console.WriteLine($"{"schedule",-20} {"slot (UTC)",-20} {"host",-24} {"try",3} {"status",-10} {"ms",7}  error/details");
        foreach (var r in runs.Reverse())
        {
            var ms = r.Duration is { } d ? ((long)d.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) : "";
            Console.WriteLine($"{r.Schedule,-20} {r.Slot.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),-20} {r.Host,-24} {r.Attempt,3} {r.Status,-10} {ms,7}  {r.Error ?? r.Details}");
        }
    }
}
