using System.Globalization;
using Ingestion.Compare.Harness;
using Ingestion.Dedup;
using Ingestion.Postgres.Dedup;
using Ingestion.Postgres.Hosting;
using Ingestion.TestSupport;
using Microsoft.Extensions.Options;

namespace Ingestion.Compare.Cases;

/// <summary>
/// Cross-source dedup at scale (issue 19): <c>--rows</c> existing places of a generated gazetteer (French, Spanish and
/// English names with accents and Saint-/Mont- prefixes, one in seven sharing a common name such as San Miguel, points
/// spread over most of the globe, a date each) filed under dedup by source <c>legacy</c> through the store, in batches
/// (not timed); then one tenth as many incoming places of source <c>ics</c> matched in batches of 10,000 (timed: staging,
/// one blocking query per batch, scoring in .NET, links written). One incoming place in ten is a planted near-duplicate:
/// an existing place respelled (accents dropped, case changed, Saint as St/St-, hyphens as spaces), moved up to 1 km and
/// 30 minutes; one in ten of the others bears a common name at a random point (must not link). With the default
/// 1,000,000 rows: 100,000 incoming against 1,000,000 existing. Notes recall and precision of the links against the
/// plants, and the goals: at least 10,000 incoming records per second, recall >= 0.98, precision >= 0.995, peak working
/// set <= 300 MB. <see cref="WithDate"/>: the matcher has a date field (<c>dedup_match</c>) or only the name and the
/// point (<c>dedup_match_text_geo</c>).
/// </summary>
/// <param name="withDate">Whether the matcher compares (and blocks on) the date too.</param>
public sealed class DedupMatchCase(bool withDate) : CompareCase
{
    private const int BatchSize = 10_000;
    private const double GoalPerSecond = 10_000;
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly RecordMatcher<GazetteerPlace> _matcher = Matcher(withDate);
    private List<GazetteerPlace> _plants = [];
    private double _rate;

    /// <summary>Whether the matcher has a date field.</summary>
    public bool WithDate { get; } = withDate;

    /// <inheritdoc />
    public override string Name => WithDate ? "dedup_match" : "dedup_match_text_geo";

    /// <inheritdoc />
    public override string Unit => "items";

    private string Schema => "bench_" + Name;

    /// <inheritdoc />
    public override async Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await TearDownAsync(context, cancellationToken);
        var existing = context.Rows;
        var plants = Math.Max(1, existing / 100);
        var step = Math.Max(1, existing / plants);
        _plants = [];
        await using var database = Database(context);
        var store = new PostgresDedupStore(database);
        var random = new Random(19);
        var batch = new List<MatchProfile>(BatchSize);
        for (long i = 0; i < existing; i++)
        {
            var place = new GazetteerPlace(
                i.ToString(CultureInfo.InvariantCulture),
                random.Next(7) == 0 ? Gazetteer.CommonNames[random.Next(Gazetteer.CommonNames.Count)] : Gazetteer.NewName(random),
                -55 + (random.NextDouble() * 125),
                -180 + (random.NextDouble() * 360),
                null,
                Start.AddMinutes(random.Next(0, 365 * 24 * 60)));
            if (i % step == 0 && _plants.Count < plants)
            {
                _plants.Add(place);
            }

            batch.Add(_matcher.Profile("legacy", place.Id, place));
            if (batch.Count == BatchSize || i == existing - 1)
            {
                await store.MatchBatchAsync(_matcher, DedupPolicy.Link, batch, null, false, cancellationToken);
                batch.Clear();
            }
        }

