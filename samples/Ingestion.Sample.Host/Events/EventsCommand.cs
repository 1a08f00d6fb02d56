using System.Globalization;
using Ingestion.Postgres.Dedup;
using Ingestion.Running;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.Sample.Host.Events;

/// <summary>
/// <c>events [--no-run] [--full]</c>: runs the three event sources one after the other (CSV, JSON, ICS), then
/// prints each canonical event with its aliases in the other sources, and the pairs left for review.
/// </summary>
public sealed class EventsCommand : ISampleCommand
{
    public string Name => "events";

    public string Description => "load the Montréal events from a CSV, a JSON and an ICS file and show them linked across sources; --no-run: only show, --full: full refresh";

    public async Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        await host.StartAsync(cancellationToken);
        try
        {
            var ok = true;
            if (!args.Contains("--no-run"))
            {
                var runner = host.Services.GetRequiredService<IIngestionRunner>();
                var request = new RunRequest { Trigger = "cli", Mode = args.Contains("--full") ? IngestionMode.FullRefresh : IngestionMode.Incremental };
                foreach (var source in EventsFeature.Sources)
                {
                    var result = await runner.RunAsync(source, request, cancellationToken);
                    Console.WriteLine($"{source,-12} {result.Status,-11} {result.Counts}{(result.Error is { } e ? " error: " + e.Message : string.Empty)}");
                    ok &= result.IsSuccess;
                }

                Console.WriteLine();
            }

            var (canonical, _) = await PrintAsync(host.Services.GetRequiredService<RecordLinkReview>(), Console.Out, cancellationToken);
            return ok && canonical.Count > 0 ? 0 : 1;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>Prints the linked events (each canonical event with its aliases) and the pairs left for review.</summary>
    /// <param name="review">The link review service.</param>
    /// <param name="output">Where to print.</param>
    /// <param name="cancellationToken">Cancels the queries.</param>
    /// <returns>The canonical events printed (with their aliases) and the pairs left for review.</returns>
    public static async Task<(IReadOnlyList<CanonicalRecord> Canonical, IReadOnlyList<RecordLink> ForReview)> PrintAsync(RecordLinkReview review, TextWriter output, CancellationToken cancellationToken)
    {
        var links = await review.ListAsync(EventsFeature.RecordType, null, 1000, cancellationToken);
        var groups = new Dictionary<SourceRecordRef, CanonicalRecord>();
        foreach (var link in links.Where(l => l.Status is "linked" or "confirmed"))
        {
            if (await review.GetCanonicalAsync(EventsFeature.RecordType, link.Record, cancellationToken) is { } canonical)
            {
                groups.TryAdd(canonical.Canonical, canonical);
            }
        }

        var montreal = TimeZoneInfo.FindSystemTimeZoneById("America/Toronto");
        var ordered = groups.Values.OrderBy(c => c.Profile.ElementAtOrDefault(1), StringComparer.Ordinal).ToList();
        output.WriteLine($"Montréal events linked across sources: {ordered.Count} canonical event(s), {ordered.Sum(c => c.Aliases.Count)} source records");
        foreach (var c in ordered)
        {
            var starts = DateTimeOffset.TryParse(c.Profile.ElementAtOrDefault(1), CultureInfo.InvariantCulture, DateTimeStyles.None, out var at)
                ? TimeZoneInfo.ConvertTime(at, montreal).ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)
                : "?";
            output.WriteLine($"  {starts}  {c.Profile.ElementAtOrDefault(0)}  @ {c.Profile.ElementAtOrDefault(2)}   [canonical {c.Canonical}]");
            foreach (var alias in c.Aliases.Where(a => a != c.Canonical.ToString()))
            {
                var why = links.FirstOrDefault(l => l.Record.ToString() == alias && l.Status is "linked" or "confirmed");
                output.WriteLine($"      = {alias}{(why is null ? string.Empty : $"  (score {why.Score.ToString("0.00", CultureInfo.InvariantCulture)}: {why.Reason})")}");
            }
        }

        var forReview = links.Where(l => l.Status == "review").ToList();
        if (forReview.Count > 0)
        {
            output.WriteLine($"Left for review: {forReview.Count}");
            foreach (var l in forReview)
            {
                output.WriteLine($"  {l.Record} ~ {l.Target}  (score {l.Score.ToString("0.00", CultureInfo.InvariantCulture)}: {l.Reason})");
            }
        }

        return (ordered, forReview);
    }
}
