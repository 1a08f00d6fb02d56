using Ingestion.AspNetCore.Dashboard;
using Ingestion.AspNetCore.Endpoints;
using Ingestion.AspNetCore.Security;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the ingestion endpoints and the dashboard.</summary>
public static class IngestionEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps, under <paramref name="prefix"/>, the dashboard page (GET <c>{prefix}/</c>), the read routes (jobs, one job with its
    /// rejected records, sources, schedules and their runs, queues) and the write routes (run a source, run all, pause or resume a
    /// schedule, cancel a run of this host). Writes require <see cref="IngestionEndpointOptions.WritePolicy"/>; with none they are
    /// refused outside Development. Call <c>services.AddIngestionEndpoints()</c> first.
    /// </summary>
    /// <param name="endpoints">The application.</param>
    /// <param name="prefix">The route prefix, e.g. <c>/ingestion</c>.</param>
    /// <returns>The route group, for more conventions (e.g. <c>RequireHost</c>).</returns>
    /// <exception cref="InvalidOperationException"><c>AddIngestionEndpoints()</c> was not called, or a policy the options name is not registered.</exception>
    public static RouteGroupBuilder MapIngestion(this IEndpointRouteBuilder endpoints, string prefix = "/ingestion")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        var services = endpoints.ServiceProvider;
        if (services.GetService<IngestionEndpointsMarker>() is null)
        {
            throw new InvalidOperationException("MapIngestion needs services.AddIngestionEndpoints() (Ingestion.AspNetCore) and services.AddIngestion(...).");
        }

        var options = services.GetRequiredService<IOptions<IngestionEndpointOptions>>().Value;
        var environment = services.GetRequiredService<IHostEnvironment>();
        RequirePolicy(services, options.WritePolicy, nameof(IngestionEndpointOptions.WritePolicy));
        RequirePolicy(services, options.ReadPolicy, nameof(IngestionEndpointOptions.ReadPolicy));

        var group = endpoints.MapGroup(prefix).WithTags("Ingestion");
        if (options.ReadPolicy is { } readPolicy)
        {
            group.RequireAuthorization(readPolicy);
        }

        group.MapGet("/", (HttpContext context) => DashboardPage.Serve(context, options.DashboardTitle))
            .ExcludeFromDescription();

        ReadEndpoints.Map(group);
        var writes = group.MapGroup(string.Empty);
        WriteAccess.Protect(writes, options, environment);
        WriteEndpoints.Map(writes);
        return group;
    }

    /// <summary>Fails at start, naming the setting, when a policy the options name is not registered (instead of a 500 at the first request).</summary>
    private static void RequirePolicy(IServiceProvider services, string? policy, string setting)
    {
        if (policy is null)
        {
            return;
        }

        var provider = services.GetService<IAuthorizationPolicyProvider>()
            ?? throw new InvalidOperationException($"IngestionEndpointOptions.{setting} names the policy '{policy}' but the host has no authorization services: call services.AddAuthorization(o => o.AddPolicy(\"{policy}\", ...)).");
        if (provider.GetPolicyAsync(policy).GetAwaiter().GetResult() is null)
        {
            throw new InvalidOperationException($"IngestionEndpointOptions.{setting} names the policy '{policy}', which is not registered: add it with services.AddAuthorization(o => o.AddPolicy(\"{policy}\", ...)).");
        }
    }
}
