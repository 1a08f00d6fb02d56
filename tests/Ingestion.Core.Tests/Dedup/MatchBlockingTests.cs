using Ingestion.Dedup;

namespace Ingestion.Core.Tests.Dedup;

public sealed class Place
{
    public string? Name { get; set; }

    public GeoPoint? At { get; set; }

    public DateTimeOffset? When { get; set; }

    public string? Country { get; set; }
}

public class MatchBlockingTests
{
    private static readonly DateTimeOffset T0 = new(2026, 6, 26, 19, 0, 0, TimeSpan.Zero);

    private static RecordMatcher<Place> Matcher(bool withTime = false, bool withCountry = false)
    {
        var b = RecordMatcher.For<Place>("places")
            .Text("name", p => p.Name, weight: 0.6, required: true)
            .Geo("at", p => p.At, maxDistanceMeters: 5_000, weight: 0.4);
        if (withTime)
        {
            b = b.DateTime("when", p => p.When, TimeSpan.FromHours(2), weight: 0.2);
        }

        if (withCountry)
        {
            b = b.Exact("country", p => p.Country, weight: 0.1, mustMatch: true);
        }

        return b.Build();
    }

    private static MatchProfile P(RecordMatcher<Place> m, string source, string? name, GeoPoint? at, DateTimeOffset? when = null, string? country = null) =>
        m.Profile(source, Guid.NewGuid().ToString("N"), new Place { Name = name, At = at, When = when, Country = country });

    private static bool Meet(RecordMatcher<Place> m, MatchProfile incoming, MatchProfile stored) =>
        m.Blocking.ProbeKeys(incoming, [stored.Source]).Intersect(m.Blocking.FileKeys(stored)).Any();

    [Fact]
    public void Two_points_within_the_maximum_distance_always_share_a_cell_near_the_poles_and_across_the_antimeridian_too()
    {
        var m = Matcher();
        var random = new Random(42);
        for (var i = 0; i < 20_000; i++)
        {
            var lat = i % 4 == 0 ? 88 + (random.NextDouble() * 2) : (random.NextDouble() * 180) - 90;
            var lon = i % 4 == 1 ? 179.99 + (random.NextDouble() * 0.02) - 0.01 : (random.NextDouble() * 360) - 180;
            if (lon > 180)
            {
                lon -= 360;
            }

            var p = new GeoPoint(lon, lat);
            var q = Destination(p, random.NextDouble() * 4_999, random.NextDouble() * 2 * Math.PI);
            Assert.True(RecordMatcher.DistanceMeters(p, q) <= 5_000);
            Assert.Contains(m.Blocking.CellOf(q)!, m.Blocking.ProbeCells(p));
            Assert.InRange(m.Blocking.ProbeCells(p).Count, 1, 8);
        }
    }

    [Fact]
    public void Respelled_names_nearby_meet_and_same_names_far_apart_or_in_the_same_source_do_not()
    {
        var m = Matcher();
        var at = new GeoPoint(-73.5668, 45.5081);
        var a = P(m, "a", "Saint-Jean-sur-Richelieu", at);
        Assert.True(Meet(m, P(m, "b", "ST JEAN SUR RICHELIEU", new GeoPoint(-73.57, 45.51)), a));
        Assert.True(Meet(m, P(m, "b", "St-Jean", new GeoPoint(-73.57, 45.51)), a), "one shared word is enough to be compared");
        Assert.False(Meet(m, P(m, "b", "Saint-Jean-sur-Richelieu", new GeoPoint(-70, 45.5)), a), "270 km apart: never compared");
        Assert.False(Meet(m, P(m, "a", "Saint-Jean-sur-Richelieu", at), a), "a source's records are not compared with each other");
    }

    [Fact]
    public void A_record_without_a_point_meets_the_records_of_the_same_name_wherever_they_are()
    {
        var m = Matcher();
        var located = P(m, "a", "Rivière-du-Loup", new GeoPoint(-69.53, 47.83));
        var unlocated = P(m, "b", "Riviere du Loup", null);
        Assert.True(Meet(m, unlocated, located));
        Assert.True(Meet(m, located, unlocated));
        Assert.False(Meet(m, P(m, "b", "Rivière-Ouelle", null), located));
    }

