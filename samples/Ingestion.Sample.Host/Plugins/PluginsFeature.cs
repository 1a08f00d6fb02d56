using Ingestion.Plugins;
using Microsoft.Extensions.Configuration;

namespace Ingestion.Sample.Host.Plugins;

/// <summary>Loads the source plug-ins of <c>Ingestion:Plugins:Path</c> (default: the <c>plugins</c> folder beside the host).</summary>
public sealed class PluginsFeature : ISampleFeature
{
    public void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory) =>
        ingestion.AddPluginsFrom(configuration["Ingestion:Plugins:Path"] is { Length: > 0 } path ? path : "plugins");
}
