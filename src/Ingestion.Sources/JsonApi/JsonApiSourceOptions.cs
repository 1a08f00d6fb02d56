using Ingestion.Sources.Http;
using Ingestion.Sources.Mapping;

namespace Ingestion.Sources.JsonApi;

/// <summary>How a JSON API is paged.</summary>
public enum JsonApiPagination
{
    /// <summary>One request.</summary>
    None,
    /// <summary><c>?page=1,2,3...</c> with a page size parameter.</summary>
    PageNumber,
    /// <summary><c>?offset=0,100,200...&amp;limit=100</c>.</summary>
    OffsetLimit,
    /// <summary>A cursor token read from the body (<see cref="JsonApiSourceOptions.NextCursorPath"/>) sent back as a parameter.</summary>
    Cursor,
    /// <summary>The next page's URL, from the body (<see cref="JsonApiSourceOptions.NextLinkPath"/>) or the <c>Link: rel="next"</c> header.</summary>
    NextLink,
}

/// <summary>Settings of a paginated JSON API source, bound from <c>Ingestion:Sources:&lt;name&gt;</c>.</summary>
public sealed class JsonApiSourceOptions : IHttpSourceOptions
{
    /// <summary>The first page's URL (its query is kept). Required.</summary>
    public string? Url { get; set; }

    /// <summary>How pages follow each other. Default <see cref="JsonApiPagination.NextLink"/>.</summary>
    public JsonApiPagination Pagination { get; set; } = JsonApiPagination.NextLink;

    /// <summary>The dotted path of the items array in a page (<c>data</c>, <c>results.items</c>); empty when the page is the array.</summary>
    public string? ItemsPath { get; set; }

    /// <summary>The page size sent (<see cref="PageSizeParameter"/>). Default 100.</summary>
    public int PageSize { get; set; } = 100;

    /// <summary>The page size parameter (<c>per_page</c>, <c>limit</c>); empty to send none. Default <c>limit</c>.</summary>
    public string? PageSizeParameter { get; set; } = "limit";

    /// <summary>The page number parameter. Default <c>page</c>.</summary>
    public string PageParameter { get; set; } = "page";

    /// <summary>The first page number. Default 1.</summary>
    public int FirstPage { get; set; } = 1;

    /// <summary>The offset parameter. Default <c>offset</c>.</summary>
    public string OffsetParameter { get; set; } = "offset";

    /// <summary>The cursor parameter. Default <c>cursor</c>.</summary>
    public string CursorParameter { get; set; } = "cursor";

    /// <summary>The dotted path of the next cursor in a page (<c>meta.next_cursor</c>); null, empty or missing ends the run.</summary>
    public string? NextCursorPath { get; set; }

    /// <summary>The dotted path of the next page's URL in a page (<c>links.next</c>); when unset, the <c>Link</c> header is used.</summary>
    public string? NextLinkPath { get; set; }

    /// <summary>The dotted path of the total item count (<c>meta.total</c>): paging stops once it is reached (re-read on each page, so it may change mid-run).</summary>
    public string? TotalPath { get; set; }

    /// <summary>The most pages one run reads (a safety net against endless paging). Default 100,000.</summary>
    public int MaxPages { get; set; } = 100_000;

    /// <summary>The API key, sent as <see cref="ApiKeyHeader"/> or <see cref="ApiKeyParameter"/>; always redacted.</summary>
    public string? ApiKey { get; set; }

    /// <summary>The header carrying the key (<c>Authorization</c> with <see cref="ApiKeyPrefix"/> <c>Bearer </c>, <c>X-Api-Key</c>).</summary>
    public string? ApiKeyHeader { get; set; }

    /// <summary>A prefix for the header value (<c>Bearer </c>).</summary>
    public string? ApiKeyPrefix { get; set; }

    /// <summary>The query parameter carrying the key (<c>api_key</c>).</summary>
    public string? ApiKeyParameter { get; set; }

    /// <summary>The query parameter of incremental runs (<c>updated_since</c>), fed with the saved cursor minus <see cref="Overlap"/>.</summary>
    public string? IncrementalParameter { get; set; }

    /// <summary>The dotted path of each item's modification time (<c>updated_at</c>); its maximum becomes the saved cursor.</summary>
    public string? IncrementalField { get; set; }

    /// <summary>How far before the saved cursor incremental runs start again (late writes on the server). Default 5 minutes.</summary>
    public TimeSpan Overlap { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The format of the incremental parameter's value. Default <c>yyyy-MM-ddTHH:mm:ssZ</c> (UTC).</summary>
    public string IncrementalFormat { get; set; } = "yyyy-MM-ddTHH:mm:ssZ";

    /// <summary>The columns, each from a dotted path into an item (<see cref="ColumnMappingOptions.From"/>).</summary>
    public IList<ColumnMappingOptions> Columns { get; } = new List<ColumnMappingOptions>();

    /// <summary>The key columns; empty uses <c>(source, source_id)</c>.</summary>
    public IList<string> Key { get; } = new List<string>();

    /// <summary>A <c>jsonb</c> column receiving each whole item, or <see langword="null"/>.</summary>
    public string? RawJsonColumn { get; set; }

    /// <summary>The HTTP settings.</summary>
    public SourceHttpOptions Http { get; set; } = new();

    /// <summary>Returns the problems with these settings, each naming the setting.</summary>
    /// <param name="prefix">The configuration path of the options.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<string> Validate(string prefix)
    {
        if (!Uri.TryCreate(Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            yield return $"{prefix}:Url must be an absolute http(s) URL (was '{Url}').";
        }

        if (PageSize <= 0)
        {
            yield return $"{prefix}:PageSize must be positive (was {PageSize}).";
        }

        if (MaxPages <= 0)
        {
            yield return $"{prefix}:MaxPages must be positive (was {MaxPages}).";
        }

        if (Pagination == JsonApiPagination.Cursor && string.IsNullOrEmpty(NextCursorPath))
        {
            yield return $"{prefix}:NextCursorPath is required with cursor pagination.";
        }

        if (!string.IsNullOrEmpty(ApiKey) && string.IsNullOrEmpty(ApiKeyHeader) && string.IsNullOrEmpty(ApiKeyParameter))
        {
            yield return $"{prefix}:ApiKey needs ApiKeyHeader or ApiKeyParameter.";
        }

        if (!string.IsNullOrEmpty(IncrementalParameter) && string.IsNullOrEmpty(IncrementalField))
        {
            yield return $"{prefix}:IncrementalField is required with IncrementalParameter.";
        }

        if (Overlap < TimeSpan.Zero)
        {
            yield return $"{prefix}:Overlap must not be negative.";
        }

        if (Columns.Count == 0)
        {
            yield return $"{prefix}:Columns must map at least one column.";
        }

        if (RawJsonColumn is { Length: > 0 } raw && !ColumnValues.IsValidColumnName(raw))
        {
            yield return $"{prefix}:RawJsonColumn '{raw}' is not a valid column name.";
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
