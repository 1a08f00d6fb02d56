using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Ingestion.Sources.Http;

/// <summary>
/// A successful (or 304) response of a <see cref="SourceHttpClient"/>: headers at hand, the body as a
/// stream that is decompressed, size-capped, idle-timed-out and never buffered whole. Dispose it.
/// </summary>
public sealed class SourceHttpResponse : IAsyncDisposable, IDisposable
{
    private readonly HttpResponseMessage _message;
    private readonly Func<HttpResponseMessage, Stream, GuardedStream> _openBody;
    private GuardedStream? _body;

    internal SourceHttpResponse(HttpResponseMessage message, Uri url, string redactedUrl, string sourceName, HttpRedactor redactor, Func<HttpResponseMessage, Stream, GuardedStream> openBody)
    {
        _message = message;
        _openBody = openBody;
        Url = url;
        RedactedUrl = redactedUrl;
        SourceName = sourceName;
        Redactor = redactor;
    }

    /// <summary>The source that sent the request.</summary>
    public string SourceName { get; }

    /// <summary>The URL requested (may hold secrets: never log it; use <see cref="RedactedUrl"/>).</summary>
    public Uri Url { get; }

    /// <summary>The URL with secrets masked, for messages.</summary>
    public string RedactedUrl { get; }

    /// <summary>The redactor of the source.</summary>
    public HttpRedactor Redactor { get; }

    /// <summary>The status code.</summary>
    public HttpStatusCode StatusCode => _message.StatusCode;

    /// <summary>The response headers.</summary>
    public HttpResponseHeaders Headers => _message.Headers;

    /// <summary>The content headers.</summary>
    public HttpContentHeaders ContentHeaders => _message.Content.Headers;

    /// <summary>The media type (<c>application/json</c>), or <see langword="null"/> when the server sent none.</summary>
    public string? MediaType => _message.Content.Headers.ContentType?.MediaType;

    /// <summary>The charset named by the server, or <see langword="null"/>.</summary>
    public string? CharSet => _message.Content.Headers.ContentType?.CharSet?.Trim('"');

    /// <summary>The encoding named by the server's charset (code pages included), or <see langword="null"/> when none or unknown.</summary>
    public Encoding? Encoding => TextEncodings.Find(CharSet);

    /// <summary>The <c>ETag</c> header, or <see langword="null"/>.</summary>
    public string? ETag => _message.Headers.ETag?.ToString();

    /// <summary>The <c>Last-Modified</c> header, or <see langword="null"/>.</summary>
    public DateTimeOffset? LastModified => _message.Content.Headers.LastModified;

    /// <summary>The URL of the <c>Link: &lt;...&gt;; rel="next"</c> header, resolved against the request URL, or <see langword="null"/>.</summary>
    public Uri? NextLink => LinkHeader.FindNext(_message.Headers, Url);

    /// <summary>Bytes of body read so far (decompressed).</summary>
    public long BytesRead => _body?.BytesRead ?? 0;

    /// <summary>The SHA-256 (lowercase hex) of the decompressed body, once read to its end; otherwise <see langword="null"/>.</summary>
    public string? ContentHash => _body?.HashHex;

    /// <summary>The body, decompressed and guarded. Opened on first access; read it once.</summary>
    public Stream Body => _body ??= _openBody(_message, _message.Content.ReadAsStream());

    internal GuardedStream GuardedBody => (GuardedStream)Body;

    /// <summary>
    /// Fails when the server sent a media type containing none of <paramref name="fragments"/>
    /// (e.g. <c>"json"</c>): an HTML error page instead of JSON is reported with its first bytes.
    /// A response without a media type passes.
    /// </summary>
    /// <param name="expected">What was expected, for the message (e.g. <c>JSON</c>).</param>
    /// <param name="fragments">Accepted parts of the media type, case-insensitive.</param>
    /// <exception cref="IngestionException">The media type is not acceptable.</exception>
    public void EnsureMediaType(string expected, params string[] fragments)
    {
        ArgumentNullException.ThrowIfNull(fragments);
        var media = MediaType;
        if (media is null || fragments.Any(f => media.Contains(f, StringComparison.OrdinalIgnoreCase)))
        {
            return;
        }

        var snippet = ReadSnippet(Body, 200);
        throw new IngestionException($"Source '{SourceName}': expected {expected} from {RedactedUrl} but the server sent '{media}'; the body starts with: {Redactor.Redact(snippet)}")
        {
            SourceName = SourceName,
            Position = RedactedUrl,
        };
    }

