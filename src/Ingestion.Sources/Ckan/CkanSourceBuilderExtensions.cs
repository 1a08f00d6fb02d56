using Ingestion.Hosting;
using Ingestion.Sources.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

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
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        builder.AddSourceHttp();
        builder.AddSourceOptions(name, configure, o => o.Validate($"Ingestion:Sources:{name}"));
        return builder.AddSource(name, sp => new CkanSource(sp.GetRequiredService<ISourceHttpClientFactory>(), sp.GetRequiredService<IOptionsMonitor<CkanSourceOptions>>()), configureSource);
    }
}
