using Ingestion.Sources.Http;

namespace Ingestion.Sources.Feeds;

/// <summary>The settings of an RSS/Atom feed source, bound from <c>Ingestion:Sources:&lt;name&gt;</c>.</summary>
public sealed class FeedSourceOptions : IHttpSourceOptions
{
    /// <summary>The feed: an <c>http(s)</c> URL, a <c>file:</c> URL, or a local path.</summary>
    public string? Url { get; set; }

    /// <summary>The most bytes of the document read (it is buffered before parsing). Default 64 MiB.</summary>
    public long MaxDocumentBytes { get; set; } = 64L << 20;

    /// <summary>The HTTP settings (timeouts, retries, conditional requests, headers, budgets).</summary>
    public SourceHttpOptions Http { get; set; } = new();

    /// <summary>Returns the problems with these settings, each naming the setting; empty when valid.</summary>
    /// <param name="prefix">The configuration path, e.g. <c>Ingestion:Sources:news</c>.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<string> Validate(string prefix)
    {
        if (SourceLocation.Problem(Url) is { } problem)
        {
            yield return $"{prefix}:Url {problem}";
        }

        if (MaxDocumentBytes <= 0)
        {
            yield return $"{prefix}:MaxDocumentBytes must be positive (was {MaxDocumentBytes}).";
        }

        if (Http is null)
        {
            yield return $"{prefix}:Http must not be null.";
            yield break;
        }

        foreach (var e in Http.Validate($"{prefix}:Http"))
        {
            yield return e;
        }
    }
}

/// <summary>Checks and interprets the <c>Url</c> setting of document sources.</summary>
internal static class SourceLocation
{
    public static string? Problem(string? url)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            return "is required (an http(s) URL, a file: URL or a local path).";
        }

        if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && !uri.IsFile && uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
        {
            return $"has the scheme '{uri.Scheme}'; only http, https, file and local paths are read.";
        }

        return null;
    }

    /// <summary>The base for relative links: the URL itself when it is http(s), else <see langword="null"/>.</summary>
    public static Uri? BaseOf(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps) ? uri : null;
}
