using Ingestion.Dedup;

namespace Ingestion.Core.Tests.Dedup;

public sealed class Ev
{
    public string SourceId { get; set; } = "";

    public string? Title { get; set; }

    public DateTimeOffset? StartsAt { get; set; }

    public string? Place { get; set; }

    public GeoPoint? Location { get; set; }

    public string? Url { get; set; }
}

public class RecordMatcherTests
{
    private static readonly DateTimeOffset T0 = new(2026, 6, 26, 19, 0, 0, TimeSpan.FromHours(-4));

    internal static RecordMatcher<Ev> Matcher() => RecordMatcher.For<Ev>("events")
        .Text("title", e => e.Title, weight: 0.6, required: true, minSimilarity: 0.3)
        .DateTime("starts_at", e => e.StartsAt, TimeSpan.FromHours(2), weight: 0.25, required: true)
        .Text("place", e => e.Place, weight: 0.15)
        .Geo("location", e => e.Location, maxDistanceMeters: 500, weight: 0.1)
        .Carry("url", e => e.Url)
        .Thresholds(link: 0.8, review: 0.6)
        .Build();

    private static MatchProfile P(RecordMatcher<Ev> m, string source, string id, string? title, DateTimeOffset? at, string? place = null, GeoPoint? geo = null, string? url = null) =>
        m.Profile(source, id, new Ev { SourceId = id, Title = title, StartsAt = at, Place = place, Location = geo, Url = url });

    [Fact]
    public void Same_event_from_two_sources_links_with_an_explanation()
    {
        var m = Matcher();
        var a = P(m, "eventbrite", "e1", "Festival International de Jazz de Montréal", T0, "Place des Arts", new GeoPoint(-73.5668, 45.5081));
        var b = P(m, "mtl-opendata", "42", "FESTIVAL INTERNATIONAL DE JAZZ DE MONTREAL - 2026", T0.AddMinutes(30), "Place-des-Arts", new GeoPoint(-73.5670, 45.5085));
        var score = m.Score(a, b);
        Assert.Equal(MatchDecision.Link, score.Decision);
        Assert.InRange(score.Total, 0.8, 1.0);
        var title = score.Fields.Single(f => f.Field == "title");
        Assert.Equal(FieldMatchStatus.Partial, title.Status);
        Assert.Equal(FieldMatchStatus.Matched, score.Fields.Single(f => f.Field == "place").Status);
        Assert.Contains("30 min apart, tolerance 2 h", score.Fields.Single(f => f.Field == "starts_at").Detail);
        Assert.Contains("m apart", score.Fields.Single(f => f.Field == "location").Detail);
        Assert.DoesNotContain(score.Fields, f => f.Field == "url");
        Assert.StartsWith("link 0.", score.Explain());
        Assert.Equal(score.Total, m.Score(b, a).Total, 9);
    }

    [Fact]
    public void Accent_and_hyphen_variants_of_a_place_match_exactly()
    {
        var m = Matcher();
        var a = P(m, "a", "1", "Les Belles-Sœurs", T0, "Théâtre du Nouveau Monde");
        var b = P(m, "b", "1", "Les Belles Soeurs", T0, "Theatre du Nouveau-Monde");
        var score = m.Score(a, b);
        Assert.Equal(1.0, score.Total, 9);
        Assert.All(score.Fields.Where(f => f.Status != FieldMatchStatus.Missing), f => Assert.Equal(FieldMatchStatus.Matched, f.Status));
        Assert.Equal(FieldMatchStatus.Missing, score.Fields.Single(f => f.Field == "location").Status);
    }

    [Fact]
    public void A_time_beyond_the_tolerance_vetoes_the_pair_even_with_the_same_title()
    {
        var m = Matcher();
        var a = P(m, "a", "1", "Festival International de Jazz de Montréal", T0);
        var b = P(m, "b", "1", "Festival International de Jazz de Montréal", T0.AddYears(-1));
        var score = m.Score(a, b);
        Assert.Equal(MatchDecision.None, score.Decision);
        Assert.True(score.Vetoed);
        Assert.Equal(0, score.Total);
        Assert.Equal(FieldMatchStatus.Vetoed, score.Fields.Single(f => f.Field == "starts_at").Status);
    }

    [Fact]
    public void Different_titles_at_the_same_time_do_not_match()
    {
        var m = Matcher();
        var a = P(m, "a", "1", "Les Grands Ballets: Casse-Noisette", T0, "Place des Arts");
        var b = P(m, "b", "1", "Orchestre symphonique: Mahler 5", T0, "Maison symphonique");
        var score = m.Score(a, b);
        Assert.Equal(MatchDecision.None, score.Decision);
        Assert.Equal(FieldMatchStatus.Vetoed, score.Fields.Single(f => f.Field == "title").Status);
    }

    [Fact]
    public void Middling_scores_are_left_for_review()
    {
        var m = Matcher();
        var a = P(m, "a", "1", "Nuit blanche à Montréal", T0, "Quartier des spectacles");
        var b = P(m, "b", "1", "Nuit blanche Montréal édition spéciale", T0.AddMinutes(90), "Quartier des Spectacles");
        var score = m.Score(a, b);
        Assert.True(score.Decision == MatchDecision.Review, score.Explain());
        Assert.InRange(score.Total, 0.6, 0.8);
    }

