using System.Text;
using Ingestion.Sources.Feeds;

namespace Ingestion.Sources.Tests.Feeds;

public class FeedParserTests
{
    private static List<FeedParseResult> ParseFile(string name, string? charset = null, Uri? baseUri = null)
    {
        using var stream = File.OpenRead(FeedFixtures.Feed(name));
        return FeedParser.Parse(stream, new FeedParseSettings { SourceName = "news", Charset = charset, BaseUri = baseUri }).ToList();
    }

    [Fact]
    public void Rss2_items_are_keyed_dated_categorised_and_bad_items_rejected_with_position_and_field()
    {
        var results = ParseFile("rss2.xml", baseUri: new Uri("https://example.org/feed.xml"));
        Assert.Equal(5, results.Count);

        var first = results[0].Item!;
        Assert.Equal("qccq-2026-101", first.SourceId);
        Assert.Equal("Décision 2026 QCCQ 101", first.Title);
        Assert.Equal("https://example.org/d/101", first.Link);
        Assert.Equal("<p>Speeding, 32 km/h over</p>", first.Summary);
        Assert.Equal("<p>Full text</p>", first.Content);
        Assert.Equal("greffe@example.org (Greffe)", first.Author);
        Assert.Equal(new DateTimeOffset(2026, 3, 10, 14, 30, 0, TimeSpan.Zero), first.Published);
        Assert.Equal(["Traffic", "Speeding"], first.CategoryList);
        Assert.Equal("[\"Traffic\",\"Speeding\"]", first.Categories);
        Assert.Equal(new FeedEnclosure("https://example.org/d/101.pdf", "application/pdf", 123456), Assert.Single(first.EnclosureList));
        Assert.Equal("[{\"url\":\"https://example.org/d/101.pdf\",\"type\":\"application/pdf\",\"length\":123456}]", first.Enclosures);
        Assert.Equal("Jurisprudence récente", first.FeedTitle);
        Assert.Equal("rss2", first.Format);

        var second = results[1].Item!;
        Assert.Equal("https://example.org/d/102", second.SourceId);
        Assert.Equal("https://example.org/d/102", second.Link);
        Assert.Equal("Jane Doe", second.Author);
        Assert.Equal(new DateTimeOffset(2026, 3, 11, 13, 0, 0, TimeSpan.Zero), second.Published);
        Assert.Equal("[]", second.Categories);

        var noKey = results[2].Rejected!;
        Assert.Null(results[2].Item);
        Assert.Equal("item 3 (line 26)", noKey.Position);
        Assert.Equal("guid", noKey.Field);
        Assert.Contains("neither a guid nor a link", noKey.Reason, StringComparison.Ordinal);
        Assert.Contains("Source 'news'", noKey.Reason, StringComparison.Ordinal);

        var badDate = results[3].Rejected!;
        Assert.Equal("item 4 (line 30)", badDate.Position);
        Assert.Equal("pubDate", badDate.Field);
        Assert.Equal("the day after tomorrow", badDate.RawValue);

        var fifth = results[4].Item!;
        Assert.Equal(new DateTimeOffset(2026, 3, 12, 12, 15, 0, TimeSpan.Zero), fifth.Published);
        Assert.Equal(new FeedEnclosure("https://example.org/media/105.mp3", "audio/mpeg", null), Assert.Single(fifth.EnclosureList));
    }

