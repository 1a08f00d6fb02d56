using System.Globalization;
using System.Text;
using System.Text.Json;
using Ingestion.Benchmarks.Data;

namespace Ingestion.Compare.Data;

/// <summary>
/// The inputs of <c>seed_shape</c> (issue 19 §3), scaled to <c>--rows</c>: two CSV files (0.4 and 0.3 of the rows: the
/// benchmark rows, and traffic tickets of another shape), a paged JSON API (0.15, pages of 1,000 served from memory), a
/// CKAN datastore (0.1, pages of 1,000), a GeoJSON file of point features (0.05), an RSS feed and an ICS calendar (0.003
/// each, at most 3,000). Written once, before the timing.
/// </summary>
public sealed class SeedShapeData
{
    /// <summary>Page size of the JSON API and the CKAN datastore.</summary>
    public const int PageSize = 1_000;

    private SeedShapeData(long rows) => Rows = rows;

    /// <summary>The rows asked for.</summary>
    public long Rows { get; }

    /// <summary>Rows of each source, by table suffix.</summary>
    public IReadOnlyDictionary<string, long> Counts { get; private init; } = new Dictionary<string, long>();

    /// <summary>The total of all sources.</summary>
    public long Total => Counts.Values.Sum();

    /// <summary>The CSV of benchmark rows.</summary>
    public string CsvA { get; private init; } = string.Empty;

    /// <summary>The CSV of tickets.</summary>
    public string CsvB { get; private init; } = string.Empty;

    /// <summary>The GeoJSON FeatureCollection.</summary>
    public string GeoJson { get; private init; } = string.Empty;

    /// <summary>The RSS feed.</summary>
    public string Rss { get; private init; } = string.Empty;

    /// <summary>The ICS calendar.</summary>
    public string Ics { get; private init; } = string.Empty;

    /// <summary>The JSON API's pages, by page number from 1 (an empty page after the last).</summary>
    public IReadOnlyList<byte[]> JsonPages { get; private init; } = [];

    /// <summary>The CKAN datastore's pages, by offset / <see cref="PageSize"/>.</summary>
    public IReadOnlyList<byte[]> CkanPages { get; private init; } = [];

    /// <summary>Writes the files and renders the pages.</summary>
    /// <param name="directory">Where to write.</param>
    /// <param name="rows">The rows asked for.</param>
    /// <returns>The data.</returns>
    public static SeedShapeData Create(string directory, long rows)
    {
        long Share(double share) => Math.Max(1, (long)(rows * share));
        var feed = Math.Clamp((long)(rows * 0.003), 1, 3_000);
        var counts = new Dictionary<string, long>
        {
            ["csv_a"] = Share(0.4), ["csv_b"] = Share(0.3), ["json"] = Share(0.15), ["ckan"] = Share(0.1), ["geojson"] = Share(0.05), ["rss"] = feed, ["ics"] = feed,
        };
        var data = new SeedShapeData(rows)
        {
            Counts = counts,
            CsvA = Path.Combine(directory, $"seed-a-{rows}.csv"),
            CsvB = Path.Combine(directory, $"seed-b-{rows}.csv"),
            GeoJson = Path.Combine(directory, $"seed-{rows}.geojson"),
            Rss = Path.Combine(directory, $"seed-{rows}.rss.xml"),
            Ics = Path.Combine(directory, $"seed-{rows}.ics"),
            JsonPages = Pages(counts["json"], i => new { id = "item-" + i.ToString(CultureInfo.InvariantCulture), title = "Élément " + i.ToString(CultureInfo.InvariantCulture), amount = i % 1000, updated_at = Day(i) }, page => new { data = page }),
            CkanPages = Pages(counts["ckan"], i => new Dictionary<string, object> { ["_id"] = i + 1, ["Rue"] = "Rue Saint-Denis " + (i % 5000).ToString(CultureInfo.InvariantCulture), ["montant"] = ((i % 9000) / 100.0).ToString("0.00", CultureInfo.InvariantCulture) }, page => new
            {
                success = true,
                result = new { total = counts["ckan"], fields = new[] { new { id = "_id", type = "int" }, new { id = "Rue", type = "text" }, new { id = "montant", type = "numeric" } }, records = page },
            }),
        };
        CsvFile.Write(data.CsvA, RowGenerator.Rows(RowPlan.Initial, counts["csv_a"]));
        WriteLines(data.CsvB, "ticket_id,issued_on,amount,place", counts["csv_b"], i => string.Create(CultureInfo.InvariantCulture, $"T{i},{Day(i):yyyy-MM-dd},{50 + (i % 400)},\"Rue Sainte-Catherine {i % 3000}, Montréal\""));
        WriteLines(data.GeoJson, "{\"type\":\"FeatureCollection\",\"features\":[", counts["geojson"], i => string.Create(CultureInfo.InvariantCulture, $"{(i == 0 ? string.Empty : ",")}{{\"type\":\"Feature\",\"id\":\"radar.{i}\",\"geometry\":{{\"type\":\"Point\",\"coordinates\":[{-79 + (i % 1000) / 100.0},{45 + (i % 700) / 100.0}]}},\"properties\":{{\"municipalite\":\"Ville {i % 1100}\",\"vitesse\":{30 + (i % 8) * 10}}}}}"), "]}");
        WriteLines(data.Rss, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Décisions</title><link>https://decisions.example.org/</link><description>seed_shape</description>", feed, i => string.Create(CultureInfo.InvariantCulture, $"<item><title>Ville c. Partie {i}, 2026 QCCM {i}</title><link>https://decisions.example.org/{i}</link><guid isPermaLink=\"false\">d{i}</guid><description>Décision {i}</description><pubDate>{Day(i):R}</pubDate></item>"), "</channel></rss>");
        WriteLines(data.Ics, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Ingestion//seed_shape//FR", feed, i => string.Create(CultureInfo.InvariantCulture, $"BEGIN:VEVENT\r\nUID:event-{i}@ville.example\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{Day(i):yyyyMMdd'T'HHmmss'Z'}\r\nSUMMARY:Événement {i}\r\nLOCATION:Parc {i % 200}\r\nEND:VEVENT"), "END:VCALENDAR");
        return data;
    }

    private static DateTimeOffset Day(long i) => new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddMinutes(i * 7 % 525_600);

    private static List<byte[]> Pages<TItem, TPage>(long count, Func<long, TItem> item, Func<List<TItem>, TPage> page)
    {
        var pages = new List<byte[]>();
        for (long start = 0; start < count; start += PageSize)
        {
            var items = new List<TItem>();
            for (var i = start; i < Math.Min(count, start + PageSize); i++)
            {
                items.Add(item(i));
            }

            pages.Add(JsonSerializer.SerializeToUtf8Bytes(page(items)));
        }

        pages.Add(JsonSerializer.SerializeToUtf8Bytes(page([])));
        return pages;
    }

    private static void WriteLines(string path, string head, long count, Func<long, string> line, string? tail = null)
    {
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 1 << 16);
        writer.NewLine = path.EndsWith(".ics", StringComparison.Ordinal) ? "\r\n" : "\n";
        writer.WriteLine(head);
        for (long i = 0; i < count; i++)
        {
            writer.WriteLine(line(i));
        }

        if (tail is not null)
        {
            writer.WriteLine(tail);
        }
    }
}