    [Fact]
    public void Dates_and_must_match_codes_narrow_the_blocks()
    {
        var m = Matcher(withTime: true, withCountry: true);
        var at = new GeoPoint(2.35, 48.85);
        var stored = P(m, "a", "Fête de la musique", at, T0, "FR");
        var random = new Random(3);
        for (var i = 0; i < 2_000; i++)
        {
            var shift = TimeSpan.FromSeconds((random.NextDouble() * 4 * 3600) - (2 * 3600));
            Assert.True(Meet(m, P(m, "b", "Fete de la Musique", at, T0 + shift, "fr"), stored), $"{shift} apart");
        }

        // With a geo field the bucket is 16 times longer (64 h): 5 h apart still meet (the store checks the exact time
        // on the block entry), a week apart do not.
        Assert.True(Meet(m, P(m, "b", "Fete de la Musique", at, T0.AddHours(5), "FR"), stored));
        Assert.False(Meet(m, P(m, "b", "Fete de la Musique", at, T0.AddDays(7), "FR"), stored));
        Assert.False(Meet(m, P(m, "b", "Fete de la Musique", at, T0, "BE"), stored));
    }

    [Fact]
    public void Without_a_geo_field_the_time_bucket_is_twice_the_tolerance_and_a_record_probes_the_neighbour_its_tolerance_reaches()
    {
        var m = RecordMatcher.For<Place>("events").Text("name", p => p.Name, weight: 0.7, required: true)
            .DateTime("when", p => p.When, TimeSpan.FromHours(2), weight: 0.3, required: true).Build();
        var stored = P(m, "a", "Fête de la musique", null, T0);
        var random = new Random(5);
        for (var i = 0; i < 2_000; i++)
        {
            var shift = TimeSpan.FromSeconds((random.NextDouble() * 4 * 3600) - (2 * 3600));
            Assert.True(Meet(m, P(m, "b", "Fete de la Musique", null, T0 + shift), stored), $"{shift} apart");
        }

        Assert.False(Meet(m, P(m, "b", "Fete de la Musique", null, T0.AddHours(5)), stored));
        // Two words, each in its bucket and the nearer one (19:00 is 3 h into a 16:00-20:00 bucket), and the whole name.
        Assert.Equal(5, m.Blocking.ProbeKeys(P(m, "b", "Fete Musique", null, T0), ["a"]).Count);
    }

    [Fact]
    public void Wide_cells_make_most_records_probe_one_cell_per_word_and_only_text_keys_with_a_place_are_placed()
    {
        var m = Matcher();
        var random = new Random(8);
        var cells = 0;
        for (var i = 0; i < 2_000; i++)
        {
            cells += m.Blocking.ProbeCells(new GeoPoint((random.NextDouble() * 360) - 180, (random.NextDouble() * 120) - 60)).Count;
        }

        Assert.InRange(cells / 2_000.0, 1, 2);
        var located = P(m, "a", "Saint-Jean-sur-Richelieu", new GeoPoint(-73.25, 45.3));
        Assert.Single(m.Blocking.FileEntries(located), e => !e.Placed);
        Assert.Equal(4, m.Blocking.FileEntries(located).Count);
        Assert.DoesNotContain(m.Blocking.FileEntries(P(m, "a", "Saint-Jean-sur-Richelieu", null)), e => e.Placed);
        Assert.Throws<ArgumentException>(() => RecordMatcher.For<Place>("x").Text("n", x => x.Name, 1).Blocking(o => o.GeoCellScale = 0).Build());
    }

    [Fact]
    public void Keys_are_stable_numbers_and_long_names_probe_a_bounded_number_of_keys()
    {
        var m = Matcher(withTime: true);
        var p = P(m, "b", "Festival international de la chanson francophone de Saint-Jean-sur-Richelieu et environs 2026", new GeoPoint(-73.25, 45.3), T0);
        Assert.Equal(m.Blocking.FileKeys(p), Matcher(withTime: true).Blocking.FileKeys(p));
        Assert.InRange(m.Blocking.ProbeKeys(p, ["a"]).Count, 1, (6 * 8 * 2) + 1);
        Assert.Throws<ArgumentException>(() => RecordMatcher.For<Place>("x").Text("n", x => x.Name, 1).Blocking(o => o.TokenPrefixLength = 0).Build());
    }

    private static GeoPoint Destination(GeoPoint p, double meters, double bearing)
    {
        const double R = 6_371_008.8;
        var d = meters / R;
        var lat1 = p.Latitude * Math.PI / 180;
        var lon1 = p.Longitude * Math.PI / 180;
        var lat2 = Math.Asin((Math.Sin(lat1) * Math.Cos(d)) + (Math.Cos(lat1) * Math.Sin(d) * Math.Cos(bearing)));
        var lon2 = lon1 + Math.Atan2(Math.Sin(bearing) * Math.Sin(d) * Math.Cos(lat1), Math.Cos(d) - (Math.Sin(lat1) * Math.Sin(lat2)));
        var lon = ((lon2 * 180 / Math.PI) + 540) % 360 - 180;
        return new GeoPoint(lon, lat2 * 180 / Math.PI);
    }
}
