using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Ingestion.Sources.Http;

/// <summary>Creates the <see cref="SourceHttpClient"/> of a source run.</summary>
public interface ISourceHttpClientFactory
{
    /// <summary>Creates the HTTP client of one run, with the source's pipeline, budget and redaction.</summary>
    /// <param name="context">The run.</param>
    /// <param name="options">The source's HTTP settings.</param>
    /// <returns>The client.</returns>
    SourceHttpClient Create(IngestionContext context, SourceHttpOptions options);
}

/// <summary>Registers the shared HTTP layer of the built-in sources.</summary>
public static class SourceHttpServiceCollectionExtensions
{
    /// <summary>The name of the <see cref="IHttpClientFactory"/> client used by sources.</summary>
    public const string HttpClientName = "Ingestion.Sources";

    /// <summary>
    /// Adds the HTTP layer: a named <see cref="IHttpClientFactory"/> client (no automatic decompression, so
    /// size caps see the wire; pooled connections recycled every 5 minutes), the per-source pipelines and
    /// budgets, and <see cref="ISourceHttpClientFactory"/>. Idempotent.
    /// </summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddSourceHttp(this IIngestionBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        AddSourceHttp(builder.Services);
        return builder;
    }

    /// <summary>Adds the HTTP layer to a service collection (see <see cref="AddSourceHttp(IIngestionBuilder)"/>). Idempotent.</summary>
    /// <param name="services">The services.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddSourceHttp(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Any(d => d.ServiceType == typeof(SourceHttpRegistry)))
        {
            return services;
        }

        services.AddSingleton<SourceHttpRegistry>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ISourceHttpClientFactory, SourceHttpClientFactory>();
        services.AddHttpClient(HttpClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                AutomaticDecompression = DecompressionMethods.None,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                ConnectTimeout = TimeSpan.FromSeconds(30),
                AllowAutoRedirect = true,
                MaxAutomaticRedirections = 10,
            })
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan)
            .RemoveAllLoggers(); // its request logs print whole URLs (keys in paths included); the source client logs redacted ones
        return services;
    }

    private sealed class SourceHttpClientFactory(IHttpClientFactory clients, SourceHttpRegistry registry, Ingestion.Diagnostics.IngestionTelemetry? telemetry = null) : ISourceHttpClientFactory
    {
        public SourceHttpClient Create(IngestionContext context, SourceHttpOptions options)
        {
            ArgumentNullException.ThrowIfNull(context);
            ArgumentNullException.ThrowIfNull(options);
            var (pipeline, counter) = registry.Get(context.SourceName, options, context.TimeProvider);
            return new SourceHttpClient(clients.CreateClient(HttpClientName), pipeline, counter, options, context, telemetry);
        }
    }
}
