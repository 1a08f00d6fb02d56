using Ingestion.Hosting;
using Ingestion.Sources.Http;

namespace Ingestion.Sources.Wfs;

/// <summary>Registers WFS / GeoJSON sources.</summary>
public static class WfsSourceBuilderExtensions
{
    /// <summary>Adds a WFS / GeoJSON source; its <see cref="WfsSourceOptions"/> bind from <c>Ingestion:Sources:&lt;name&gt;</c> and are validated at start.</summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="name">The source name.</param>
    /// <param name="configure">Adjusts the options after binding.</param>
    /// <param name="configureSource">Adjusts the runtime settings.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddWfsSource(this IIngestionBuilder builder, string name, Action<WfsSourceOptions>? configure = null, Action<SourceOptions>? configureSource = null)
    {
        return builder.AddHttpSource<WfsSource, WfsSourceOptions>(name, configure, configureSource);
    }
}