    [Fact]
    public void Atom_entries_use_id_then_alternate_link_resolved_against_xml_base()
    {
        var results = ParseFile("atom.xml");
        Assert.Equal(2, results.Count);
        var entry = results[0].Item!;
        Assert.Equal("urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a", entry.SourceId);
        Assert.Equal("https://atom.example.org/blog/posts/1", entry.Link);
        Assert.Equal("New <b>collision</b> data", entry.Title);
        Assert.Equal("Collisions for 2025", entry.Summary);
        Assert.Contains("<em", entry.Content, StringComparison.Ordinal);
        Assert.Contains("218K rows", entry.Content, StringComparison.Ordinal);
        Assert.Equal("Data Team", entry.Author);
        Assert.Equal(new DateTimeOffset(2026, 3, 13, 15, 0, 0, TimeSpan.Zero), entry.Published);
        Assert.Equal(new DateTimeOffset(2026, 3, 13, 18, 30, 2, 250, TimeSpan.Zero), entry.Updated);
        Assert.Equal(["collisions", "montreal"], entry.CategoryList);
        Assert.Equal(new FeedEnclosure("https://atom.example.org/files/collisions.csv", "text/csv", 2048), Assert.Single(entry.EnclosureList));
        Assert.Equal("Open data news", entry.FeedTitle);
        Assert.Equal("atom1", entry.Format);

        var second = results[1].Item!;
        Assert.Equal("https://atom.example.org/blog/posts/2", second.SourceId);
        Assert.Equal("Feed Author", second.Author);
        Assert.Null(second.Published);
    }

