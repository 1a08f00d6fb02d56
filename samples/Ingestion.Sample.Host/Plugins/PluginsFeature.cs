using Ingestion.Plugins;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.Sample.Host.Plugins;

/// <summary>Loads the source plug-ins of <c>Ingestion:Plugins:Path</c> (default: the <c>plugins</c> folder beside the host).</summary>
public sealed class PluginsFeature : ISampleFeature
{
    public void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory) =>
        ingestion.AddPluginsFrom(configuration["Ingestion:Plugins:Path"] is { Length: > 0 } path ? path : "plugins");
}

/// <summary><c>plugins list</c>: what was loaded, from where, which sources, which contract, and why anything was refused.</summary>
public sealed class PluginsListCommand : ISampleCommand
{
    public string Name => "plugins list";

    public string Description => "list the plug-ins loaded from the plug-in folder, their sources and contract, and why any was refused";

    public Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        var manager = host.Services.GetRequiredService<PluginManager>();
        manager.WriteListing(Console.Out);
        return Task.FromResult(manager.Plugins.Any(p => p.Status == PluginStatus.Refused) ? 1 : 0);
    }
}
