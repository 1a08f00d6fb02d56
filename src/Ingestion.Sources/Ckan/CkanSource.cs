using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Ingestion.Sources.Http;
using Ingestion.Sources.JsonApi;
using Ingestion.Sources.Mapping;
using Microsoft.Extensions.Options;

namespace Ingestion.Sources.Ckan;

/// <summary>
/// A CKAN datastore resource read with <c>datastore_search</c> (or <c>datastore_search_sql</c> for incremental
/// runs), paging by offset until the reported total is reached; columns and types come from the <c>fields</c>
/// metadata. Each page ends with a checkpoint, so a failed run resumes at the next page.
/// </summary>
/// <param name="http">The HTTP layer.</param>
/// <param name="options">The options, named by source.</param>
public sealed class CkanSource(ISourceHttpClientFactory http, IOptionsMonitor<CkanSourceOptions> options) : HttpSourceBase<CkanSourceOptions, DynamicRecord>(http, options)
{
    /// <summary>The state value holding the next offset of an unfinished run.</summary>
    public const string OffsetKey = "ckan.offset";

    /// <summary>The state value holding the lower bound an unfinished incremental run started from.</summary>
    public const string SinceKey = "ckan.since";

    /// <summary>The state value holding the highest sort value an unfinished incremental run has seen.</summary>
    public const string MaxKey = "ckan.max";

    /// <summary>The column type of a CKAN (PostgreSQL) field type.</summary>
    /// <param name="ckanType">The field type, e.g. <c>int4</c>, <c>numeric</c>, <c>timestamp</c>.</param>
    /// <returns>The column type.</returns>
    public static ColumnType MapType(string? ckanType) => ckanType?.ToUpperInvariant() switch
    {
        "INT" or "INT2" or "INT4" or "INT8" or "INTEGER" or "BIGINT" or "SMALLINT" => ColumnType.Int64,
        "NUMERIC" => ColumnType.Decimal,
        "FLOAT" or "FLOAT4" or "FLOAT8" or "DOUBLE PRECISION" or "REAL" => ColumnType.Float64,
        "BOOL" or "BOOLEAN" => ColumnType.Boolean,
        "DATE" => ColumnType.Date,
        "TIMESTAMP" => ColumnType.Timestamp,
        "TIMESTAMPTZ" => ColumnType.TimestampTz,
        "JSON" or "JSONB" => ColumnType.Json,
        _ => ColumnType.Text,
    };

    /// <inheritdoc />
    protected override async IAsyncEnumerable<DynamicRecord> ReadAsync(IngestionContext context, CkanSourceOptions options, SourceHttpClient http, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        http.Redactor.AddSecret(options.ApiKey);
        var state = context.State;
        var isIncremental = options.Incremental && context.Mode == IngestionMode.Incremental;
        var resuming = context.Mode == IngestionMode.Incremental && state.Values.TryGetValue(OffsetKey, out var savedOffset) && savedOffset.Length > 0;
        var offset = resuming ? JsonPaging.ParseLong(state.Values[OffsetKey]) ?? 0 : 0;
        var since = resuming ? state.Values.GetValueOrDefault(SinceKey) : isIncremental ? state.Cursor : null;
        var max = resuming ? state.Values.GetValueOrDefault(MaxKey) : since;
        if (string.IsNullOrEmpty(since))
        {
            since = null;
        }

        var sinceLiteral = since is null ? null : SqlLiteral(since, context.SourceName);
        JsonRecordMapper? mapper = null;
        var key = options.Key.Count > 0 ? options.Key : ["_id"];
        for (var page = 1; page <= options.MaxPages; page++)
        {
            var url = isIncremental ? SqlUrl(options, sinceLiteral, offset) : SearchUrl(options, offset);
            var label = $"offset {offset}";
            SourceHttpResponse response;
            try
            {
                response = await http.SendAsync(() => Request(options, url), allowNotModified: false, cancellationToken).ConfigureAwait(false);
            }
            catch (RequestBudgetExhaustedException e)
            {
                http.StopForBudget(e, null, Progress(offset, since, max));
                yield break;
            }

            var records = new List<DynamicRecord>();
            int count;
            long? total;
            await using (response.ConfigureAwait(false))
            {
                response.EnsureMediaType("JSON", "json");
                using var document = await response.ReadJsonAsync(label, cancellationToken).ConfigureAwait(false);
                var root = document.RootElement;
                if (!(root.ValueKind == JsonValueKind.Object && root.TryGetProperty("success", out var success) && success.ValueKind == JsonValueKind.True
                    && root.TryGetProperty("result", out var result) && result.ValueKind == JsonValueKind.Object))
                {
                    var error = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error", out var err) ? err.GetRawText() : "no result";
                    throw new IngestionException($"Source '{context.SourceName}': CKAN refused {response.RedactedUrl}: {http.Redactor.Redact(ColumnValues.Clip(error))}") { SourceName = context.SourceName, Position = label };
                }

                mapper ??= new JsonRecordMapper(Columns(options, result, context.SourceName), key);
                if (!result.TryGetProperty("records", out var items) || items.ValueKind != JsonValueKind.Array)
                {
                    throw new IngestionException($"Source '{context.SourceName}': the CKAN answer at {label} has no records array.") { SourceName = context.SourceName, Position = label };
                }

                count = 0;
                foreach (var item in items.EnumerateArray())
                {
                    count++;
                    if (mapper.Map(item, $"record {offset + count}", context, http.Redactor) is { } record)
                    {
                        records.Add(record);
                    }

                    if (isIncremental && item.TryGetProperty(options.SortField, out var sortValue) && sortValue.ValueKind is JsonValueKind.Number or JsonValueKind.String)
                    {
                        var text = sortValue.ValueKind == JsonValueKind.String ? sortValue.GetString()! : sortValue.GetRawText();
                        if (max is null || Compare(text, max) > 0)
                        {
                            max = text;
                        }
                    }
                }

                total = result.TryGetProperty("total", out var t) && t.TryGetInt64(out var tv) ? tv : null;
                if (total is { } announced)
                {
                    context.ReportInputSize(announced);
                }
            }

            foreach (var record in records)
            {
                yield return record;
            }

            offset += count;
            var done = count == 0 || count < options.PageSize || (total is { } all && offset >= all);
            if (done)
            {
                break;
            }

            http.Checkpoint(null, Progress(offset, since, max));
        }

        http.Checkpoint(isIncremental ? max : null, JsonPaging.Values((OffsetKey, null), (SinceKey, null), (MaxKey, null)));
    }

