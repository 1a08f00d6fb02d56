using Ingestion.Sources.Http;
using Ingestion.Sources.Mapping;

namespace Ingestion.Sources.Ckan;

/// <summary>Settings of a CKAN datastore source, bound from <c>Ingestion:Sources:&lt;name&gt;</c>.</summary>
public sealed class CkanSourceOptions : IHttpSourceOptions
{
    /// <summary>The portal's base URL (<c>https://donnees.montreal.ca</c>); the action API is under <c>/api/3/action/</c>. Required.</summary>
    public string? BaseUrl { get; set; }

    /// <summary>The datastore resource id. Required.</summary>
    public string? ResourceId { get; set; }

    /// <summary>Records per request (<c>limit</c>). Default 1,000.</summary>
    public int PageSize { get; set; } = 1000;

    /// <summary>
    /// A field the rows are sorted by (<c>_id</c> by default) and, with <see cref="Incremental"/>, filtered on: incremental
    /// runs then use <c>datastore_search_sql</c> (where the portal allows it) with <c>WHERE field &gt; saved cursor</c>.
    /// </summary>
    public string SortField { get; set; } = "_id";

    /// <summary>Read only rows whose <see cref="SortField"/> is above the saved cursor (needs <c>datastore_search_sql</c>).</summary>
    public bool Incremental { get; set; }

    /// <summary>Equality filters sent as <c>filters</c> (field to value).</summary>
    public IDictionary<string, string> Filters { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Columns to read, overriding the types from the <c>fields</c> metadata; empty takes every field with its type, named in snake_case (<c>_id</c> stays <c>_id</c>).</summary>
    public IList<ColumnMappingOptions> Columns { get; } = new List<ColumnMappingOptions>();

    /// <summary>The key columns. Default <c>_id</c>.</summary>
    public IList<string> Key { get; } = new List<string>();

    /// <summary>An API key sent as the <c>Authorization</c> header (private datasets); redacted everywhere.</summary>
    public string? ApiKey { get; set; }

    /// <summary>The most pages one run reads. Default 100,000.</summary>
    public int MaxPages { get; set; } = 100_000;

    /// <summary>The HTTP settings.</summary>
    public SourceHttpOptions Http { get; set; } = new();

    /// <summary>Returns the problems with these settings, each naming the setting.</summary>
    /// <param name="prefix">The configuration path of the options.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<string> Validate(string prefix)
    {
        if (!Uri.TryCreate(BaseUrl, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            yield return $"{prefix}:BaseUrl must be an absolute http(s) URL (was '{BaseUrl}').";
        }

        if (string.IsNullOrWhiteSpace(ResourceId) || ResourceId.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
        {
            yield return $"{prefix}:ResourceId is required (letters, digits, '-', '_'); was '{ResourceId}'.";
        }

        if (PageSize is <= 0 or > 32_000)
        {
            yield return $"{prefix}:PageSize must be between 1 and 32000 (was {PageSize}).";
        }

        if (!ColumnValues.IsValidColumnName(SortField))
        {
            yield return $"{prefix}:SortField '{SortField}' is not a valid field name.";
        }

        if (MaxPages <= 0)
        {
            yield return $"{prefix}:MaxPages must be positive (was {MaxPages}).";
        }

        foreach (var e in ColumnValues.Validate(prefix, Columns, Key))
        {
            yield return e;
        }

        foreach (var e in (Http ?? new SourceHttpOptions()).Validate($"{prefix}:Http"))
        {
            yield return e;
        }
    }
}
