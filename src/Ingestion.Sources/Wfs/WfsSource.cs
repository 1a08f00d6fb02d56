using System.Runtime.CompilerServices;
using System.Text.Json;
using Ingestion.Sources.Http;
using Ingestion.Sources.JsonApi;
using Ingestion.Sources.Mapping;
using Microsoft.Extensions.Options;

namespace Ingestion.Sources.Wfs;

/// <summary>
/// OGC WFS <c>GetFeature</c> with GeoJSON output, paged with <c>startIndex</c>/<c>count</c> (or one GeoJSON
/// FeatureCollection from a URL or file): properties become columns and the geometry a PostGIS column. Each page
/// ends with a checkpoint, so a failed run resumes at the next page.
/// </summary>
/// <param name="http">The HTTP layer.</param>
/// <param name="options">The options, named by source.</param>
public sealed class WfsSource(ISourceHttpClientFactory http, IOptionsMonitor<WfsSourceOptions> options) : HttpSourceBase<WfsSourceOptions, DynamicRecord>(http, options)
{
    /// <summary>The state value holding the next start index of an unfinished run.</summary>
    public const string StartIndexKey = "wfs.start";

    /// <inheritdoc />
    protected override async IAsyncEnumerable<DynamicRecord> ReadAsync(IngestionContext context, WfsSourceOptions options, SourceHttpClient http, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        JsonRecordMapper? mapper = null;
        if (string.IsNullOrEmpty(options.TypeName))
        {
            var document = await http.OpenDocumentAsync(options.Url!, cancellationToken).ConfigureAwait(false);
            if (document is null)
            {
                yield break;
            }

            await using (document.ConfigureAwait(false))
            {
                List<DynamicRecord> all;
                try
                {
                    using var json = await JsonDocument.ParseAsync(document.Content, default, cancellationToken).ConfigureAwait(false);
                    (all, _, _) = ReadPage(json.RootElement, options, ref mapper, 0, context, http.Redactor, document.Location);
                }
                catch (JsonException e)
                {
                    throw new IngestionException($"Source '{context.SourceName}': malformed GeoJSON in {document.Location} at line {(e.LineNumber ?? 0) + 1}: {e.Message}", e) { SourceName = context.SourceName, Position = document.Location };
                }

                foreach (var record in all)
                {
                    yield return record;
                }

                http.Checkpoint(null, document: document);
            }

            yield break;
        }

        var start = context.Mode == IngestionMode.Incremental && context.State.Values.TryGetValue(StartIndexKey, out var saved) ? JsonPaging.ParseLong(saved) ?? 0 : 0;
        for (var page = 1; page <= options.MaxPages; page++)
        {
            var url = PageUrl(options, start);
            SourceHttpResponse response;
            try
            {
                response = await http.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, url), allowNotModified: false, cancellationToken).ConfigureAwait(false);
            }
            catch (RequestBudgetExhaustedException e)
            {
                http.StopForBudget(e, null, JsonPaging.Values((StartIndexKey, JsonPaging.Format(start))));
                yield break;
            }

            List<DynamicRecord> records;
            int count;
            long? matched;
            await using (response.ConfigureAwait(false))
            {
                response.EnsureMediaType("GeoJSON", "json");
                using var json = await response.ReadJsonAsync($"startIndex {start}", cancellationToken).ConfigureAwait(false);
                (records, count, matched) = ReadPage(json.RootElement, options, ref mapper, start, context, http.Redactor, response.RedactedUrl);
            }

            foreach (var record in records)
            {
                yield return record;
            }

            start += count;
            if (count == 0 || count < options.PageSize || (matched is { } m && start >= m))
            {
                break;
            }

            http.Checkpoint(null, JsonPaging.Values((StartIndexKey, JsonPaging.Format(start))));
        }

        http.Checkpoint(null, JsonPaging.Values((StartIndexKey, null)));
    }

    private static Uri PageUrl(WfsSourceOptions o, long start)
    {
        var url = new Uri(o.Url!);
        url = JsonPaging.With(url, "service", "WFS");
        url = JsonPaging.With(url, "version", o.Version);
        url = JsonPaging.With(url, "request", "GetFeature");
        url = JsonPaging.With(url, o.Version.StartsWith('1') ? "typeName" : "typeNames", o.TypeName);
        url = JsonPaging.With(url, "outputFormat", o.OutputFormat);
        url = JsonPaging.With(url, "srsName", o.SrsName);
        url = JsonPaging.With(url, o.Version.StartsWith('1') ? "maxFeatures" : "count", JsonPaging.Format(o.PageSize));
        return JsonPaging.With(url, "startIndex", JsonPaging.Format(start));
    }

    private static (List<DynamicRecord> Records, int Count, long? Matched) ReadPage(JsonElement root, WfsSourceOptions o, ref JsonRecordMapper? mapper, long start, IngestionContext context, HttpRedactor redactor, string where)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("features", out var features) || features.ValueKind != JsonValueKind.Array)
        {
            throw new IngestionException($"Source '{context.SourceName}': {where} is not a GeoJSON FeatureCollection (no features array).") { SourceName = context.SourceName, Position = $"startIndex {start}" };
        }

        mapper ??= CreateMapper(o, features);
        var records = new List<DynamicRecord>();
        var count = 0;
        foreach (var feature in features.EnumerateArray())
        {
            count++;
            if (mapper.Map(feature, $"feature {start + count}", context, redactor) is { } record)
            {
                records.Add(record);
            }
        }

        long? matched = root.TryGetProperty("numberMatched", out var n) && n.TryGetInt64(out var nv) ? nv
            : root.TryGetProperty("totalFeatures", out var tf) && tf.TryGetInt64(out var tv) ? tv : null;
        return (records, count, matched);
    }

    private static JsonRecordMapper CreateMapper(WfsSourceOptions o, JsonElement features)
    {
        var columns = new List<ColumnMappingOptions>();
        if (o.Columns.Count > 0)
        {
            columns.AddRange(o.Columns.Select(c => new ColumnMappingOptions
            {
                Name = c.Name,
                From = c.SourceField == "@id" ? "id" : "properties." + c.SourceField,
                Type = c.Type,
                Format = c.Format,
                Required = c.Required,
            }));
        }
        else
        {
            columns.Add(new ColumnMappingOptions { Name = "feature_id", From = "id" });
            var seen = new HashSet<string>(StringComparer.Ordinal) { "feature_id", o.GeometryColumn ?? string.Empty };
            if (features.GetArrayLength() > 0 && features[0].TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in properties.EnumerateObject())
                {
                    var name = ColumnValues.ToColumnName(p.Name);
                    if (seen.Add(name))
                    {
                        columns.Add(new ColumnMappingOptions { Name = name, From = "properties." + p.Name });
                    }
                }
            }
        }

        var key = o.Key.Count > 0 ? o.Key : (IList<string>)["feature_id"];
        return new JsonRecordMapper(columns, key, geometryColumn: string.IsNullOrEmpty(o.GeometryColumn) ? null : o.GeometryColumn, geometryPath: "geometry");
    }
}
