using Ingestion.Hosting;
using Ingestion.Sources.Http;

namespace Ingestion.Sources.Feeds;

/// <summary>Registers RSS/Atom feed sources.</summary>
public static class FeedSourceServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="FeedSource"/> under <paramref name="name"/>. Its <see cref="FeedSourceOptions"/> bind
    /// from <c>Ingestion:Sources:&lt;name&gt;</c> (with the runtime's <see cref="SourceOptions"/>), then
    /// <paramref name="configure"/> runs; both are validated at start. Adds the shared HTTP layer.
    /// </summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="name">The source name.</param>
    /// <param name="configure">Sets the feed settings (e.g. <see cref="FeedSourceOptions.Url"/>).</param>
    /// <param name="source">Adjusts the runtime settings (table, batch size, error budget...).</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddFeedSource(this IIngestionBuilder builder, string name, Action<FeedSourceOptions>? configure = null, Action<SourceOptions>? source = null)
    {
        return builder.AddHttpSource<FeedSource, FeedSourceOptions>(name, configure, source);
    }
}
