using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Ingestion.Sources.Http;
using Ingestion.Sources.Mapping;
using Microsoft.Extensions.Options;

namespace Ingestion.Sources.JsonApi;

/// <summary>
/// A paginated JSON API read into dynamic records: page number, offset/limit, cursor token or next link (body
/// or <c>Link</c> header); items found by a path and mapped to typed columns; an API key by header or query
/// parameter (always redacted); incremental runs send the saved cursor (the newest item time seen, minus an
/// overlap) as a parameter. Each page ends with a checkpoint, so a failed or budget-stopped run resumes at the
/// next page.
/// </summary>
/// <param name="http">The HTTP layer.</param>
/// <param name="options">The options, named by source.</param>
public sealed class JsonApiSource(ISourceHttpClientFactory http, IOptionsMonitor<JsonApiSourceOptions> options) : HttpSourceBase<JsonApiSourceOptions, DynamicRecord>(http, options)
{
    /// <summary>The state value holding the next page position of an unfinished run.</summary>
    public const string NextKey = "jsonapi.next";

    /// <summary>The state value holding the incremental value an unfinished run started from.</summary>
    public const string SinceKey = "jsonapi.since";

    /// <summary>The state value holding the newest item time seen by an unfinished run.</summary>
    public const string WatermarkKey = "jsonapi.watermark";

    /// <inheritdoc />
    protected override async IAsyncEnumerable<DynamicRecord> ReadAsync(IngestionContext context, JsonApiSourceOptions options, SourceHttpClient http, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        http.Redactor.AddSecret(options.ApiKey);
        var mapper = new JsonRecordMapper(options.Columns, options.Key, options.RawJsonColumn);
        var baseUrl = new Uri(options.Url!);
        var state = context.State;
        var incremental = context.Mode == IngestionMode.Incremental;
        var resume = incremental && state.Values.TryGetValue(NextKey, out var saved) && saved.Length > 0 ? saved : null;
        DateTimeOffset? watermark;
        string? since;
        if (resume is not null)
        {
            since = state.Values.TryGetValue(SinceKey, out var s) && s.Length > 0 ? s : null;
            watermark = JsonPaging.ParseTime(state.Values.GetValueOrDefault(WatermarkKey));
        }
        else
        {
            watermark = incremental ? JsonPaging.ParseTime(state.Cursor) : null;
            since = !string.IsNullOrEmpty(options.IncrementalParameter) && watermark is { } w
                ? (w - options.Overlap).ToUniversalTime().ToString(options.IncrementalFormat, CultureInfo.InvariantCulture)
                : null;
        }

        var position = resume ?? options.Pagination switch
        {
            JsonApiPagination.PageNumber => JsonPaging.Format(options.FirstPage),
            JsonApiPagination.OffsetLimit => "0",
            _ => string.Empty,
        };

        for (var pageIndex = 1; pageIndex <= options.MaxPages; pageIndex++)
        {
            var url = PageUrl(options, baseUrl, position, since);
            var label = $"page {pageIndex}{(resume is null ? string.Empty : " after resuming")}";
            SourceHttpResponse response;
            try
            {
                response = await http.SendAsync(() => Request(options, url), allowNotModified: false, cancellationToken).ConfigureAwait(false);
            }
            catch (RequestBudgetExhaustedException e)
            {
                http.StopForBudget(e, null, Progress(position, since, watermark));
                yield break;
            }

            var records = new List<DynamicRecord>();
            string? next = null;
            await using (response.ConfigureAwait(false))
            {
                response.EnsureMediaType("JSON", "json", "javascript");
                using var document = await response.ReadJsonAsync(label, cancellationToken).ConfigureAwait(false);
                var root = document.RootElement;
                if (!ColumnValues.TryGetPath(root, options.ItemsPath, out var items) || items.ValueKind != JsonValueKind.Array)
                {
                    throw new IngestionException($"Source '{context.SourceName}': {label} from {response.RedactedUrl} has no items array at '{options.ItemsPath}'.")
                    {
                        SourceName = context.SourceName,
                        Position = label,
                        Field = options.ItemsPath,
                    };
                }

                var index = 0;
                foreach (var item in items.EnumerateArray())
                {
                    index++;
                    if (mapper.Map(item, $"{label} item {index}", context, http.Redactor) is { } record)
                    {
                        records.Add(record);
                    }

                    if (options.IncrementalField is { Length: > 0 } field && ColumnValues.TryGetPath(item, field, out var time)
                        && ColumnValues.TryConvert(time, ColumnType.TimestampTz, null, out var value) is null && value is DateTimeOffset t
                        && (watermark is null || t > watermark))
                    {
                        watermark = t;
                    }
                }

                long? total = options.TotalPath is { Length: > 0 } tp && ColumnValues.TryGetPath(root, tp, out var te) && te.ValueKind == JsonValueKind.Number && te.TryGetInt64(out var tv) ? tv : null;
                if (total is { } announced)
                {
                    context.ReportInputSize(announced);
                }

                next = Next(options, position, index, total, root, response);
            }

            foreach (var record in records)
            {
                yield return record;
            }

            if (next is null)
            {
                break;
            }

            position = next;
            http.Checkpoint(null, Progress(position, since, watermark));
        }

        http.Checkpoint(watermark?.ToString("O", CultureInfo.InvariantCulture), JsonPaging.Values((NextKey, null), (SinceKey, null), (WatermarkKey, null)));
    }

