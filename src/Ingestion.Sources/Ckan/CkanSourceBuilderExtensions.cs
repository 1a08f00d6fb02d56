using Ingestion.Hosting;
using Ingestion.Sources.Http;

namespace Ingestion.Sources.Ckan;

/// <summary>Registers CKAN datastore sources.</summary>
public static class CkanSourceBuilderExtensions
{
    /// <summary>Adds a CKAN datastore source; its <see cref="CkanSourceOptions"/> bind from <c>Ingestion:Sources:&lt;name&gt;</c> and are validated at start.</summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="name">The source name.</param>
    /// <param name="configure">Adjusts the options after binding.</param>
    /// <param name="configureSource">Adjusts the runtime settings.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddCkanSource(this IIngestionBuilder builder, string name, Action<CkanSourceOptions>? configure = null, Action<SourceOptions>? configureSource = null)
    {
        return builder.AddHttpSource<CkanSource, CkanSourceOptions>(name, configure, configureSource);
    }
}
