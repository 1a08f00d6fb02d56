using Ingestion.AspNetCore.Endpoints;
using Ingestion.Hosting;
using Ingestion.Operations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Ingestion.AspNetCore.Hosting;

/// <summary>
/// The endpoints and the dashboard on a Kestrel server of their own, for a host that is not a web application (a console or
/// worker host, e.g. during its <c>serve</c> command). The server reads and runs through the host's own services (operations,
/// sources, stores, logging), so what it shows is what the host runs. Dispose it to stop it.
/// </summary>
public sealed class IngestionWebServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _disposed;

    private IngestionWebServer(WebApplication app, Uri baseAddress, string prefix)
    {
        _app = app;
        BaseAddress = baseAddress;
        DashboardAddress = new Uri(baseAddress, prefix.Trim('/') + "/");
    }

    /// <summary>The server's root, e.g. <c>http://127.0.0.1:5080/</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>The dashboard page, e.g. <c>http://127.0.0.1:5080/ingestion/</c>.</summary>
    public Uri DashboardAddress { get; }

    /// <summary>Starts the server.</summary>
    /// <param name="hostServices">The services of the host (it must have called <c>AddIngestion</c>).</param>
    /// <param name="configure">Sets the address, prefix, write policy and extra services.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The started server.</returns>
    /// <exception cref="InvalidOperationException">The host has no ingestion services.</exception>
    public static async Task<IngestionWebServer> StartAsync(IServiceProvider hostServices, Action<IngestionWebServerOptions>? configure, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hostServices);
        var options = new IngestionWebServerOptions();
        configure?.Invoke(options);
        if (hostServices.GetService<IIngestionOperations>() is null)
        {
            throw new InvalidOperationException("IngestionWebServer needs a host that called services.AddIngestion(...).");
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            EnvironmentName = options.EnvironmentName ?? hostServices.GetService<IHostEnvironment>()?.EnvironmentName ?? Environments.Production,
        });
        builder.WebHost.UseUrls(options.Url);
        builder.Logging.ClearProviders();
        var services = builder.Services;
        services.Replace(ServiceDescriptor.Singleton(hostServices.GetRequiredService<ILoggerFactory>()));
        Forward<IIngestionOperations>(services, hostServices);
        Forward<SourceCatalog>(services, hostServices);
        Forward<IOptions<IngestionOptions>>(services, hostServices);
        services.Replace(ServiceDescriptor.Singleton(hostServices.GetService<TimeProvider>() ?? TimeProvider.System));
        services.AddIngestionEndpoints(endpoints =>
        {
            if (hostServices.GetService<IConfigureOptions<IngestionEndpointOptions>>() is not null)
            {
                var host = hostServices.GetRequiredService<IOptions<IngestionEndpointOptions>>().Value;
                endpoints.WritePolicy = host.WritePolicy;
                endpoints.ReadPolicy = host.ReadPolicy;
                endpoints.DefaultPageSize = host.DefaultPageSize;
                endpoints.MaxPageSize = host.MaxPageSize;
                endpoints.DashboardTitle = host.DashboardTitle;
            }

            options.ConfigureEndpoints?.Invoke(endpoints);
        });
        options.ConfigureBuilder?.Invoke(builder);

        var app = builder.Build();
        options.ConfigureApp?.Invoke(app);
        app.MapIngestion(options.Prefix);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? options.Url;
        return new IngestionWebServer(app, new Uri(address.TrimEnd('/') + "/"), options.Prefix);
    }

    /// <summary>Stops the server; runs it started and did not wait for are cancelled (their committed batches kept) and waited for.</summary>
    /// <returns>A task that completes when the server stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static void Forward<T>(IServiceCollection services, IServiceProvider hostServices)
        where T : class =>
        services.Replace(ServiceDescriptor.Singleton(hostServices.GetRequiredService<T>()));
}