    /// <summary>Parses the body as one JSON document (for a page of an API), with malformed JSON reported by line and byte.</summary>
    /// <param name="position">Where this is (e.g. <c>page 3</c>), for errors.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The document; dispose it.</returns>
    /// <exception cref="IngestionException">The body is not valid JSON.</exception>
    public async Task<JsonDocument> ReadJsonAsync(string position, CancellationToken cancellationToken)
    {
        try
        {
            return await JsonDocument.ParseAsync(Body, new JsonDocumentOptions { MaxDepth = 256 }, cancellationToken).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw new IngestionException($"Source '{SourceName}': malformed JSON in {position} from {RedactedUrl} at line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}: {e.Message}", e)
            {
                SourceName = SourceName,
                Position = position,
            };
        }
    }

    internal static string ReadSnippet(Stream body, int max)
    {
        try
        {
            var buffer = new byte[max];
            var total = 0;
            int n;
            while (total < max && (n = body.Read(buffer, total, max - total)) > 0)
            {
                total += n;
            }

            return Encoding.UTF8.GetString(buffer, 0, total).ReplaceLineEndings(" ");
        }
        catch (Exception e) when (e is IOException or IngestionException or InvalidDataException or OperationCanceledException)
        {
            return "(unreadable)";
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _body?.Dispose();
        _message.Dispose();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_body is not null)
        {
            await _body.DisposeAsync().ConfigureAwait(false);
        }

        _message.Dispose();
    }
}

/// <summary>Finds text encodings by name, code pages (windows-1252, ISO-8859-15...) included.</summary>
public static class TextEncodings
{
    /// <summary>Finds an encoding by its web or .NET name.</summary>
    /// <param name="name">The name (e.g. <c>utf-8</c>, <c>windows-1252</c>, <c>latin1</c>), or <see langword="null"/>.</param>
    /// <returns>The encoding, or <see langword="null"/> when the name is null, empty or unknown.</returns>
    public static Encoding? Find(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return null;
        }

        name = name.Trim();
        try
        {
            return Encoding.GetEncoding(name);
        }
        catch (ArgumentException)
        {
            return CodePagesEncodingProvider.Instance.GetEncoding(name);
        }
    }
}

internal static class LinkHeader
{
    public static Uri? FindNext(HttpResponseHeaders headers, Uri requestUrl)
    {
        if (!headers.TryGetValues("Link", out var values))
        {
            return null;
        }

        foreach (var value in values)
        {
            foreach (var link in SplitLinks(value))
            {
                var close = link.IndexOf('>', StringComparison.Ordinal);
                var open = link.IndexOf('<', StringComparison.Ordinal);
                if (open < 0 || close < open)
                {
                    continue;
                }

                var parameters = link[(close + 1)..].Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                foreach (var p in parameters)
                {
                    var eq = p.IndexOf('=', StringComparison.Ordinal);
                    if (eq > 0 && p[..eq].Trim().Equals("rel", StringComparison.OrdinalIgnoreCase)
                        && p[(eq + 1)..].Trim().Trim('"').Split(' ').Contains("next", StringComparer.OrdinalIgnoreCase)
                        && Uri.TryCreate(requestUrl, link[(open + 1)..close].Trim(), out var next))
                    {
                        return next;
                    }
                }
            }
        }

        return null;
    }

    private static IEnumerable<string> SplitLinks(string value)
    {
        var start = 0;
        var inUrl = false;
        var inQuote = false;
        for (var i = 0; i < value.Length; i++)
        {
            switch (value[i])
            {
                case '<' when !inQuote: inUrl = true; break;
                case '>' when !inQuote: inUrl = false; break;
                case '"' when !inUrl: inQuote = !inQuote; break;
                case ',' when !inUrl && !inQuote:
                    yield return value[start..i];
                    start = i + 1;
                    break;
            }
        }

        yield return value[start..];
    }
}
