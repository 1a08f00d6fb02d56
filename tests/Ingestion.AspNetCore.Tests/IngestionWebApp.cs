using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Ingestion.AspNetCore.Tests;

/// <summary>
/// A real host on Kestrel (127.0.0.1, a free port) with the ingestion services on a test database, the endpoints mapped at
/// <c>/ingestion</c>, and a test sign-in: the <c>X-Test-User</c> header names the caller and <c>X-Test-Role</c> gives a role;
/// the policy <see cref="OperatorPolicy"/> requires the role <c>operator</c>.
/// </summary>
public sealed class IngestionWebApp : IAsyncDisposable
{
    public const string OperatorPolicy = "ingestion-operator";
    public const string Scheme = "Test";

    private IngestionWebApp(WebApplication app, Uri baseAddress)
    {
        App = app;
        BaseAddress = baseAddress;
    }

    public WebApplication App { get; }

    /// <summary>The server's root, e.g. <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri BaseAddress { get; }

    public IServiceProvider Services => App.Services;

    /// <summary>Starts a host.</summary>
    /// <param name="db">The test database.</param>
    /// <param name="ingestion">Adds sources and features.</param>
    /// <param name="environment">The environment name.</param>
    /// <param name="endpoints">Adjusts the endpoint settings (by default the write policy is <see cref="OperatorPolicy"/>).</param>
    /// <param name="services">Adds more services (health checks...).</param>
    /// <param name="map">Maps more routes.</param>
    public static async Task<IngestionWebApp> StartAsync(
        PostgresDatabase db,
        Action<IIngestionBuilder> ingestion,
        string environment = "Production",
        Action<global::Ingestion.AspNetCore.Endpoints.IngestionEndpointOptions>? endpoints = null,
        Action<IServiceCollection>? services = null,
        Action<WebApplication>? map = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = environment });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        ingestion(builder.Services.AddIngestion().UsePostgres(o => o.ConnectionString = db.ConnectionString));
        builder.Services.AddAuthentication(Scheme).AddScheme<AuthenticationSchemeOptions, HeaderAuthenticationHandler>(Scheme, null);
        builder.Services.AddAuthorizationBuilder().AddPolicy(OperatorPolicy, p => p.RequireRole("operator"));
        builder.Services.AddIngestionEndpoints(endpoints ?? (o => o.WritePolicy = OperatorPolicy));
        services?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapIngestion("/ingestion");
        map?.Invoke(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new IngestionWebApp(app, new Uri(address.TrimEnd('/') + "/"));
    }

    /// <summary>A client of the server; with a user, signed in as that user with the given role.</summary>
    public HttpClient Client(string? user = null, string? role = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (user is not null)
        {
            client.DefaultRequestHeaders.Add("X-Test-User", user);
        }

        if (role is not null)
        {
            client.DefaultRequestHeaders.Add("X-Test-Role", role);
        }

        return client;
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }

    /// <summary>Signs in the caller named by the <c>X-Test-User</c> header; no header, no identity (a challenge answers 401).</summary>
    private sealed class HeaderAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (!Request.Headers.TryGetValue("X-Test-User", out var user) || string.IsNullOrEmpty(user))
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            var claims = new List<Claim> { new(ClaimTypes.Name, user.ToString()) };
            if (Request.Headers.TryGetValue("X-Test-Role", out var role) && !string.IsNullOrEmpty(role))
            {
                claims.Add(new Claim(ClaimTypes.Role, role.ToString()));
            }

            var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, IngestionWebApp.Scheme));
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, IngestionWebApp.Scheme)));
        }
    }
}
