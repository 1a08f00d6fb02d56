using Ingestion.Sources.Feeds;
using Ingestion.Sources.Ics;
using Microsoft.Extensions.Configuration;

namespace Ingestion.Sample.Host;

/// <summary>
/// The RSS and ICS sources of the sample host, on bundled files: a feed of court decisions
/// (<c>court-decisions</c>) and a city's event calendar (<c>city-events</c>, recurring events expanded
/// 30 days back and a year ahead). Point <c>Ingestion:Sources:&lt;name&gt;:Url</c> at a real feed to
/// read it over HTTP instead.
/// </summary>
public sealed class FeedsFeature : ISampleFeature
{
    public void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory)
    {
        ingestion.AddFeedSource(
            "court-decisions",
            o => o.Url ??= Path.Combine(dataDirectory, "feeds", "court-decisions.xml"),
            o =>
            {
                o.Table ??= "court_decisions";
                o.CreateTable = true;
            });

        ingestion.AddIcsSource(
            "city-events",
            o =>
            {
                o.Url ??= Path.Combine(dataDirectory, "calendars", "city-events.ics");
                o.FloatingTimeZone = "America/Toronto";
            },
            o =>
            {
                o.Table ??= "city_events";
                o.CreateTable = true;
            });
    }
}
