using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Ingestion.TestSupport;

/// <summary>
/// A real HTTP server (Kestrel) on 127.0.0.1 with a free port, answering with a handler the test
/// supplies. Counts requests. Dispose it to stop it.
/// </summary>
public sealed class TestHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _requests;

    private TestHttpServer(WebApplication app) => _app = app;

    /// <summary>The base address, e.g. <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>How many requests the server received.</summary>
    public int RequestCount => Volatile.Read(ref _requests);

    /// <summary>Starts a server.</summary>
    /// <param name="handler">Answers each request.</param>
    /// <returns>The started server.</returns>
    public static async Task<TestHttpServer> StartAsync(Func<HttpContext, Task> handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var server = new TestHttpServer(app);
        app.Run(async ctx =>
        {
            Interlocked.Increment(ref server._requests);
            await handler(ctx);
        });
        await app.StartAsync();
        var address = app.Services.GetServiceFromCollection<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/");
        return server;
    }

    /// <summary>A URL on the server.</summary>
    /// <param name="relative">The path and query, without a leading slash.</param>
    /// <returns>The absolute URL.</returns>
    public Uri Url(string relative) => new(BaseAddress, relative);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

internal static class ServiceProviderExtensions
{
    public static T GetServiceFromCollection<T>(this IServiceProvider services)
        where T : notnull => (T)(services.GetService(typeof(T)) ?? throw new InvalidOperationException($"{typeof(T).Name} is not registered."));
}
