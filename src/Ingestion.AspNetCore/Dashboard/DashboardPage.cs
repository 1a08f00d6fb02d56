using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Ingestion.AspNetCore.Dashboard;

/// <summary>The dashboard: one HTML page with its script and styles inline (no build step, no CDN), read once from the assembly.</summary>
internal static class DashboardPage
{
    private const string ResourceName = "Ingestion.AspNetCore.Dashboard.dashboard.html";

    private static readonly Lazy<string> Template = new(() =>
    {
        using var stream = typeof(DashboardPage).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The dashboard page ({ResourceName}) is missing from the assembly.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    });

    /// <summary>The page, with the API's base path and the title filled in (HTML-encoded).</summary>
    /// <param name="basePath">The path of the route group, e.g. <c>/ingestion</c> (with the request's path base).</param>
    /// <param name="title">The title.</param>
    /// <returns>The HTML.</returns>
    public static string Render(string basePath, string title) =>
        Template.Value
            .Replace("{{BASE}}", WebUtility.HtmlEncode(basePath), StringComparison.Ordinal)
            .Replace("{{TITLE}}", WebUtility.HtmlEncode(title), StringComparison.Ordinal);

    /// <summary>Writes the page, forbidding framing by other sites and any script or style not inline.</summary>
    /// <param name="context">The request of the page, mapped at the route group's root (the API's base path is its path).</param>
    /// <param name="title">The title.</param>
    /// <returns>The result.</returns>
    public static IResult Serve(HttpContext context, string title)
    {
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'self'";
        headers.XContentTypeOptions = "nosniff";
        headers.CacheControl = "no-store";
        var basePath = (context.Request.PathBase + context.Request.Path).Value?.TrimEnd('/') ?? string.Empty;
        return Results.Content(Render(basePath, title), "text/html; charset=utf-8");
    }
}
