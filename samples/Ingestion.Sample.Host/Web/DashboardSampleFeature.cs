using Ingestion.AspNetCore.Hosting;
using Ingestion.CommandLine;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Sample.Host.Web;

/// <summary>
/// During <c>serve</c>, the HTTP endpoints and the dashboard (Ingestion.AspNetCore) on <c>Dashboard:Url</c>
/// (default <c>http://127.0.0.1:5080</c>, this machine only). The sample has no sign-in, so its server runs as
/// Development (<c>Dashboard:Environment</c>), where the run-now buttons work without a write policy; a real host
/// names a policy instead (docs/operations-http.md).
/// </summary>
public sealed class DashboardSampleFeature : ISampleFeature
{
    public void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory) =>
        ingestion.Services.AddSingleton<IIngestionServeHook>(new DashboardServeHook(
            configuration["Dashboard:Url"] ?? "http://127.0.0.1:5080",
            configuration["Dashboard:Environment"] ?? "Development"));
}

/// <summary>Starts the dashboard server once <c>serve</c> runs, says where, and stops it with the host.</summary>
internal sealed class DashboardServeHook(string url, string environment) : IIngestionServeHook, IAsyncDisposable
{
    private IngestionWebServer? _server;

    public async Task OnServingAsync(IngestionCommandContext context, CancellationToken cancellationToken)
    {
        _server = await IngestionWebServer.StartAsync(context.Services, o =>
        {
            o.Url = url;
            o.EnvironmentName = environment;
            o.ConfigureEndpoints = e => e.DashboardTitle = "Ingestion sample";
        }, cancellationToken);
        await context.Output.WriteLineAsync($"dashboard\t{_server.DashboardAddress}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
