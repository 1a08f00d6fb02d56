using System.Security.Claims;
using Ingestion.AspNetCore.Endpoints;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;

namespace Ingestion.AspNetCore.Security;

/// <summary>Guards the write routes: the host's policy when it names one; otherwise open in Development and refused elsewhere.</summary>
internal static class WriteAccess
{
    /// <summary>The name recorded for a caller without an identity (Development without a write policy).</summary>
    public const string AnonymousCaller = "anonymous";

    /// <summary>Applies the write protection to a group of write routes.</summary>
    /// <param name="writes">The group.</param>
    /// <param name="options">The endpoint settings.</param>
    /// <param name="environment">The host environment.</param>
    public static void Protect(RouteGroupBuilder writes, IngestionEndpointOptions options, IHostEnvironment environment)
    {
        // A browser names the site a request comes from; a page of another site must not start runs with this site's cookies.
        writes.AddEndpointFilter((context, next) =>
            string.Equals(context.HttpContext.Request.Headers["Sec-Fetch-Site"], "cross-site", StringComparison.OrdinalIgnoreCase)
                ? ValueTask.FromResult<object?>(Results.Problem(
                    statusCode: StatusCodes.Status403Forbidden,
                    title: "Cross-site write refused",
                    detail: "The request comes from a page of another site (Sec-Fetch-Site: cross-site); ingestion writes are accepted from the same site or from non-browser clients only."))
                : next(context));
        if (options.WritePolicy is { } policy)
        {
            writes.RequireAuthorization(policy);
        }
        else if (!environment.IsDevelopment())
        {
            var environmentName = environment.EnvironmentName;
            writes.AddEndpointFilter((_, _) => ValueTask.FromResult<object?>(Results.Problem(
                statusCode: StatusCodes.Status403Forbidden,
                title: "Write routes are closed",
                detail: $"No authorization policy is configured for the ingestion write routes (IngestionEndpointOptions.WritePolicy) and the environment is '{environmentName}', not Development: writes are refused.")));
        }
    }

    /// <summary>The caller's name recorded with a run: the identity's name, else its <c>sub</c> or name-identifier claim, else <see cref="AnonymousCaller"/>.</summary>
    /// <param name="user">The request's user.</param>
    /// <returns>The name.</returns>
    public static string CallerName(ClaimsPrincipal user)
    {
        if (user.Identity is { IsAuthenticated: true } identity)
        {
            return identity.Name
                ?? user.FindFirstValue(ClaimTypes.NameIdentifier)
                ?? user.FindFirstValue("sub")
                ?? identity.AuthenticationType
                ?? AnonymousCaller;
        }

        return AnonymousCaller;
    }
}
