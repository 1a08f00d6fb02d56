using System.Runtime.CompilerServices;
using Ingestion.Sources.Http;
using Microsoft.Extensions.Options;

namespace Ingestion.Sources.Feeds;

/// <summary>
/// Reads an RSS 2.0, Atom 1.0 or RDF feed from a URL (through the shared HTTP layer: conditional GET with
/// the saved ETag/Last-Modified, 304 and unchanged-content detection, retries, size caps) or a local file,
/// and yields its items as <see cref="FeedItem"/>s. Items without a key or with an unreadable date are
/// rejected with their index, line and field. The validators are saved once the whole feed has been read.
/// Register it with <see cref="FeedSourceServiceCollectionExtensions.AddFeedSource"/>.
/// </summary>
/// <param name="http">Creates the HTTP client of a run.</param>
/// <param name="options">The feed settings, named by source.</param>
public sealed class FeedSource(ISourceHttpClientFactory http, IOptionsMonitor<FeedSourceOptions> options) : HttpSourceBase<FeedSourceOptions, FeedItem>(http, options)
{
    /// <inheritdoc />
    protected override async IAsyncEnumerable<FeedItem> ReadAsync(IngestionContext context, FeedSourceOptions options, SourceHttpClient http, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var url = options.Url ?? throw new IngestionException($"Source '{context.SourceName}': Url is not set.") { SourceName = context.SourceName, Field = "Url" };
        var document = await http.OpenDocumentAsync(url, cancellationToken).ConfigureAwait(false);
        if (document is null)
        {
            yield break;
        }

        await using (document.ConfigureAwait(false))
        {
            using var buffer = await DocumentBuffer.ReadAsync(document.Content, options.MaxDocumentBytes, context.SourceName, document.Location, cancellationToken).ConfigureAwait(false);
            var start = buffer.GetBuffer().AsSpan(0, (int)Math.Min(buffer.Length, 1024));
            if (FeedSniffing.NotAFeed(start, document.MediaType) is { } got)
            {
                throw new IngestionException($"Source '{context.SourceName}': not a feed: got {got} (first bytes: '{FeedSniffing.FirstBytes(start)}') from {document.Location}.")
                {
                    SourceName = context.SourceName,
                    Position = "line 1",
                    Field = "root",
                };
            }

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

            http.Checkpoint(null, null, document);
        }
    }
}
