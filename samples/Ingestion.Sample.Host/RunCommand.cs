using Ingestion.Running;
using Ingestion.Stores;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.Sample.Host;

/// <summary><c>run [source ...] [--dry-run] [--full [--verify]] [--parallel]</c>: runs the enabled sources (or the named ones), then prints the import-job table.</summary>
public sealed class RunCommand : ISampleCommand
{
    public string Name => "run";

    public string Description => "run every enabled source (or the named ones) once, then print the import-job table; --dry-run, --full (--verify: compare stored values, repair hand edits), --parallel";

    public async Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        await host.StartAsync(cancellationToken);
        try
        {
            var runner = host.Services.GetRequiredService<IIngestionRunner>();
            var names = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToList();
            var request = new RunManyRequest
            {
                Sources = names.Count > 0 ? names : null,
                Parallel = args.Contains("--parallel"),
                MaxDegreeOfParallelism = 2,
                Run = new RunRequest
                {
                    DryRun = args.Contains("--dry-run"),
                    Mode = args.Contains("--full") || args.Contains("--verify") ? IngestionMode.FullRefresh : IngestionMode.Incremental,
                    Verify = args.Contains("--verify"),
                    Trigger = "cli",
                },
            };
            var summary = await runner.RunManyAsync(request, cancellationToken);
            Console.WriteLine();
            Console.WriteLine($"This run: {summary.Results.Count} source(s), {summary.Total}");
            Console.WriteLine();
            await JobsCommand.PrintJobsAsync(host.Services.GetRequiredService<IImportJobStore>(), 30, cancellationToken);
            return summary.AllSucceeded ? 0 : 1;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }
}

/// <summary><c>jobs [count]</c>: prints the most recent import jobs.</summary>
public sealed class JobsCommand : ISampleCommand
{
    public string Name => "jobs";

    public string Description => "print the most recent import jobs (default 30)";

    public async Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        await host.StartAsync(cancellationToken);
        var count = args.Length > 0 && int.TryParse(args[0], System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 30;
        await PrintJobsAsync(host.Services.GetRequiredService<IImportJobStore>(), count, cancellationToken);
        await host.StopAsync(CancellationToken.None);
        return 0;
    }

    /// <summary>Prints the import-job table.</summary>
    public static async Task PrintJobsAsync(IImportJobStore store, int count, CancellationToken cancellationToken)
    {
        var jobs = await store.ListRecentAsync(count, null, cancellationToken);
        string[] header = ["started (UTC)", "source", "trigger", "mode", "status", "secs", "read", "created", "updated", "unchanged", "dup", "rejected", "deleted", "linked", "review", "error"];
        var rows = jobs.Select(j => new[]
        {
            j.StartedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture),
            j.SourceName,
            j.Trigger,
            (j.IsDryRun ? "dry-run " : string.Empty) + (j.Mode == IngestionMode.FullRefresh ? "full" : "incremental"),
            j.Status?.ToString() ?? "running",
            j.FinishedAt is { } f ? (f - j.StartedAt).TotalSeconds.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture) : "",
            j.Counts.Read.ToString(System.Globalization.CultureInfo.InvariantCulture),
            j.Counts.Created.ToString(System.Globalization.CultureInfo.InvariantCulture),
            j.Counts.Updated.ToString(System.Globalization.CultureInfo.InvariantCulture),
            j.Counts.Unchanged.ToString(System.Globalization.CultureInfo.InvariantCulture),
            j.Counts.Duplicates.ToString(System.Globalization.CultureInfo.InvariantCulture),
            j.Counts.Rejected.ToString(System.Globalization.CultureInfo.InvariantCulture),
            j.Counts.Deleted.ToString(System.Globalization.CultureInfo.InvariantCulture),
            j.Counts.Linked.ToString(System.Globalization.CultureInfo.InvariantCulture),
            j.Counts.ForReview.ToString(System.Globalization.CultureInfo.InvariantCulture),
            j.Error is { Length: > 60 } e ? e[..57] + "..." : j.Error ?? "",
        }).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        Console.WriteLine("Import jobs (newest first):");
        Console.WriteLine(string.Join(" | ", header.Select((h, i) => h.PadRight(widths[i]))));
        Console.WriteLine(string.Join("-+-", widths.Select(w => new string('-', w))));
        foreach (var r in rows)
        {
            Console.WriteLine(string.Join(" | ", r.Select((c, i) => c.PadRight(widths[i]))));
        }
    }
}