        await context.ExecuteAsync($"VACUUM ANALYZE {Schema}.dedup_records", cancellationToken);
        await context.ExecuteAsync($"VACUUM ANALYZE {Schema}.dedup_blocks", cancellationToken);
        if (!context.IsWarmUp)
        {
            context.Note($"{existing / 10} incoming places ({_plants.Count} planted near-duplicates) against {existing} existing, batches of {BatchSize}; matcher name + point (5 km){(WithDate ? " + date (2 h)" : string.Empty)}");
        }
    }

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var incoming = Math.Max(1, context.Rows / 10);
        await using var database = Database(context);
        var store = new PostgresDedupStore(database);
        var random = new Random(7);
        var batch = new List<MatchProfile>(BatchSize);
        long count = 0;
        var plant = 0;
        for (long i = 0; i < incoming; i++)
        {
            GazetteerPlace place;
            if (i % 10 == 0 && plant < _plants.Count)
            {
                var of = _plants[plant++];
                var (lat, lon) = Gazetteer.Move(of.Latitude, of.Longitude, random.NextDouble() * 1_000, random.NextDouble() * 2 * Math.PI);
                place = new GazetteerPlace("dup-" + of.Id, Gazetteer.Respell(of.Name, random), lat, lon, of.Id, of.When.AddMinutes(random.Next(-30, 31)));
            }
            else
            {
                var name = random.Next(10) == 0 ? Gazetteer.CommonNames[random.Next(Gazetteer.CommonNames.Count)] : "Nouveau " + Gazetteer.NewName(random);
                place = new GazetteerPlace("new-" + i.ToString(CultureInfo.InvariantCulture), name, -55 + (random.NextDouble() * 125), -180 + (random.NextDouble() * 360), null, Start.AddMinutes(random.Next(0, 365 * 24 * 60)));
            }

            batch.Add(_matcher.Profile("ics", place.Id, place));
            if (batch.Count == BatchSize || i == incoming - 1)
            {
                await store.MatchBatchAsync(_matcher, DedupPolicy.Link, batch, null, false, cancellationToken);
                count += batch.Count;
                batch.Clear();
            }
        }

        _rate = count / clock.Elapsed.TotalSeconds;
        return count;
    }

    /// <inheritdoc />
    public override async Task VerifyAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var links = $"{Schema}.record_links l JOIN {Schema}.dedup_records r ON r.id = l.record_id JOIN {Schema}.dedup_records t ON t.id = l.target_id WHERE l.status = 'linked'";
        var right = await context.ScalarAsync<long>($"SELECT count(*) FROM {links} AND r.source_id = 'dup-' || t.source_id", cancellationToken);
        var wrong = await context.ScalarAsync<long>($"SELECT count(*) FROM {links} AND r.source_id <> 'dup-' || t.source_id", cancellationToken);
        var planted = _plants.Count;
        var recall = planted == 0 ? 1 : (double)right / planted;
        var precision = right + wrong == 0 ? 1 : (double)right / (right + wrong);
        if (right == 0)
        {
            throw new InvalidOperationException($"{Name} linked none of the {planted} planted near-duplicates ({wrong} other links).");
        }

        if (!context.IsWarmUp)
        {
            context.Note(string.Create(CultureInfo.InvariantCulture, $"recall={recall:0.0000} ({right} of {planted} plants linked to their place) goal>=0.98 {(recall >= 0.98 ? "PASS" : "MISS")}"));
            context.Note(string.Create(CultureInfo.InvariantCulture, $"precision={precision:0.0000} ({wrong} wrong links) goal>=0.995 {(precision >= 0.995 ? "PASS" : "MISS")}"));
            context.Note(string.Create(CultureInfo.InvariantCulture, $"goal {Name} >= {GoalPerSecond:0} items/s: {(_rate >= GoalPerSecond ? "PASS" : "MISS")} ({_rate:0} items/s); goal peak_ws_mb <= 300: read it on the case line"));
        }
    }

    /// <inheritdoc />
    public override async Task TearDownAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await context.ExecuteAsync($"DROP SCHEMA IF EXISTS {Schema} CASCADE", cancellationToken);
    }

    private static RecordMatcher<GazetteerPlace> Matcher(bool withDate)
    {
        var builder = RecordMatcher.For<GazetteerPlace>("bench_places")
            .Text("name", p => p.Name, weight: 0.6, required: true)
            .Geo("position", p => new GeoPoint(p.Longitude, p.Latitude), maxDistanceMeters: 5_000, weight: 0.4);
        return withDate ? builder.DateTime("when", p => p.When, TimeSpan.FromHours(2), weight: 0.2, required: true).Build() : builder.Build();
    }

    private IngestionDatabase Database(CaseContext context) =>
        new(Options.Create(new PostgresIngestionOptions { ConnectionString = context.ConnectionString, Schema = Schema }), [.. DedupMigrations.All]);
}
