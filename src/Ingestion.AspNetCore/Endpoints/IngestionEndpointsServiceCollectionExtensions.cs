using Ingestion.AspNetCore.Endpoints;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers what <c>MapIngestion</c> needs.</summary>
public static class IngestionEndpointsServiceCollectionExtensions
{
    /// <summary>
    /// Registers the services of the ingestion endpoints and their settings (validated at start). Call
    /// <c>services.AddIngestion(...)</c> too, and <c>services.AddOpenApi()</c> with <c>app.MapOpenApi()</c> to publish the routes' document.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Sets the write policy, page sizes, title.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddIngestionEndpoints(this IServiceCollection services, Action<IngestionEndpointOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton<IngestionEndpointsMarker>();
        services.TryAddSingleton(TimeProvider.System);
        if (!services.Any(d => d.ServiceType == typeof(BackgroundRuns)))
        {
            services.AddSingleton<BackgroundRuns>();
            services.AddHostedService(sp => sp.GetRequiredService<BackgroundRuns>());
        }

        var options = services.AddOptions<IngestionEndpointOptions>().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<IngestionEndpointOptions>, EndpointOptionsValidator>());
        return services;
    }

    private sealed class EndpointOptionsValidator : IValidateOptions<IngestionEndpointOptions>
    {
        public ValidateOptionsResult Validate(string? name, IngestionEndpointOptions options) =>
            options.Validate() is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems) : ValidateOptionsResult.Success;
    }
}
