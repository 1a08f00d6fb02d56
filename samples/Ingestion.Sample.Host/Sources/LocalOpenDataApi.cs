using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ingestion.Sample.Host.Sources;

/// <summary>
/// A small HTTP server on 127.0.0.1 (Kestrel, an ephemeral port) that serves the bundled API files the way the real
/// services answer, so the sample's CKAN and JSON API sources run over HTTP with paging, like against a portal:
/// <list type="bullet">
/// <item><c>GET /api/3/action/datastore_search?resource_id=&amp;limit=&amp;offset=</c>: a CKAN datastore answer
/// (<c>success</c>, <c>result.fields</c>, <c>result.records</c>, <c>result.total</c>) from
/// <c>data/api/ckan-&lt;resource_id&gt;.json</c>, records in <c>_id</c> order;</item>
/// <item><c>GET /api/events?page=&amp;limit=</c>: a page of <c>data/api/events-api.json</c> as
/// <c>{ data, meta.total, links.next }</c>, the next page's absolute URL in <c>links.next</c> (null on the last).</item>
/// </list>
/// It starts on first use (when the sources' options are first built, at host start, unless configuration points
/// them at another server) and stops with the host (it is registered as a hosted service for that).
/// </summary>
public sealed class LocalOpenDataApi : IHostedService, IAsyncDisposable
{
    private readonly string _apiDirectory;
    private readonly Lazy<Task<(WebApplication App, Uri BaseAddress)>> _server;
    private int _stopped;

    /// <summary>Creates the server (not started).</summary>
    /// <param name="dataDirectory">The folder of the bundled sample data (its <c>api</c> subfolder is served).</param>
    public LocalOpenDataApi(string dataDirectory)
    {
        _apiDirectory = Path.Combine(dataDirectory, "api");
        _server = new Lazy<Task<(WebApplication, Uri)>>(StartServerAsync, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The server's base address (<c>http://127.0.0.1:port/</c>), starting it on first use.</summary>
    public Uri BaseAddress => _server.Value.GetAwaiter().GetResult().BaseAddress;

    /// <summary>Nothing to do: the server starts on first use.</summary>
    /// <param name="cancellationToken">Unused.</param>
    /// <returns>A completed task.</returns>
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Stops the server when the host stops.</summary>
    /// <param name="cancellationToken">Unused.</param>
    /// <returns>A task that completes when the server has stopped.</returns>
    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_server.IsValueCreated && Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            var (app, _) = await _server.Value;
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private async Task<(WebApplication, Uri)> StartServerAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapGet("/api/3/action/datastore_search", DatastoreSearch);
        app.MapGet("/api/events", Events);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (app, new Uri(address.TrimEnd('/') + "/"));
    }

    private IResult DatastoreSearch(HttpRequest request)
    {
        var resourceId = request.Query["resource_id"].ToString();
        var file = Path.Combine(_apiDirectory, $"ckan-{resourceId}.json");
        if (resourceId.Length == 0 || resourceId.Contains('/', StringComparison.Ordinal) || resourceId.Contains('\\', StringComparison.Ordinal) || !File.Exists(file))
        {
            return Results.Json(new { success = false, error = new { message = $"Not found: resource '{resourceId}'", __type = "Not Found Error" } }, statusCode: 404);
        }

        var limit = IntParameter(request, "limit", 100);
        var offset = IntParameter(request, "offset", 0);
        var dataset = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        var records = dataset["records"]!.AsArray();
        var page = new JsonArray(records.Skip(offset).Take(limit).Select(r => r!.DeepClone()).ToArray());
        var answer = new JsonObject
        {
            ["success"] = true,
            ["result"] = new JsonObject
            {
                ["resource_id"] = resourceId,
                ["fields"] = dataset["fields"]!.DeepClone(),
                ["records"] = page,
                ["limit"] = limit,
                ["offset"] = offset,
                ["total"] = records.Count,
            },
        };
        return Results.Text(answer.ToJsonString(), "application/json");
    }

    private IResult Events(HttpRequest request)
    {
        var limit = Math.Clamp(IntParameter(request, "limit", 20), 1, 100);
        var page = Math.Max(1, IntParameter(request, "page", 1));
        var events = JsonNode.Parse(File.ReadAllText(Path.Combine(_apiDirectory, "events-api.json")))!["events"]!.AsArray();
        var items = events.Skip((page - 1) * limit).Take(limit).Select(e => e!.DeepClone()).ToArray();
        var last = page * limit >= events.Count;
        var next = last ? null : $"{request.Scheme}://{request.Host}{request.Path}?page={(page + 1).ToString(CultureInfo.InvariantCulture)}&limit={limit.ToString(CultureInfo.InvariantCulture)}";
        var answer = new JsonObject
        {
            ["data"] = new JsonArray(items),
            ["meta"] = new JsonObject { ["total"] = events.Count, ["page"] = page },
            ["links"] = new JsonObject { ["next"] = next },
        };
        return Results.Text(answer.ToJsonString(new JsonSerializerOptions { WriteIndented = false }), "application/json");
    }

    private static int IntParameter(HttpRequest request, string name, int fallback) =>
        int.TryParse(request.Query[name].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : fallback;
}