    [Fact]
    public void Rdf_items_use_rdf_about_then_link()
    {
        var results = ParseFile("rdf.xml");
        Assert.Equal(["https://rdf.example.org/a", "https://rdf.example.org/b"], results.Select(r => r.Item!.SourceId));
        Assert.Equal("RDF channel", results[0].Item!.FeedTitle);
        Assert.Equal(["alpha"], results[0].Item!.CategoryList);
        Assert.Equal(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero), results[0].Item!.Published);
        Assert.Equal("rdf1", results[1].Item!.Format);
    }

    [Fact]
    public void Iso_8859_1_declared_in_the_prolog_is_decoded()
    {
        var item = Assert.Single(ParseFile("latin1.xml")).Item!;
        Assert.Equal("Été à Montréal", item.Title);
        Assert.Equal("Café Québec", item.FeedTitle);
    }

    [Fact]
    public void Content_type_charset_wins_over_the_default_utf8()
    {
        var item = Assert.Single(ParseFile("latin1-undeclared.xml", charset: "ISO-8859-1")).Item!;
        Assert.Equal("Français", item.Title);
    }

    [Fact]
    public void Legacy_code_pages_such_as_windows_1252_are_decoded()
    {
        var item = Assert.Single(ParseFile("cp1252.xml")).Item!;
        Assert.Equal("\u201Cquoted\u201D \u20AC price", item.Title);
    }

    [Fact]
    public void Bytes_invalid_in_the_encoding_fail_clearly_instead_of_being_replaced()
    {
        var e = Assert.Throws<IngestionException>(() => ParseFile("latin1-undeclared.xml"));
        Assert.Equal("encoding", e.Field);
        Assert.Contains("invalid in its encoding", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_charset_is_named()
    {
        var e = Assert.Throws<IngestionException>(() => ParseFile("rss2.xml", charset: "klingon-8"));
        Assert.Contains("'klingon-8'", e.Message, StringComparison.Ordinal);
        Assert.Contains("Content-Type charset", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Malformed_xml_yields_the_items_before_it_then_fails_naming_the_line()
    {
        using var stream = File.OpenRead(FeedFixtures.Feed("malformed.xml"));
        var items = new List<FeedParseResult>();
        var e = Assert.Throws<IngestionException>(() =>
        {
            foreach (var r in FeedParser.Parse(stream, new FeedParseSettings { SourceName = "news" }))
            {
                items.Add(r);
            }
        });
        Assert.Equal("m1", Assert.Single(items).Item!.SourceId);
        Assert.Equal("news", e.SourceName);
        Assert.StartsWith("line 4", e.Position, StringComparison.Ordinal);
        Assert.Contains("not well-formed", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_document_that_is_not_a_feed_is_refused_naming_its_root()
    {
        var e = Assert.Throws<IngestionException>(() => ParseFile("not-a-feed.html"));
        Assert.Contains("<html>", e.Message, StringComparison.Ordinal);
        Assert.Equal("root", e.Field);
    }

    [Fact]
    public void Billion_laughs_is_refused_at_the_doctype_without_expansion()
    {
        var e = Assert.Throws<IngestionException>(() => ParseFile("billion-laughs.xml"));
        Assert.Contains("DTD", e.Message, StringComparison.Ordinal);
        Assert.Equal("the DOCTYPE declaration", e.Position);
    }

    [Fact]
    public void Xxe_is_refused_and_the_local_file_never_read()
    {
        var xml = File.ReadAllText(FeedFixtures.Feed("xxe.xml")).Replace("{{SECRET_URL}}", "http://127.0.0.1:9/secret", StringComparison.Ordinal);
        var e = Assert.Throws<IngestionException>(() => FeedParser.Parse(new StringReader(xml), new FeedParseSettings()).ToList());
        Assert.Contains("DTD", e.Message, StringComparison.Ordinal);
        Assert.Contains("prohibited", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_document_fails_clearly()
    {
        var e = Assert.Throws<IngestionException>(() => FeedParser.Parse(new MemoryStream(), new FeedParseSettings { SourceName = "news" }).ToList());
        Assert.Equal("news", e.SourceName);
    }

    [Fact]
    public void A_truncated_document_fails_after_the_complete_items()
    {
        var bytes = FeedFixtures.Bytes(FeedFixtures.Feed("rss2.xml"));
        var text = Encoding.UTF8.GetString(bytes);
        var half = text[..(text.IndexOf("</item>", StringComparison.Ordinal) + 40)];
        var seen = 0;
        var e = Assert.Throws<IngestionException>(() =>
        {
            foreach (var _ in FeedParser.Parse(new StringReader(half), new FeedParseSettings()))
            {
                seen++;
            }
        });
        Assert.True(seen >= 1);
        Assert.Contains("not well-formed", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_enclosure_without_url_rejects_its_item()
    {
        const string xml = "<rss><channel><item><guid>e1</guid><enclosure type=\"audio/mpeg\"/></item></channel></rss>";
        var result = Assert.Single(FeedParser.Parse(new StringReader(xml), new FeedParseSettings()));
        Assert.Equal("enclosure", result.Rejected!.Field);
        Assert.Equal("item 1 (line 1)", result.Rejected.Position);
    }

    [Theory]
    [InlineData("Sat, 07 Sep 2002 00:00:01 GMT", "2002-09-07T00:00:01Z")]
    [InlineData("Sat, 7 Sep 2002 09:42 EDT", "2002-09-07T13:42:00Z")]
    [InlineData("07 September 2002 00:00:01 +0200", "2002-09-06T22:00:01Z")]
    [InlineData("Tue, 10 Mar 2026 09:30:00 -05:00", "2026-03-10T14:30:00Z")]
    [InlineData("Wed, 02 Oct 02 08:00:00 PST", "2002-10-02T16:00:00Z")]
    [InlineData("Wed, 02 Oct 2002 08:00:00 +0000 (UTC)", "2002-10-02T08:00:00Z")]
    [InlineData("Oct 02 2002 08:00:00", "2002-10-02T08:00:00Z")]
    [InlineData("2002-10-02T10:00:00-05:00", "2002-10-02T15:00:00Z")]
    [InlineData("2002-10-02T15:00:00.05Z", "2002-10-02T15:00:00.05Z")]
    [InlineData("2002-10-02 15:00:00z", "2002-10-02T15:00:00Z")]
    [InlineData("2002-10-02", "2002-10-02T00:00:00Z")]
    [InlineData("2002-10-02t15:00:00+00:00", "2002-10-02T15:00:00Z")]
    public void Dates_are_read_leniently(string text, string expected)
    {
        Assert.True(FeedDates.TryParse(text, out var value));
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("yesterday")]
    [InlineData("31 Feb 2026 10:00 GMT")]
    [InlineData("Tue, 10 Mar 2026 25:30:00 GMT")]
    [InlineData("Tue, 10 Mar 2026 09:30:00 XYZ")]
    [InlineData("Tue, 10 Foo 2026 09:30:00 GMT")]
    [InlineData("2026-13-40T00:00:00Z")]
    public void Non_dates_are_refused(string text) => Assert.False(FeedDates.TryParse(text, out _));
}
