using Ingestion.AspNetCore.Endpoints;
using Microsoft.AspNetCore.Builder;

namespace Ingestion.AspNetCore.Hosting;

/// <summary>Settings of <see cref="IngestionWebServer"/>: where it listens and what it serves besides the ingestion routes.</summary>
public sealed class IngestionWebServerOptions
{
    /// <summary>The address Kestrel listens on (port 0 picks a free port). Default <c>http://127.0.0.1:5080</c>: this machine only.</summary>
    public string Url { get; set; } = "http://127.0.0.1:5080";

    /// <summary>The route prefix of the endpoints and the dashboard. Default <c>/ingestion</c>.</summary>
    public string Prefix { get; set; } = "/ingestion";

    /// <summary>The server's environment name (Development opens the write routes when no write policy is set); default: the host's.</summary>
    public string? EnvironmentName { get; set; }

    /// <summary>Adjusts the endpoint settings (write policy...); the host's <c>AddIngestionEndpoints</c> settings apply first when it made any.</summary>
    public Action<IngestionEndpointOptions>? ConfigureEndpoints { get; set; }

    /// <summary>Adds services to the server (authentication, authorization policies, OpenAPI...).</summary>
    public Action<WebApplicationBuilder>? ConfigureBuilder { get; set; }

    /// <summary>Maps more routes or middleware on the server (before the ingestion routes are mapped).</summary>
    public Action<WebApplication>? ConfigureApp { get; set; }
}
