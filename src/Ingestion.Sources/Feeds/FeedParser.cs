using System.Globalization;
using System.Text;
using System.Xml;
using System.Xml.Linq;

namespace Ingestion.Sources.Feeds;

/// <summary>What the feed parser needs besides the bytes.</summary>
public sealed record FeedParseSettings
{
    /// <summary>The source name, used in error messages.</summary>
    public string SourceName { get; init; } = "feed";

    /// <summary>The feed's address, against which relative links are resolved; <see langword="null"/> leaves them relative.</summary>
    public Uri? BaseUri { get; init; }

    /// <summary>The <c>charset</c> of the response's Content-Type; it wins over the XML declaration (RFC 7303).</summary>
    public string? Charset { get; init; }
}

/// <summary>One outcome of the feed parser: an item, or the reason an item was rejected.</summary>
/// <param name="Item">The parsed item, or <see langword="null"/> when rejected.</param>
/// <param name="Rejected">Why the item was rejected, or <see langword="null"/>.</param>
public sealed record FeedParseResult(FeedItem? Item, RejectedRecord? Rejected);

/// <summary>
/// A streaming parser of RSS 2.0, Atom 1.0 and RDF (RSS 1.0) feeds. DTDs are prohibited and nothing
/// external is ever resolved, so XXE and entity-expansion ("billion laughs") documents fail at their
/// <c>DOCTYPE</c>. Items are read one at a time; an item that cannot be keyed or has an unreadable date
/// becomes a rejected record naming its index, line and field. A document that is not well-formed, or
/// not a feed, throws an <see cref="IngestionException"/> naming the line.
/// </summary>
public static class FeedParser
{
    private static readonly XNamespace Atom = "http://www.w3.org/2005/Atom";
    private static readonly XNamespace Rss1 = "http://purl.org/rss/1.0/";
    private static readonly XNamespace Rdf = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
    private static readonly XNamespace Dc = "http://purl.org/dc/elements/1.1/";
    private static readonly XNamespace DcTerms = "http://purl.org/dc/terms/";
    private static readonly XNamespace ContentNs = "http://purl.org/rss/1.0/modules/content/";
    private static readonly XNamespace XmlNs = XNamespace.Xml;

