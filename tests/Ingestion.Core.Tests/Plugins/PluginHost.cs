using Ingestion.Hosting;
using Ingestion.Plugins;
using Ingestion.Running;
using Ingestion.Sinks;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Core.Tests.Plugins;

/// <summary>A host with in-memory stores and sink that loads plug-ins from one drop folder.</summary>
internal sealed class PluginHost : IAsyncDisposable
{
    private PluginHost(ServiceProvider services)
    {
        Services = services;
        Manager = services.GetRequiredService<PluginManager>();
        Catalog = services.GetRequiredService<SourceCatalog>();
    }

    public ServiceProvider Services { get; }

    public PluginManager Manager { get; }

    public SourceCatalog Catalog { get; }

    public IIngestionRunner Runner => Services.GetRequiredService<IIngestionRunner>();

    public InMemorySink Sink => (InMemorySink)Services.GetRequiredService<IIngestionSink>();

    public static PluginHost Start(string drop, IDictionary<string, string?>? settings = null, Action<IIngestionBuilder>? before = null, Action<PluginLoaderOptions>? options = null)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(settings ?? new Dictionary<string, string?>()).Build();
        var services = new ServiceCollection();
        var builder = services.AddIngestion(config.GetSection("Ingestion"));
        before?.Invoke(builder);
        builder.AddPluginsFrom(drop, options);
        return new PluginHost(services.BuildServiceProvider());
    }

    public PluginInfo Plugin(string name) => Manager.Plugins.Single(p => p.Name == name);

    public Task<IngestionResult> RunAsync(string source, CancellationToken cancellationToken = default) =>
        Runner.RunAsync(source, null, cancellationToken);

    public ValueTask DisposeAsync() => Services.DisposeAsync();
}