    private static Dictionary<string, string> Progress(long offset, string? since, string? max) =>
        JsonPaging.Values((OffsetKey, JsonPaging.Format(offset)), (SinceKey, since), (MaxKey, max));

    private static int Compare(string a, string b)
    {
        if (decimal.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && decimal.TryParse(b, NumberStyles.Float, CultureInfo.InvariantCulture, out var y))
        {
            return x.CompareTo(y);
        }

        return string.CompareOrdinal(a, b);
    }

    /// <summary>
    /// The saved cursor as a SQL literal, never raw text: a number is re-formatted from its parsed value, a time
    /// from its parsed value; anything else is refused.
    /// </summary>
    internal static string SqlLiteral(string value, string sourceName)
    {
        if (decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            return number.ToString(CultureInfo.InvariantCulture);
        }

        if (DateTime.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var time))
        {
            return $"'{time.ToString("yyyy-MM-ddTHH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture)}'";
        }

        throw new IngestionException($"Source '{sourceName}': the saved cursor '{ColumnValues.Clip(value)}' is neither a number nor a date and time, so it cannot be used in datastore_search_sql; run a full refresh.") { SourceName = sourceName };
    }

    private static Uri Action(CkanSourceOptions o, string action) => new(new Uri(o.BaseUrl!.TrimEnd('/') + "/"), $"api/3/action/{action}");

    private static Uri SearchUrl(CkanSourceOptions o, long offset)
    {
        var url = Action(o, "datastore_search");
        url = JsonPaging.With(url, "resource_id", o.ResourceId);
        url = JsonPaging.With(url, "limit", JsonPaging.Format(o.PageSize));
        url = JsonPaging.With(url, "offset", JsonPaging.Format(offset));
        url = JsonPaging.With(url, "sort", $"{o.SortField} asc");
        if (o.Filters.Count > 0)
        {
            url = JsonPaging.With(url, "filters", JsonSerializer.Serialize(o.Filters));
        }

        return url;
    }

    private static Uri SqlUrl(CkanSourceOptions o, string? sinceLiteral, long offset)
    {
        var sql = new StringBuilder();
        sql.Append(CultureInfo.InvariantCulture, $"SELECT * FROM \"{o.ResourceId}\"");
        var conditions = new List<string>();
        if (sinceLiteral is not null)
        {
            conditions.Add($"\"{o.SortField}\" > {sinceLiteral}");
        }

        foreach (var (field, value) in o.Filters)
        {
            if (ColumnValues.IsValidColumnName(field))
            {
                conditions.Add($"\"{field}\" = '{value.Replace("'", "''", StringComparison.Ordinal)}'");
            }
        }

        if (conditions.Count > 0)
        {
            sql.Append(" WHERE ").Append(string.Join(" AND ", conditions));
        }

        sql.Append(CultureInfo.InvariantCulture, $" ORDER BY \"{o.SortField}\" LIMIT {o.PageSize} OFFSET {offset}");
        return JsonPaging.With(Action(o, "datastore_search_sql"), "sql", sql.ToString());
    }

    private static HttpRequestMessage Request(CkanSourceOptions o, Uri url)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.ParseAdd("application/json");
        if (o.ApiKey is { Length: > 0 } key)
        {
            request.Headers.TryAddWithoutValidation("Authorization", key);
        }

        return request;
    }

    private static List<ColumnMappingOptions> Columns(CkanSourceOptions o, JsonElement result, string sourceName)
    {
        if (o.Columns.Count > 0)
        {
            return o.Columns.ToList();
        }

        if (!result.TryGetProperty("fields", out var fields) || fields.ValueKind != JsonValueKind.Array)
        {
            throw new IngestionException($"Source '{sourceName}': the CKAN answer has no fields metadata; configure Columns.") { SourceName = sourceName };
        }

        var columns = new List<ColumnMappingOptions>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var field in fields.EnumerateArray())
        {
            var id = field.TryGetProperty("id", out var i) ? i.GetString() : null;
            if (string.IsNullOrEmpty(id))
            {
                continue;
            }

            var name = id.StartsWith('_') && ColumnValues.IsValidColumnName(id) ? id : ColumnValues.ToColumnName(id);
            if (!seen.Add(name))
            {
                continue;
            }

            columns.Add(new ColumnMappingOptions { Name = name, From = id, Type = MapType(field.TryGetProperty("type", out var t) ? t.GetString() : null) });
        }

        return columns;
    }
}
