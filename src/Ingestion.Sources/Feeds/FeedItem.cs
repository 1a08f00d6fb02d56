namespace Ingestion.Sources.Feeds;

/// <summary>The syndication format a feed item came from.</summary>
public enum FeedFormat
{
    /// <summary>RSS 2.0 (<c>&lt;rss&gt;&lt;channel&gt;&lt;item&gt;</c>).</summary>
    Rss20,
    /// <summary>Atom 1.0 (<c>&lt;feed&gt;&lt;entry&gt;</c>).</summary>
    Atom10,
    /// <summary>RSS 1.0 / RDF Site Summary (<c>&lt;rdf:RDF&gt;&lt;item&gt;</c>).</summary>
    Rdf10,
}

/// <summary>A media file attached to a feed item (RSS <c>enclosure</c>, Atom <c>link rel="enclosure"</c>).</summary>
/// <param name="Url">The absolute URL of the file.</param>
/// <param name="MediaType">The declared media type, when given.</param>
/// <param name="Length">The declared length in bytes, when given and numeric.</param>
public sealed record FeedEnclosure(string Url, string? MediaType, long? Length);

/// <summary>
/// One item of an RSS 2.0, Atom 1.0 or RDF feed. Keyed by <c>(source, source_id)</c>, where
/// <see cref="SourceId"/> is the item's <c>guid</c> / <c>id</c> / <c>rdf:about</c>, or its link when it has none.
/// </summary>
public sealed class FeedItem
{
    /// <summary>The item's stable identity: <c>guid</c> (RSS), <c>id</c> (Atom), <c>rdf:about</c> (RDF), else its link.</summary>
    public required string SourceId { get; init; }

    /// <summary>The item's title, as plain text when it was plain text, else the markup as given.</summary>
    public string? Title { get; init; }

    /// <summary>The item's link (absolute when the feed address or <c>xml:base</c> allowed resolving it).</summary>
    public string? Link { get; init; }

    /// <summary>The short description: RSS <c>description</c>, Atom <c>summary</c>.</summary>
    public string? Summary { get; init; }

    /// <summary>The full content: RSS <c>content:encoded</c>, Atom <c>content</c>.</summary>
    public string? Content { get; init; }

    /// <summary>The author: RSS <c>author</c> or <c>dc:creator</c>, Atom <c>author/name</c>.</summary>
    public string? Author { get; init; }

    /// <summary>When the item was published: RSS <c>pubDate</c> or <c>dc:date</c>, Atom <c>published</c>.</summary>
    public DateTimeOffset? Published { get; init; }

    /// <summary>When the item was last updated: Atom <c>updated</c>, RSS <c>atom:updated</c>/<c>dc:modified</c>.</summary>
    public DateTimeOffset? Updated { get; init; }

    /// <summary>The category names, in document order (not stored as a column: see <see cref="Categories"/>).</summary>
    [IgnoreColumn]
    public IReadOnlyList<string> CategoryList { get; init; } = [];

    /// <summary>The attached media files (not stored as a column: see <see cref="Enclosures"/>).</summary>
    [IgnoreColumn]
    public IReadOnlyList<FeedEnclosure> EnclosureList { get; init; } = [];

    /// <summary>The categories as a JSON array of strings (stored as <c>jsonb</c>).</summary>
    [Column(Json = true)]
    public string Categories => FeedJson.Strings(CategoryList);

    /// <summary>The enclosures as a JSON array of <c>{url, type, length}</c> objects (stored as <c>jsonb</c>).</summary>
    [Column(Json = true)]
    public string Enclosures => FeedJson.Enclosures(EnclosureList);

    /// <summary>The title of the feed (channel) the item came from.</summary>
    public string? FeedTitle { get; init; }

    /// <summary>The feed's format, as text: <c>rss2</c>, <c>atom1</c> or <c>rdf1</c>.</summary>
    public string Format => FormatOf(FeedFormat);

    /// <summary>The feed's format.</summary>
    [IgnoreColumn]
    public FeedFormat FeedFormat { get; init; }

    private static string FormatOf(FeedFormat format) => format switch
    {
        FeedFormat.Atom10 => "atom1",
        FeedFormat.Rdf10 => "rdf1",
        _ => "rss2",
    };
}
