using System.Globalization;
using System.Text;

namespace Ingestion.Sources.JsonApi;

/// <summary>URL helpers shared by the paged JSON sources.</summary>
internal static class JsonPaging
{
    /// <summary>Returns the URL with a query parameter set (replaced when present).</summary>
    public static Uri With(Uri url, string name, string? value)
    {
        var builder = new UriBuilder(url);
        var parts = builder.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Where(p => !string.Equals(Uri.UnescapeDataString(p.Split('=')[0]), name, StringComparison.Ordinal))
            .ToList();
        if (value is not null)
        {
            parts.Add($"{Uri.EscapeDataString(name)}={Uri.EscapeDataString(value)}");
        }

        builder.Query = string.Join('&', parts);
        return builder.Uri;
    }

    /// <summary>Whether the URL's query has the parameter.</summary>
    public static bool Has(Uri url, string name) =>
        url.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries).Any(p => string.Equals(Uri.UnescapeDataString(p.Split('=')[0]), name, StringComparison.Ordinal));

    public static string Format(long n) => n.ToString(CultureInfo.InvariantCulture);

    public static long? ParseLong(string? text) =>
        long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : null;

    public static DateTimeOffset? ParseTime(string? text) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;

    public static Dictionary<string, string> Values(params (string Key, string? Value)[] values)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in values)
        {
            d[k] = v ?? string.Empty;
        }

        return d;
    }

    public static string Describe(Encoding? e) => e?.WebName ?? "utf-8";
}
