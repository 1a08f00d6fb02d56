using Ingestion.Dedup;
using Ingestion.Postgres.Dedup;
using Ingestion.Postgres.Hosting;
using Ingestion.TestSupport;
using Microsoft.Extensions.Options;

namespace Ingestion.Postgres.Tests.Dedup;

/// <summary>The wide cells and buckets of the blocks, and the exact distance and time checked on their entries in the candidate query.</summary>
public class DedupBlockFilterTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly DateTimeOffset T0 = new(2026, 6, 21, 18, 0, 0, TimeSpan.Zero);

    private static RecordMatcher<GazetteerPlace> Matcher(bool withDate) =>
        withDate
            ? RecordMatcher.For<GazetteerPlace>("places").Text("name", p => p.Name, weight: 0.6, required: true)
                .Geo("position", p => new GeoPoint(p.Longitude, p.Latitude), maxDistanceMeters: 5_000, weight: 0.4)
                .DateTime("when", p => p.When, TimeSpan.FromHours(2), weight: 0.2, required: true).Build()
            : RecordMatcher.For<GazetteerPlace>("places").Text("name", p => p.Name, weight: 0.6, required: true)
                .Geo("position", p => new GeoPoint(p.Longitude, p.Latitude), maxDistanceMeters: 5_000, weight: 0.4).Build();

    private IngestionDatabase Database(string schema) => PostgresDedupTests.DedupDatabase(db.ConnectionString, schema);

    [Fact]
    public async Task Thousands_of_places_of_the_same_name_beyond_the_distance_are_dropped_in_the_index_and_the_near_one_links()
    {
        await using var database = Database("dedup_crowd");
        var store = new PostgresDedupStore(database);
        var m = Matcher(withDate: false);
        var random = new Random(11);
        var (lat, lon) = (45.5, -73.6);

        // 3,000 San Miguel 6 to 15 km away (in the same wide cells as the incoming one), then the true one 300 m away,
        // filed last: it would be past any cap on the block read in id order.
        var crowd = new List<MatchProfile>();
        for (var i = 0; i < 3_000; i++)
        {
            var (la, lo) = Gazetteer.Move(lat, lon, 6_000 + (random.NextDouble() * 9_000), random.NextDouble() * 2 * Math.PI);
            crowd.Add(m.Profile("a", "decoy" + i, new GazetteerPlace("decoy" + i, "San Miguel", la, lo, null, T0)));
        }

        var (tla, tlo) = Gazetteer.Move(lat, lon, 300, 1);
        crowd.Add(m.Profile("a", "true", new GazetteerPlace("true", "San Miguel", tla, tlo, null, T0)));
        await store.MatchBatchAsync(m, DedupPolicy.Link, crowd, null, false, default);

        var r = await store.MatchBatchAsync(m, DedupPolicy.Link, [m.Profile("b", "1", new GazetteerPlace("1", "SAN MIGUEL", lat, lon, null, T0))], null, false, default);
        Assert.Equal(1, r.Linked);
        Assert.Equal(1, r.Compared);
        Assert.Equal(0, r.CutBlocks);
        Assert.Equal("true", await db.ScalarAsync<string>("SELECT t.source_id FROM dedup_crowd.record_links l JOIN dedup_crowd.dedup_records t ON t.id = l.target_id"));
    }

    [Fact]
    public async Task Times_beyond_the_tolerance_share_a_wide_bucket_but_are_never_compared_and_times_within_it_link()
    {
        await using var database = Database("dedup_times");
        var store = new PostgresDedupStore(database);
        var m = Matcher(withDate: true);
        await store.MatchBatchAsync(m, DedupPolicy.Link, [m.Profile("a", "1", new GazetteerPlace("1", "Fête de la musique", 48.85, 2.35, null, T0))], null, false, default);
        var far = m.Profile("b", "1", new GazetteerPlace("1", "Fete de la Musique", 48.85, 2.35, null, T0.AddHours(5)));
        Assert.Contains(m.Blocking.ProbeKeys(far, ["a"]), k => m.Blocking.FileKeys(m.Profile("a", "1", new GazetteerPlace("1", "Fête de la musique", 48.85, 2.35, null, T0))).Contains(k));

        var r = await store.MatchBatchAsync(m, DedupPolicy.Link, [far], null, false, default);
        Assert.Equal(0, r.Compared);
        r = await store.MatchBatchAsync(m, DedupPolicy.Link, [m.Profile("b", "2", new GazetteerPlace("2", "FETE DE LA MUSIQUE", 48.86, 2.36, null, T0.AddMinutes(110)))], null, false, default);
        Assert.Equal(1, r.Compared);
        Assert.Equal(1, r.Linked);
    }

    [Fact]
    public async Task Records_filed_under_the_keys_of_schema_version_2_get_their_new_keys_on_first_use_and_are_found()
    {
        var m = Matcher(withDate: false);
        await using (var v2 = new IngestionDatabase(Options.Create(new PostgresIngestionOptions { ConnectionString = db.ConnectionString, Schema = "dedup_upgrade" }), [DedupMigrations.V1, DedupMigrations.V2]))
        {
            await v2.EnsureMigratedAsync(default);
        }

        // A record as version 2 stored it: its keys (of the narrow cells, here made up) in block_keys and dedup_blocks.
        await db.ExecuteAsync("""
            INSERT INTO dedup_upgrade.dedup_records (record_type, source, source_id, match_text, profile, block_keys)
            VALUES ('places', 'a', '1', 'saint jean richelieu', '["Saint-Jean-sur-Richelieu", "-73.25 45.3"]', '{11,12}');
            INSERT INTO dedup_upgrade.dedup_blocks SELECT k, 1 FROM unnest('{11,12}'::bigint[]) k;
            INSERT INTO dedup_upgrade.dedup_sources VALUES ('places', 'a');
            """);

        await using var database = Database("dedup_upgrade");
        var store = new PostgresDedupStore(database);
        var r = await store.MatchBatchAsync(m, DedupPolicy.Link, [m.Profile("b", "1", new GazetteerPlace("1", "ST-JEAN-SUR-RICHELIEU", 45.31, -73.26, null, T0))], null, false, default);
        Assert.Equal(1, r.Linked);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_upgrade.dedup_blocks WHERE key IN (11, 12)"));
    }

    [Fact]
    public async Task A_new_store_analyzes_only_once_it_has_staged_as_many_records_as_the_table_held()
    {
        var m = Matcher(withDate: false);
        await using var database = Database("dedup_analyze");
        await database.EnsureMigratedAsync(default);
        await db.ExecuteAsync("ALTER TABLE dedup_analyze.dedup_records SET (autovacuum_enabled = false); ALTER TABLE dedup_analyze.dedup_blocks SET (autovacuum_enabled = false)");
        var random = new Random(4);
        List<MatchProfile> Batch(string source, int from, int count) =>
            [.. Enumerable.Range(from, count).Select(i => m.Profile(source, i.ToString(System.Globalization.CultureInfo.InvariantCulture), new GazetteerPlace("x", Gazetteer.NewName(random), (random.NextDouble() * 100) - 50, (random.NextDouble() * 300) - 150, null, T0)))];

        // A first load analyzes at 20,000 and 40,000 records.
        var first = new PostgresDedupStore(database);
        for (var i = 0; i < 4; i++)
        {
            await first.MatchBatchAsync(m, DedupPolicy.Link, Batch("a", i * 10_000, 10_000), null, false, default);
        }

        Assert.Equal(40_000L, await db.ScalarAsync<long>("SELECT reltuples::bigint FROM pg_class WHERE oid = 'dedup_analyze.dedup_records'::regclass"));

        // Another store (another run) matching 25,000 records against the 40,000 does not analyze: the table has not doubled.
        var second = new PostgresDedupStore(database);
        for (var i = 0; i < 3; i++)
        {
            await second.MatchBatchAsync(m, DedupPolicy.Link, Batch("b", i * 10_000, i == 2 ? 5_000 : 10_000), null, false, default);
        }

        Assert.Equal(40_000L, await db.ScalarAsync<long>("SELECT reltuples::bigint FROM pg_class WHERE oid = 'dedup_analyze.dedup_records'::regclass"));
    }

    [Fact]
    public async Task A_place_without_a_point_is_found_by_its_name_and_marks_its_source_so_placed_records_probe_whole_names_there()
    {
        var m = RecordMatcher.For<PlaceRecord>("spots").Text("name", p => p.Name, weight: 0.6, required: true)
            .Geo("position", p => p.At, maxDistanceMeters: 5_000, weight: 0.4).Thresholds(link: 0.55, review: 0.5).Build();
        await using var database = Database("dedup_unplaced");
        var store = new PostgresDedupStore(database);
        await store.MatchBatchAsync(m, DedupPolicy.Link, [m.Profile("a", "1", new PlaceRecord("Rivière-Ouelle", new GeoPoint(-70.0, 47.4)))], null, false, default);
        await store.MatchBatchAsync(m, DedupPolicy.Link, [m.Profile("c", "1", new PlaceRecord("Kamouraska", null))], null, false, default);
        Assert.False(await db.ScalarAsync<bool>("SELECT unplaced FROM dedup_unplaced.dedup_sources WHERE source = 'a'"));
        Assert.True(await db.ScalarAsync<bool>("SELECT unplaced FROM dedup_unplaced.dedup_sources WHERE source = 'c'"));

        // A record without a point finds a placed one by its whole name; a placed one finds one without a point.
        Assert.Equal(1, (await store.MatchBatchAsync(m, DedupPolicy.Link, [m.Profile("b", "1", new PlaceRecord("RIVIERE OUELLE", null))], null, false, default)).Linked);
        Assert.Equal(1, (await store.MatchBatchAsync(m, DedupPolicy.Link, [m.Profile("b", "2", new PlaceRecord("Kamouraska", new GeoPoint(-69.9, 47.5)))], null, false, default)).Linked);
    }
}

/// <summary>A named place that may lack a point.</summary>
/// <param name="Name">The name.</param>
/// <param name="At">The point, if known.</param>
public sealed record PlaceRecord(string Name, GeoPoint? At);