    [Fact]
    public void Titles_that_normalize_to_empty_make_a_record_unmatchable()
    {
        var m = Matcher();
        var empty = P(m, "a", "1", " -- !! -- ", T0);
        var none = P(m, "a", "2", null, T0);
        var noTime = P(m, "a", "3", "Jazz", null);
        Assert.Contains("'title' normalizes to nothing", m.Unmatchable(empty));
        Assert.Contains("'title' is empty", m.Unmatchable(none));
        Assert.Contains("'starts_at' is empty", m.Unmatchable(noTime));
        Assert.Null(m.Unmatchable(P(m, "a", "4", "Jazz", T0)));
        var index = new CandidateIndex(m);
        Assert.False(index.Add(empty));
        Assert.Empty(index.Candidates(empty));
        Assert.Equal(MatchDecision.None, m.Score(empty, P(m, "b", "1", " -- !! -- ", T0)).Decision);
    }

    [Fact]
    public void Profiles_round_trip_through_their_encoding()
    {
        var m = Matcher();
        var a = P(m, "a", "1", "Théâtre", T0, "Rue Saint-Denis", new GeoPoint(-73.5, 45.5), "https://x/1");
        var encoded = m.Encode(a);
        var back = m.Decode("a", "1", encoded);
        Assert.Equal(a.Values, back.Values);
        Assert.Equal(1.0, m.Score(a, back).Total, 9);
        Assert.Contains("'starts_at'", Assert.Throws<FormatException>(() => m.Decode("a", "1", ["x", "yesterday", null, null, null])).Message);
    }

    [Fact]
    public void Wrong_value_types_and_bad_declarations_are_named()
    {
        var m = Matcher();
        var e = Assert.Throws<ArgumentException>(() => m.Profile("a", "1", new object?[] { 42, T0, null, null, null }));
        Assert.Contains("field 'title' of a:1", e.Message);
        var bad = Assert.Throws<ArgumentException>(() => RecordMatcher.For<Ev>("bad type!")
            .Text("title", x => x.Title, weight: 0)
            .Text("title", x => x.Place, weight: 1)
            .DateTime("t", x => x.StartsAt, TimeSpan.FromHours(-1), 1)
            .Thresholds(0.5, 0.7)
            .Build());
        Assert.Contains("record type 'bad type!'", bad.Message);
        Assert.Contains("'title' is declared twice", bad.Message);
        Assert.Contains("weight must be positive", bad.Message);
        Assert.Contains("tolerance must not be negative", bad.Message);
        Assert.Contains("review threshold", bad.Message);
        Assert.Contains("no Text field", Assert.Throws<ArgumentException>(() => RecordMatcher.For<Ev>("x").DateTime("t", x => x.StartsAt, TimeSpan.Zero, 1).Build()).Message);
    }

    [Fact]
    public void The_candidate_index_compares_only_records_sharing_a_block()
    {
        var m = Matcher();
        var index = new CandidateIndex(m);
        var rng = new Random(7);
        var words = new[] { "jazz", "blues", "rock", "opera", "ballet", "cirque", "theatre", "cinema", "danse", "poesie", "slam", "expo" };
        for (var i = 0; i < 3000; i++)
        {
            var title = $"{words[rng.Next(words.Length)]} {words[rng.Next(words.Length)]} soirée {i}";
            Assert.True(index.Add(P(m, "existing", $"x{i}", title, T0.AddHours(rng.Next(24 * 365)))));
        }

        var target = P(m, "existing", "target", "Festival International de Jazz de Montréal", T0);
        index.Add(target);
        var incoming = P(m, "ics", "u1", "FESTIVAL INTERNATIONAL DE JAZZ DE MONTREAL - 2026", T0.AddMinutes(15));
        var candidates = index.Candidates(incoming);
        Assert.Contains(target, candidates);
        Assert.True(candidates.Count < 100, $"blocking should keep candidates few, got {candidates.Count}");
        var matches = index.Match(incoming);
        Assert.Same(target, matches[0].Candidate);
        Assert.Equal(MatchDecision.Link, matches[0].Score.Decision);
        Assert.DoesNotContain(index.Candidates(P(m, "existing", "same-source", "Festival International de Jazz de Montréal", T0)), c => c.Source == "existing");
    }

    [Fact]
    public void Merge_takes_each_field_from_the_first_source_in_precedence_and_reports_conflicts()
    {
        var m = Matcher();
        var eb = P(m, "eventbrite", "e1", "Jazz Fest", T0, null, null, "https://eventbrite/e1");
        var od = P(m, "opendata", "42", "Festival de jazz", T0.AddMinutes(30), "Place des Arts", new GeoPoint(-73.56, 45.5), null);
        var ics = P(m, "ics", "u1", "JAZZ FEST", T0, "Place-des-Arts", null, "https://ics/u1");
        var merged = MergeResolver.Merge(m, [eb, od, ics], ["opendata", "eventbrite"]);
        Assert.Equal("Festival de jazz", merged.Values[0]);
        Assert.Equal(T0.AddMinutes(30), merged.Values[1]);
        Assert.Equal("Place des Arts", merged.Values[2]);
        Assert.Equal("https://eventbrite/e1", merged.Values[4]);
        Assert.Equal("eventbrite:e1", merged.FieldSources[4]);
        var titleConflict = Assert.Single(merged.Conflicts, c => c.Field == "title");
        Assert.Equal("opendata", titleConflict.WinningSource);
        Assert.Equal(["opendata:42", "eventbrite:e1", "ics:u1"], titleConflict.Values.Select(v => v.Key));
        Assert.Contains(merged.Conflicts, c => c.Field == "starts_at");
        Assert.Contains(merged.Conflicts, c => c.Field == "url");
        Assert.DoesNotContain(merged.Conflicts, c => c.Field == "place");
        Assert.Throws<ArgumentException>(() => DedupPolicy.Merge("a", "a"));
        Assert.Equal("merge (opendata > eventbrite)", DedupPolicy.Merge("opendata", "eventbrite").ToString());
    }
}
