using Ingestion.Hosting;
using Ingestion.Sources.Http;

namespace Ingestion.Sources.JsonApi;

/// <summary>Registers JSON API sources.</summary>
public static class JsonApiSourceBuilderExtensions
{
    /// <summary>Adds a paginated JSON API source; its <see cref="JsonApiSourceOptions"/> bind from <c>Ingestion:Sources:&lt;name&gt;</c> and are validated at start.</summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="name">The source name.</param>
    /// <param name="configure">Adjusts the options after binding.</param>
    /// <param name="configureSource">Adjusts the runtime settings.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddJsonApiSource(this IIngestionBuilder builder, string name, Action<JsonApiSourceOptions>? configure = null, Action<SourceOptions>? configureSource = null)
    {
        return builder.AddHttpSource<JsonApiSource, JsonApiSourceOptions>(name, configure, configureSource);
    }
}
