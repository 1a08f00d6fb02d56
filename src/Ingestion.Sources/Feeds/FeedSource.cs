using System.Runtime.CompilerServices;
using Ingestion.Sources.Http;

namespace Ingestion.Sources.Feeds;

/// <summary>
/// Reads an RSS 2.0, Atom 1.0 or RDF feed from a URL (through the shared HTTP layer: conditional GET with
/// the saved ETag/Last-Modified, 304 and unchanged-content detection, retries, size caps) or a local file,
/// and yields its items as <see cref="FeedItem"/>s. Items without a key or with an unreadable date are
/// rejected with their index, line and field. The validators are saved once the whole feed has been read.
/// Register it with <see cref="FeedSourceServiceCollectionExtensions.AddFeedSource"/>.
/// </summary>
public sealed class FeedSource : IngestionSource<FeedItem>
{
    private readonly FeedSourceOptions _options;
    private readonly ISourceHttpClientFactory _http;

    /// <summary>Creates the source.</summary>
    /// <param name="options">The feed settings.</param>
    /// <param name="http">Creates the HTTP client of a run.</param>
    public FeedSource(FeedSourceOptions options, ISourceHttpClientFactory http)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(http);
        _options = options;
        _http = http;
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<FeedItem> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var url = _options.Url ?? throw new IngestionException($"Source '{context.SourceName}': Url is not set.") { SourceName = context.SourceName, Field = "Url" };
        var client = _http.Create(context, _options.Http);
        var document = await client.OpenDocumentAsync(url, cancellationToken).ConfigureAwait(false);
        if (document is null)
        {
            yield break;
        }

        await using (document.ConfigureAwait(false))
        {
            using var buffer = await DocumentBuffer.ReadAsync(document.Content, _options.MaxDocumentBytes, context.SourceName, document.Location, cancellationToken).ConfigureAwait(false);
            var settings = new FeedParseSettings
            {
                SourceName = context.SourceName,
                BaseUri = SourceLocation.BaseOf(url),
                Charset = document.Encoding?.WebName,
            };
            using var results = FeedParser.Parse(buffer, settings).GetEnumerator();
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                FeedParseResult result;
                try
                {
                    if (!results.MoveNext())
                    {
                        break;
                    }

                    result = results.Current;
                }
                catch (IngestionException e) when (e.Field == "root" && document.MediaType is { } mediaType)
                {
                    throw new IngestionException($"{e.Message} The server sent it as '{mediaType}' from {document.Location}.", e)
                    {
                        SourceName = e.SourceName,
                        Position = e.Position,
                        Field = e.Field,
                    };
                }

                if (result.Rejected is { } rejected)
                {
                    context.Reject(rejected);
                }
                else
                {
                    yield return result.Item!;
                }
            }

            client.Checkpoint(null, null, document);
        }
    }
}
