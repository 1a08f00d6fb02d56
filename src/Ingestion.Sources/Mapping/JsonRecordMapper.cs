using System.Text.Json;
using Ingestion.Sources.Http;

namespace Ingestion.Sources.Mapping;

/// <summary>Maps JSON items (API items, CKAN records, GeoJSON features) to dynamic records; bad items become rejected records naming the field.</summary>
internal sealed class JsonRecordMapper
{
    private readonly ColumnMappingOptions[] _columns;
    private readonly bool[] _required;
    private readonly int _rawOrdinal = -1;
    private readonly int _geometryOrdinal = -1;
    private readonly string? _geometryPath;

    public JsonRecordMapper(IEnumerable<ColumnMappingOptions> columns, IList<string> key, string? rawJsonColumn = null, string? geometryColumn = null, string? geometryPath = null)
    {
        _columns = columns.ToArray();
        var extra = new List<ColumnSchema>();
        if (!string.IsNullOrEmpty(geometryColumn))
        {
            extra.Add(new ColumnSchema(geometryColumn, ColumnType.Geometry));
            _geometryPath = geometryPath ?? "geometry";
        }

        if (!string.IsNullOrEmpty(rawJsonColumn))
        {
            extra.Add(new ColumnSchema(rawJsonColumn, ColumnType.Json));
        }

        Schema = ColumnValues.BuildSchema(_columns, key, extra.ToArray());
        _required = _columns.Select(c => c.Required || key.Contains(c.Name)).ToArray();
        if (!string.IsNullOrEmpty(geometryColumn))
        {
            _geometryOrdinal = Schema.IndexOf(geometryColumn);
        }

        if (!string.IsNullOrEmpty(rawJsonColumn))
        {
            _rawOrdinal = Schema.IndexOf(rawJsonColumn);
        }
    }

    public RecordSchema Schema { get; }

    /// <summary>Maps one item, or rejects it through the context and returns <see langword="null"/>.</summary>
    public DynamicRecord? Map(JsonElement item, string position, IngestionContext context, HttpRedactor redactor)
    {
        var record = new DynamicRecord(Schema);
        for (var i = 0; i < _columns.Length; i++)
        {
            var column = _columns[i];
            object? value = null;
            if (ColumnValues.TryGetPath(item, column.SourceField, out var element))
            {
                var error = ColumnValues.TryConvert(element, column.Type, column.Format, out value);
                if (error is not null)
                {
                    context.Reject(new RejectedRecord(position, column.Name, $"Field '{column.SourceField}': {error}.", Raw(item, redactor)));
                    return null;
                }
            }

            if (value is null && _required[i])
            {
                context.Reject(new RejectedRecord(position, column.Name, $"Field '{column.SourceField}' is missing or null, and column '{column.Name}' is required.", Raw(item, redactor)));
                return null;
            }

            record[Schema.IndexOf(column.Name)] = value;
        }

        if (_geometryOrdinal >= 0 && ColumnValues.TryGetPath(item, _geometryPath, out var geometry) && geometry.ValueKind != JsonValueKind.Null)
        {
            if (geometry.ValueKind != JsonValueKind.Object || !geometry.TryGetProperty("type", out _))
            {
                context.Reject(new RejectedRecord(position, Schema.Columns[_geometryOrdinal].Name, $"Field '{_geometryPath}' is not a GeoJSON geometry object.", Raw(item, redactor)));
                return null;
            }

            record[_geometryOrdinal] = new GeoJsonGeometry(geometry.GetRawText());
        }

        if (_rawOrdinal >= 0)
        {
            record[_rawOrdinal] = item.GetRawText();
        }

        return record;
    }

    /// <summary>The item's JSON, clipped to 2,000 characters and redacted, for a rejected record.</summary>
    public static string Raw(JsonElement item, HttpRedactor redactor)
    {
        var text = item.GetRawText();
        return redactor.Redact(text.Length <= 2000 ? text : text[..2000]);
    }
}
