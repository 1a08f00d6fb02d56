using System.Text;

namespace Ingestion.Sources.Feeds;

/// <summary>
/// Tells a fetched document that is not a feed at all (an HTML page, a JSON error, plain text) from a feed, by its
/// first bytes and media type, so the error says what was received rather than what the XML reader tripped on (an
/// HTML page's <c>&lt;!DOCTYPE html&gt;</c> would otherwise be refused as a DTD). A feed that carries a DTD still
/// reaches the parser and its refusal.
/// </summary>
internal static class FeedSniffing
{
    private const int Shown = 80;

    /// <summary>What the document is when it is not a feed (<c>text/html</c>, <c>an HTML page</c>...), or <see langword="null"/>.</summary>
    /// <param name="start">The first bytes of the document.</param>
    /// <param name="mediaType">The media type the server sent, if any.</param>
    public static string? NotAFeed(ReadOnlySpan<byte> start, string? mediaType)
    {
        var text = Start(start);
        var html = string.Equals(mediaType, "text/html", StringComparison.OrdinalIgnoreCase);
        if (text.StartsWith("<!doctype html", StringComparison.OrdinalIgnoreCase) || text.StartsWith("<html", StringComparison.OrdinalIgnoreCase))
        {
            return html ? mediaType : mediaType is null ? "an HTML page" : $"an HTML page sent as {mediaType}";
        }

        if (!text.StartsWith('<'))
        {
            return mediaType ?? "a document that is not XML";
        }

        var xmlOrFeed = text.StartsWith("<?xml", StringComparison.Ordinal) || text.StartsWith("<rss", StringComparison.Ordinal)
            || text.StartsWith("<feed", StringComparison.Ordinal) || text.StartsWith("<rdf:RDF", StringComparison.Ordinal)
            || text.StartsWith("<!--", StringComparison.Ordinal) || text.StartsWith("<!DOCTYPE", StringComparison.Ordinal);
        return html && !xmlOrFeed ? mediaType : null;
    }

    /// <summary>The first characters of the document, on one line, for the message.</summary>
    public static string FirstBytes(ReadOnlySpan<byte> start)
    {
        var text = Start(start);
        var one = string.Join(' ', text.Split((char[])['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries));
        return one.Length <= Shown ? one : one[..Shown] + "...";
    }

    private static string Start(ReadOnlySpan<byte> start)
    {
        var bytes = start[..Math.Min(start.Length, 4 * Shown)];
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            bytes = bytes[3..];
        }

        return Encoding.UTF8.GetString(bytes).TrimStart();
    }
}
