using Ingestion.Hosting;
using Ingestion.Sources.Http;

namespace Ingestion.Sources.Ics;

/// <summary>Registers iCalendar sources.</summary>
public static class IcsSourceServiceCollectionExtensions
{
    /// <summary>
    /// Registers an <see cref="IcsSource"/> under <paramref name="name"/>. Its <see cref="IcsSourceOptions"/> bind
    /// from <c>Ingestion:Sources:&lt;name&gt;</c> (with the runtime's <see cref="SourceOptions"/>), then
    /// <paramref name="configure"/> runs; both are validated at start. Adds the shared HTTP layer.
    /// </summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="name">The source name.</param>
    /// <param name="configure">Sets the calendar settings (e.g. <see cref="IcsSourceOptions.Url"/>).</param>
    /// <param name="source">Adjusts the runtime settings (table, batch size, error budget...).</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddIcsSource(this IIngestionBuilder builder, string name, Action<IcsSourceOptions>? configure = null, Action<SourceOptions>? source = null)
    {
        return builder.AddHttpSource<IcsSource, IcsSourceOptions>(name, configure, source);
    }
}