    private static Dictionary<string, string> Progress(string position, string? since, DateTimeOffset? watermark) =>
        JsonPaging.Values((NextKey, position.Length == 0 ? "-" : position), (SinceKey, since), (WatermarkKey, watermark?.ToString("O", CultureInfo.InvariantCulture)));

    private static string? Next(JsonApiSourceOptions o, string position, int count, long? total, JsonElement root, SourceHttpResponse response)
    {
        if (count == 0)
        {
            return null;
        }

        var full = string.IsNullOrEmpty(o.PageSizeParameter) || count >= o.PageSize;
        switch (o.Pagination)
        {
            case JsonApiPagination.PageNumber:
                {
                    var page = JsonPaging.ParseLong(position) ?? o.FirstPage;
                    var read = (page - o.FirstPage) * o.PageSize + count;
                    return !full || (total is { } t && read >= t) ? null : JsonPaging.Format(page + 1);
                }

            case JsonApiPagination.OffsetLimit:
                {
                    var offset = (JsonPaging.ParseLong(position) ?? 0) + count;
                    return !full || (total is { } t && offset >= t) ? null : JsonPaging.Format(offset);
                }

            case JsonApiPagination.Cursor:
                return ColumnValues.TryGetPath(root, o.NextCursorPath, out var c) && c.ValueKind == JsonValueKind.String && c.GetString() is { Length: > 0 } token && token != position ? token : null;
            case JsonApiPagination.NextLink:
                Uri? link = null;
                if (o.NextLinkPath is { Length: > 0 } path)
                {
                    if (ColumnValues.TryGetPath(root, path, out var l) && l.ValueKind == JsonValueKind.String && l.GetString() is { Length: > 0 } href)
                    {
                        _ = Uri.TryCreate(response.Url, href, out link);
                    }
                }
                else
                {
                    link = response.NextLink;
                }

                if (link is null)
                {
                    return null;
                }

                // Never keep a key the server echoed in the saved position: it is added again when sent.
                if (o.ApiKeyParameter is { Length: > 0 } keyParameter)
                {
                    link = JsonPaging.With(link, keyParameter, null);
                }

                return link.AbsoluteUri == position ? null : link.AbsoluteUri;
            default:
                return null;
        }
    }

    private static Uri PageUrl(JsonApiSourceOptions o, Uri baseUrl, string position, string? since)
    {
        var url = o.Pagination == JsonApiPagination.NextLink && position.Length > 1 ? new Uri(position) : baseUrl;
        switch (o.Pagination)
        {
            case JsonApiPagination.PageNumber:
                url = JsonPaging.With(url, o.PageParameter, position);
                break;
            case JsonApiPagination.OffsetLimit:
                url = JsonPaging.With(url, o.OffsetParameter, position);
                break;
            case JsonApiPagination.Cursor when position.Length > 1:
                url = JsonPaging.With(url, o.CursorParameter, position);
                break;
        }

        if (o.PageSizeParameter is { Length: > 0 } size && o.Pagination != JsonApiPagination.None && !JsonPaging.Has(url, size))
        {
            url = JsonPaging.With(url, size, JsonPaging.Format(o.PageSize));
        }

        if (since is not null && o.IncrementalParameter is { Length: > 0 } p && !JsonPaging.Has(url, p))
        {
            url = JsonPaging.With(url, p, since);
        }

        if (o.ApiKey is { Length: > 0 } key && o.ApiKeyParameter is { Length: > 0 } kp)
        {
            url = JsonPaging.With(url, kp, key);
        }

        return url;
    }

    private static HttpRequestMessage Request(JsonApiSourceOptions o, Uri url)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.ParseAdd("application/json");
        if (o.ApiKey is { Length: > 0 } key && o.ApiKeyHeader is { Length: > 0 } header)
        {
            request.Headers.TryAddWithoutValidation(header, (o.ApiKeyPrefix ?? string.Empty) + key);
        }

        return request;
    }
}
