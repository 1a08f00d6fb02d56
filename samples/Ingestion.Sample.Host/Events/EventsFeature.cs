using Ingestion.Dedup;
using Ingestion.Hosting;
using Ingestion.Postgres.Dedup;
using Ingestion.Sources.Csv;
using Ingestion.Sources.Ics;
using Ingestion.Sources.Mapping;
using Microsoft.Extensions.Configuration;

namespace Ingestion.Sample.Host.Events;

/// <summary>
/// The events sample: the same Montréal events in three bundled files, each with its own ids and slightly
/// different titles, times and places: a CSV export read by the built-in CSV source (<c>events-csv</c>, records
/// are <see cref="DynamicRecord"/>), a JSON feed read by a small source of this sample (<c>events-json</c>,
/// <see cref="ListedEvent"/>) and an iCalendar file read by the built-in ICS source (<c>events-ics</c>,
/// <c>CalendarEvent</c>). One matcher over the three classes links them in <c>ingestion.record_links</c>;
/// <c>events</c> runs them and prints each canonical event with its aliases.
/// </summary>
public sealed class EventsFeature : ISampleFeature
{
    /// <summary>The record type of the dedup set.</summary>
    public const string RecordType = "montreal-events";

    /// <summary>The three sources, in the order <c>events</c> runs them.</summary>
    public static IReadOnlyList<string> Sources { get; } = ["events-csv", "events-json", "events-ics"];

    /// <summary>
    /// Title (trigram similarity of the normalized text, below 0.3 vetoes), start within two hours and place;
    /// 0.8 links, 0.6 leaves the pair for review. The selectors read each source's record class.
    /// </summary>
    public static RecordMatcher<object> Matcher { get; } = RecordMatcher.For<object>(RecordType)
        .Text("title", Title, weight: 0.6, required: true, minSimilarity: 0.3)
        .DateTime("starts_at", StartsAt, TimeSpan.FromHours(2), weight: 0.25, required: true)
        .Text("place", Place, weight: 0.15)
        .Thresholds(link: 0.8, review: 0.6)
        .Build();

    public void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory)
    {
        var folder = Path.Combine(dataDirectory, "events");
        ingestion.AddCsvSource(
            "events-csv",
            o =>
            {
                o.Location ??= Path.Combine(folder, "montreal-events.csv");
                if (o.Columns.Count == 0)
                {
                    o.Columns.Add(new ColumnMappingOptions { Name = "event_id", From = "id", Required = true });
                    o.Columns.Add(new ColumnMappingOptions { Name = "title", From = "titre" });
                    o.Columns.Add(new ColumnMappingOptions { Name = "starts_at", From = "debut", Type = ColumnType.TimestampTz });
                    o.Columns.Add(new ColumnMappingOptions { Name = "place", From = "lieu" });
                    o.Columns.Add(new ColumnMappingOptions { Name = "borough", From = "arrondissement" });
                    o.Key.Add("event_id");
                }
            },
            s =>
            {
                s.Table ??= "montreal_events_csv";
                s.CreateTable = true;
            });

        ingestion.AddSource("events-json", _ => new ListedEventsSource(Path.Combine(folder, "montreal-events.json")), s =>
        {
            s.Table ??= "montreal_events_json";
            s.CreateTable = true;
            s.MaxRejected = 5;
        });

        ingestion.AddIcsSource(
            "events-ics",
            o =>
            {
                o.Url ??= Path.Combine(folder, "montreal-events.ics");
                o.FloatingTimeZone = "America/Toronto";
            },
            s =>
            {
                s.Table ??= "montreal_events_ics";
                s.CreateTable = true;
            });

        ingestion.AddDedup(Matcher, DedupPolicy.Link, [.. Sources]);
    }

    private static string? Title(object record) => record switch
    {
        DynamicRecord d => d["title"] as string,
        ListedEvent e => e.Name,
        CalendarEvent e => e.Summary,
        _ => null,
    };

    private static DateTimeOffset? StartsAt(object record) => record switch
    {
        DynamicRecord d => d["starts_at"] as DateTimeOffset?,
        ListedEvent e => e.Start,
        CalendarEvent e => e.Start,
        _ => null,
    };

    private static string? Place(object record) => record switch
    {
        DynamicRecord d => d["place"] as string,
        ListedEvent e => e.Venue,

        // "Place des Arts, 175 rue Sainte-Catherine Ouest": the venue is the part before the address.
        CalendarEvent e => e.Location?.Split(',')[0],
        _ => null,
    };
}