    /// <summary>Parses a feed from its raw bytes, choosing the encoding from a BOM, the charset, or the XML declaration.</summary>
    /// <param name="stream">The document.</param>
    /// <param name="settings">The source name, base address and charset.</param>
    /// <returns>The items and rejections, in document order, read lazily.</returns>
    public static IEnumerable<FeedParseResult> Parse(Stream stream, FeedParseSettings settings)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(settings);
        return ParseCore(stream, settings);
    }

    /// <summary>Parses a feed from already-decoded text (the XML declaration's encoding is ignored).</summary>
    /// <param name="reader">The document text.</param>
    /// <param name="settings">The source name and base address.</param>
    /// <returns>The items and rejections, in document order, read lazily.</returns>
    public static IEnumerable<FeedParseResult> Parse(TextReader reader, FeedParseSettings settings)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(settings);
        return ParseText(reader, settings);
    }

    /// <summary>The reader settings: no DTD, no resolver, no entity expansion.</summary>
    /// <returns>New settings.</returns>
    internal static XmlReaderSettings SafeSettings() => new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        MaxCharactersFromEntities = 1024,
        IgnoreComments = true,
        IgnoreProcessingInstructions = true,
        IgnoreWhitespace = true,
        CloseInput = false,
    };

    private static IEnumerable<FeedParseResult> ParseCore(Stream stream, FeedParseSettings settings)
    {
        TextReader text;
        try
        {
            (text, _) = XmlTextDecoding.Open(stream, settings.Charset, Describe(settings));
        }
        catch (IngestionException e)
        {
            throw new IngestionException(e.Message, e) { SourceName = settings.SourceName, Field = e.Field, Position = "line 1" };
        }

        using (text)
        {
            foreach (var result in ParseText(text, settings))
            {
                yield return result;
            }
        }
    }

    private static IEnumerable<FeedParseResult> ParseText(TextReader text, FeedParseSettings settings)
    {
        using var reader = CreateReader(text, settings);
        var scanner = new Scanner(reader, settings);
        var index = 0;
        while (scanner.TryNext(out var element, out var line))
        {
            index++;
            yield return Map(element, scanner, settings, index, line);
        }
    }

    private static XmlReader CreateReader(TextReader text, FeedParseSettings settings)
    {
        try
        {
            return XmlReader.Create(text, SafeSettings());
        }
        catch (DecoderFallbackException e)
        {
            throw InvalidBytes(settings, "line 1", e);
        }
    }

    private static IngestionException InvalidBytes(FeedParseSettings settings, string position, Exception e) =>
        new($"{Describe(settings)}: the document has bytes that are invalid in its encoding near {position} (declare the right encoding in the XML prolog or the Content-Type charset).", e)
        {
            SourceName = settings.SourceName,
            Position = position,
            Field = "encoding",
        };

    private static string Describe(FeedParseSettings settings) => $"Source '{settings.SourceName}'";

    private static FeedParseResult Map(XElement element, Scanner feed, FeedParseSettings settings, int index, int line)
    {
        var position = string.Create(CultureInfo.InvariantCulture, $"item {index} (line {line})");
        try
        {
            return feed.Format switch
            {
                FeedFormat.Atom10 => MapAtom(element, feed, settings),
                FeedFormat.Rdf10 => MapRdf(element, feed, settings),
                _ => MapRss(element, feed, settings),
            };
        }
        catch (ItemRejectedException e)
        {
            return new FeedParseResult(null, new RejectedRecord(position, e.Field, $"{Describe(settings)}: {e.Message}", e.RawValue));
        }
    }

    private static FeedParseResult MapRss(XElement item, Scanner feed, FeedParseSettings settings)
    {
        // RSS 2.0 has no namespace, but some feeds put it in one (Userland's http://backend.userland.com/rss2): the root's.
        var rss = feed.RssNamespace;
        var baseUri = BaseOf(item, feed.BaseUri ?? settings.BaseUri);
        var guid = Text(item, rss + "guid");
        var link = Resolve(Text(item, rss + "link"), baseUri);
        var key = guid ?? link ?? throw new ItemRejectedException("guid", "The item has neither a guid nor a link to key it by.", Truncate(item.ToString()));
        var (publishedField, publishedText) = First(item, ("pubDate", rss + "pubDate"), ("dc:date", Dc + "date"));
        var (updatedField, updatedText) = First(item, ("atom:updated", Atom + "updated"), ("dcterms:modified", DcTerms + "modified"));
        var categories = item.Elements(rss + "category").Concat(item.Elements(Dc + "subject"))
            .Select(c => Clean(c.Value)).OfType<string>().ToList();
        var enclosures = new List<FeedEnclosure>();
        foreach (var enclosure in item.Elements(rss + "enclosure"))
        {
            var url = Resolve(Clean((string?)enclosure.Attribute("url")), baseUri)
                ?? throw new ItemRejectedException("enclosure", "An enclosure has no url attribute.", Truncate(enclosure.ToString()));
            enclosures.Add(new FeedEnclosure(url, Clean((string?)enclosure.Attribute("type")), Length((string?)enclosure.Attribute("length"))));
        }

        return new FeedParseResult(
            new FeedItem
            {
                SourceId = key,
                Title = Text(item, rss + "title"),
                Link = link,
                Summary = Text(item, rss + "description"),
                Content = Text(item, ContentNs + "encoded"),
                Author = Text(item, rss + "author") ?? Text(item, Dc + "creator"),
                Published = Date(publishedField, publishedText),
                Updated = Date(updatedField, updatedText),
                CategoryList = categories,
                EnclosureList = enclosures,
                FeedTitle = feed.Title,
                FeedFormat = FeedFormat.Rss20,
            },
            null);
    }

    private static FeedParseResult MapRdf(XElement item, Scanner feed, FeedParseSettings settings)
    {
        var baseUri = BaseOf(item, feed.BaseUri ?? settings.BaseUri);
        var about = Clean((string?)item.Attribute(Rdf + "about"));
        var link = Resolve(Text(item, Rss1 + "link") ?? Text(item, XName.Get("link")), baseUri);
        var key = about ?? link ?? throw new ItemRejectedException("rdf:about", "The item has neither an rdf:about nor a link to key it by.", Truncate(item.ToString()));
        var (publishedField, publishedText) = First(item, ("dc:date", Dc + "date"));
        return new FeedParseResult(
            new FeedItem
            {
                SourceId = key,
                Title = Text(item, Rss1 + "title") ?? Text(item, XName.Get("title")),
                Link = link,
                Summary = Text(item, Rss1 + "description") ?? Text(item, XName.Get("description")),
                Content = Text(item, ContentNs + "encoded"),
                Author = Text(item, Dc + "creator"),
                Published = Date(publishedField, publishedText),
                CategoryList = item.Elements(Dc + "subject").Select(c => Clean(c.Value)).OfType<string>().ToList(),
                FeedTitle = feed.Title,
                FeedFormat = FeedFormat.Rdf10,
            },
            null);
    }

    private static FeedParseResult MapAtom(XElement entry, Scanner feed, FeedParseSettings settings)
    {
        var baseUri = BaseOf(entry, feed.BaseUri ?? settings.BaseUri);
        var id = Text(entry, Atom + "id");
        string? link = null;
        var enclosures = new List<FeedEnclosure>();
        foreach (var l in entry.Elements(Atom + "link"))
        {
            var rel = Clean((string?)l.Attribute("rel")) ?? "alternate";
            var href = Resolve(Clean((string?)l.Attribute("href")), BaseOf(l, baseUri));
            if (rel == "enclosure")
            {
                enclosures.Add(new FeedEnclosure(
                    href ?? throw new ItemRejectedException("link[rel=enclosure]", "An enclosure link has no href attribute.", Truncate(l.ToString())),
                    Clean((string?)l.Attribute("type")),
                    Length((string?)l.Attribute("length"))));
            }
            else if (rel == "alternate" && link is null)
            {
                link = href;
            }
        }

        var key = id ?? link ?? throw new ItemRejectedException("id", "The entry has neither an id nor an alternate link to key it by.", Truncate(entry.ToString()));
        var (publishedField, publishedText) = First(entry, ("published", Atom + "published"));
        var (updatedField, updatedText) = First(entry, ("updated", Atom + "updated"));
        return new FeedParseResult(
            new FeedItem
            {
                SourceId = key,
                Title = AtomText(entry.Element(Atom + "title")),
                Link = link,
                Summary = AtomText(entry.Element(Atom + "summary")),
                Content = AtomText(entry.Element(Atom + "content")),
                Author = Text(entry.Element(Atom + "author"), Atom + "name") ?? feed.Author,
                Published = Date(publishedField, publishedText),
                Updated = Date(updatedField, updatedText),
                CategoryList = entry.Elements(Atom + "category")
                    .Select(c => Clean((string?)c.Attribute("term")) ?? Clean((string?)c.Attribute("label"))).OfType<string>().ToList(),
                EnclosureList = enclosures,
                FeedTitle = feed.Title,
                FeedFormat = FeedFormat.Atom10,
            },
            null);
    }

    private static (string? Field, string? Text) First(XElement parent, params (string Field, XName Name)[] candidates)
    {
        foreach (var (field, name) in candidates)
        {
            if (Text(parent, name) is { } value)
            {
                return (field, value);
            }
        }

        return (null, null);
    }

    private static DateTimeOffset? Date(string? field, string? text)
    {
        if (text is null)
        {
            return null;
        }

        return FeedDates.TryParse(text, out var value)
            ? value
            : throw new ItemRejectedException(field, $"'{Truncate(text)}' is not a date (RFC 822 or RFC 3339 expected).", text);
    }

    private static long? Length(string? text) =>
        long.TryParse(text?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

    private static string? Text(XElement? parent, XName name) => parent?.Element(name) is { } e ? Clean(e.Value) : null;

    private static string? AtomText(XElement? element)
    {
        if (element is null)
        {
            return null;
        }

        if ((string?)element.Attribute("type") == "xhtml")
        {
            var div = element.Elements().FirstOrDefault();
            if (div is null)
            {
                return Clean(element.Value);
            }

            var markup = new StringBuilder();
            foreach (var node in div.Nodes())
            {
                markup.Append(node.ToString(SaveOptions.DisableFormatting));
            }

            return Clean(markup.ToString());
        }

        return Clean(element.Value);
    }

    private static string? Clean(string? value)
    {
        if (value is null)
        {
            return null;
        }

        var trimmed = value.Trim();
        return trimmed.Length == 0 ? null : trimmed;
    }

    private static Uri? BaseOf(XElement element, Uri? inherited)
    {
        var declared = Clean((string?)element.Attribute(XmlNs + "base"));
        if (declared is null)
        {
            return inherited;
        }

        return Uri.TryCreate(inherited, declared, out var combined) && combined.IsAbsoluteUri ? combined
            : Uri.TryCreate(declared, UriKind.Absolute, out var absolute) ? absolute : inherited;
    }

    private static string? Resolve(string? href, Uri? baseUri)
    {
        // "/x" parses as an absolute file URI on Unix: a leading slash is always relative here.
        if (href is null || baseUri is null || !baseUri.IsAbsoluteUri || (!href.StartsWith('/') && Uri.TryCreate(href, UriKind.Absolute, out _)))
        {
            return href;
        }

        return Uri.TryCreate(baseUri, href, out var resolved) ? resolved.ToString() : href;
    }

    private static string Truncate(string value) => value.Length <= 200 ? value : value[..200] + "...";

    private sealed class ItemRejectedException(string? field, string message, string? rawValue) : Exception(message)
    {
        public string? Field { get; } = field;

        public string? RawValue { get; } = rawValue;
    }

    /// <summary>Walks the document, capturing feed-level metadata and handing out one item element at a time.</summary>
    private sealed class Scanner(XmlReader reader, FeedParseSettings settings)
    {
        private bool _started;
        private int _itemDepth;
        private int _titleDepth;
        private string _itemName = "item";

        public FeedFormat Format { get; private set; }

        public string? Title { get; private set; }

        public string? Author { get; private set; }

        public Uri? BaseUri { get; private set; }

        /// <summary>The namespace of an RSS 2.0 root, which its elements share (none, usually).</summary>
        public XNamespace RssNamespace { get; private set; } = XNamespace.None;

        public bool TryNext(out XElement element, out int line)
        {
            try
            {
                return TryNextCore(out element, out line);
            }
            catch (XmlException e)
            {
                var dtd = e.Message.Contains("DTD", StringComparison.Ordinal);
                var position = e.LineNumber > 0 ? string.Create(CultureInfo.InvariantCulture, $"line {e.LineNumber}, column {e.LinePosition}")
                    : dtd ? "the DOCTYPE declaration" : Position();
                var reason = dtd
                    ? "the document has a DTD (DOCTYPE), which is prohibited: DTDs enable XXE and entity-expansion attacks and are never processed"
                    : $"the document is not well-formed XML ({e.Message})";
                throw new IngestionException($"{Describe(settings)}: {reason} at {position}.", e)
                {
                    SourceName = settings.SourceName,
                    Position = position,
                };
            }
            catch (DecoderFallbackException e)
            {
                throw InvalidBytes(settings, Position(), e);
            }
        }

        private string Position() => reader is IXmlLineInfo info && info.HasLineInfo()
            ? string.Create(CultureInfo.InvariantCulture, $"line {info.LineNumber}")
            : "the start";

        private bool TryNextCore(out XElement element, out int line)
        {
            element = null!;
            line = 0;
            if (!_started)
            {
                _started = true;
                Start();
            }

            while (!reader.EOF)
            {
                if (reader.NodeType != XmlNodeType.Element)
                {
                    reader.Read();
                    continue;
                }

                if (reader.Depth == _itemDepth && reader.LocalName == _itemName)
                {
                    line = reader is IXmlLineInfo info ? info.LineNumber : 0;
                    element = (XElement)XNode.ReadFrom(reader);
                    return true;
                }

                if (reader.Depth == _titleDepth && Title is null && reader.LocalName == "title")
                {
                    Title = Clean(((XElement)XNode.ReadFrom(reader)).Value);
                    continue;
                }

                if (Format == FeedFormat.Atom10 && reader.Depth == 1 && Author is null && reader.LocalName == "author" && reader.NamespaceURI == Atom.NamespaceName)
                {
                    Author = Text((XElement)XNode.ReadFrom(reader), Atom + "name");
                    continue;
                }

                if (reader.Depth > Math.Max(_itemDepth, _titleDepth))
                {
                    reader.Skip();
                    continue;
                }

                reader.Read();
            }

            return false;
        }

        private void Start()
        {
            reader.MoveToContent();
            if (reader.NodeType != XmlNodeType.Element)
            {
                throw new IngestionException($"{Describe(settings)}: the document has no root element; it is not a feed.") { SourceName = settings.SourceName, Position = Position() };
            }

            var root = reader.LocalName;
            var ns = reader.NamespaceURI;
            if (root == "rss")
            {
                Format = FeedFormat.Rss20;
                RssNamespace = XNamespace.Get(ns);
                _itemDepth = 2;
            }
            else if (root == "feed" && ns == Atom.NamespaceName)
            {
                Format = FeedFormat.Atom10;
                _itemDepth = 1;
                _itemName = "entry";
            }
            else if (root == "RDF" && ns == Rdf.NamespaceName)
            {
                Format = FeedFormat.Rdf10;
                _itemDepth = 1;
                _titleDepth = 2;
            }
            else
            {
                throw new IngestionException($"{Describe(settings)}: the root element is <{reader.Name}>{(ns.Length > 0 ? $" in namespace '{ns}'" : string.Empty)}, not an RSS 2.0 <rss>, Atom 1.0 <feed> or RDF <rdf:RDF> feed.")
                {
                    SourceName = settings.SourceName,
                    Position = Position(),
                    Field = "root",
                };
            }

            if (reader.GetAttribute("base", XmlNs.NamespaceName) is { } declaredBase)
            {
                BaseUri = Uri.TryCreate(settings.BaseUri, declaredBase, out var combined) && combined.IsAbsoluteUri ? combined
                    : Uri.TryCreate(declaredBase, UriKind.Absolute, out var absolute) ? absolute : null;
            }

            if (_titleDepth == 0)
            {
                _titleDepth = _itemDepth;
            }

            reader.Read();
        }
    }
}
