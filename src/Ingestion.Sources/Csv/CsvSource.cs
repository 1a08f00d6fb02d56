using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Unicode;
using CsvHelper;
using Ingestion.Sources.Http;
using Ingestion.Sources.Mapping;
using Microsoft.Extensions.Options;

namespace Ingestion.Sources.Csv;

/// <summary>
/// A CSV file (local path or URL) read into dynamic records: RFC 4180 quoting (CsvHelper), any delimiter,
/// encoding and culture, headers mapped to typed columns. A bad line becomes a rejected record with its
/// line number and raw text; files of any size stream. An unchanged file ends the run as not modified.
/// </summary>
/// <param name="http">The HTTP layer (used when the location is a URL).</param>
/// <param name="options">The CSV options, named by source.</param>
public sealed class CsvSource(ISourceHttpClientFactory http, IOptionsMonitor<CsvSourceOptions> options) : HttpSourceBase<CsvSourceOptions, DynamicRecord>(http, options)
{
    /// <inheritdoc />
    protected override async IAsyncEnumerable<DynamicRecord> ReadAsync(IngestionContext context, CsvSourceOptions options, SourceHttpClient http, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var document = await http.OpenDocumentAsync(options.Location!, cancellationToken).ConfigureAwait(false);
        if (document is null)
        {
            yield break;
        }

        await using (document.ConfigureAwait(false))
        {
            var file = CsvReading.Open(document, options, context, http.Redactor);
            await using (file.ConfigureAwait(false))
            {
                var csv = file.Reader;
                var columns = await ResolveColumnsAsync(csv, options, context.SourceName, document.Location, cancellationToken).ConfigureAwait(false);
                var mappings = columns.Select(c => c.Mapping).ToArray();
                if (options.Key.Count == 0 && !mappings.Any(m => m.Name == RecordSchema.SourceIdColumnName))
                {
                    throw new IngestionException($"Source '{context.SourceName}': Key is not set (Ingestion:Sources:{context.SourceName}:Key), so records are keyed by (source, source_id), but {document.Location} has no column that becomes source_id; its columns are {string.Join(", ", mappings.Select(m => m.Name))}. Set Key to the columns that identify a row.")
                    {
                        SourceName = context.SourceName,
                        Position = "line 1",
                        Field = "Key",
                    };
                }

                var schema = ColumnValues.BuildSchema(mappings, options.Key);
                var ordinals = mappings.Select(m => schema.IndexOf(m.Name)).ToArray();
                var required = mappings.Select(m => m.Required || options.Key.Contains(m.Name)).ToArray();
                var indexes = columns.Select(c => c.Index).ToArray();
                var culture = options.CultureInfo;
                var width = schema.Columns.Count;
                var isText = mappings.Select(m => m.Type == ColumnType.Text).ToArray();
                var asString = mappings.Select(m => m.Type is ColumnType.Text or ColumnType.Json or ColumnType.Bytes or ColumnType.Geometry).ToArray();
                var buffer = new char[256];
                while (await file.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var values = new object?[width];
                    string? error = null;
                    var at = -1;
                    for (var i = 0; i < indexes.Length; i++)
                    {
                        var index = indexes[i];
                        object? value = null;
                        if (csv.IsNull(index))
                        {
                            value = isText[i] && CsvReading.IsEmptyString(csv.GetRawSpan(index), options) ? string.Empty : null;
                        }
                        else
                        {
                            // Text-like values become strings; numbers, dates and booleans are parsed from a reused buffer.
                            string? text = null;
                            ReadOnlySpan<char> chars;
                            if (asString[i])
                            {
                                text = csv.GetString(index);
                                chars = text;
                            }
                            else
                            {
                                var most = csv.GetRawSpan(index).Length;
                                if (most > buffer.Length)
                                {
                                    buffer = new char[Math.Max(most, buffer.Length * 2)];
                                }

                                try
                                {
                                    chars = buffer.AsSpan(0, csv.GetChars(index, buffer));
                                }
                                catch (ArgumentException)
                                {
                                    // Longer decoded than its raw bytes (not expected): take it as a string.
                                    text = csv.GetString(index);
                                    chars = text;
                                }
                            }

                            // U+FFFD is what undecodable bytes become; written as such in valid UTF-8 it is a character like any other.
                            if (file.AssumeUtf8 && chars.Contains('\uFFFD') && !Utf8.IsValid(csv.GetRawSpan(index)))
                            {
                                error = $"'{ColumnValues.Clip(text ?? chars.ToString())}' is not valid UTF-8; set Encoding (e.g. windows-1252)";
                            }
                            else
                            {
                                error = ColumnValues.TryConvert(chars, text, mappings[i].Type, culture, mappings[i].Format, out value);
                            }
                        }

                        if (error is null && value is null or "" && required[i])
                        {
                            error = "the value is empty, and the column is required";
                        }

                        if (error is not null)
                        {
                            at = i;
                            break;
                        }

                        values[ordinals[i]] = value;
                    }

                    if (error is not null)
                    {
                        var field = mappings[at];
                        context.Reject(new RejectedRecord(
                            $"line {csv.LineNumber}",
                            field.Name,
                            $"Field '{field.SourceField}' (column {indexes[at] + 1}): {error}.",
                            file.Raw()));
                        continue;
                    }

                    yield return new DynamicRecord(schema, values);
                }
            }

            http.Checkpoint(null, document: document);
        }
    }

    private static async Task<IReadOnlyList<(ColumnMappingOptions Mapping, int Index)>> ResolveColumnsAsync(CsvReader csv, CsvSourceOptions options, string sourceName, string location, CancellationToken cancellationToken)
    {
        try
        {
            await csv.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (CsvFormatException e)
        {
            throw new IngestionException($"Source '{sourceName}': the header of {location} is unreadable: {e.Message}", e) { SourceName = sourceName, Position = "line 1" };
        }

        var headers = csv.Headers;
        if (options.Columns.Count == 0)
        {
            if (headers.Count == 0)
            {
                throw new IngestionException($"Source '{sourceName}': {location} is empty (no header).") { SourceName = sourceName, Position = "line 1" };
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            return headers.Select((h, i) =>
            {
                var name = ColumnValues.ToColumnName(h);
                var unique = name;
                for (var n = 2; !seen.Add(unique); n++)
                {
                    unique = $"{name}_{n}";
                }

                return (new ColumnMappingOptions { Name = unique, From = h }, i);
            }).ToList();
        }

        var result = new List<(ColumnMappingOptions, int)>(options.Columns.Count);
        foreach (var column in options.Columns)
        {
            int index;
            if (!options.HasHeader)
            {
                index = int.Parse(column.SourceField, NumberStyles.None, CultureInfo.InvariantCulture) - 1;
            }
            else if (!csv.TryGetFieldIndex(column.SourceField, out index))
            {
                throw new IngestionException($"Source '{sourceName}': {location} has no column '{column.SourceField}' (for column '{column.Name}'); its header has: {string.Join(", ", headers.Select(h => $"'{h}'"))}.")
                {
                    SourceName = sourceName,
                    Position = "line 1",
                    Field = column.Name,
                };
            }

            result.Add((column, index));
        }

        return result;
    }
}

/// <summary>
/// A CSV file (local path or URL) read into typed records of a CsvHelper <c>[CsvRecord]</c> partial class: the
/// mapping code is generated at compile time (no reflection per row). A record that does not map (a field that
/// does not parse) becomes a rejected record with its line, member and raw text.
/// </summary>
/// <typeparam name="TRecord">A <c>[CsvRecord]</c> partial class that is also an Ingestion record (a <c>[RecordKey]</c> or a <c>SourceId</c>).</typeparam>
/// <param name="http">The HTTP layer (used when the location is a URL).</param>
/// <param name="options">The CSV options, named by source.</param>
public sealed class CsvSource<TRecord>(ISourceHttpClientFactory http, IOptionsMonitor<CsvSourceOptions> options) : HttpSourceBase<CsvSourceOptions, TRecord>(http, options)
    where TRecord : class
{
    /// <inheritdoc />
    protected override async IAsyncEnumerable<TRecord> ReadAsync(IngestionContext context, CsvSourceOptions options, SourceHttpClient http, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var document = await http.OpenDocumentAsync(options.Location!, cancellationToken).ConfigureAwait(false);
        if (document is null)
        {
            yield break;
        }

        await using (document.ConfigureAwait(false))
        {
            var file = CsvReading.Open(document, options, context, http.Redactor);
            await using (file.ConfigureAwait(false))
            {
                var csv = file.Reader;
                CsvRecordMapper<TRecord> mapper;
                try
                {
                    await csv.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
                    mapper = CsvRecordMapper.Create<TRecord>(csv);
                }
                catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or CsvFormatException)
                {
                    throw new IngestionException($"Source '{context.SourceName}': cannot map {document.Location} to {typeof(TRecord).Name} (it must be a [CsvRecord] partial class whose columns are in the header): {e.Message}", e)
                    {
                        SourceName = context.SourceName,
                        Position = "line 1",
                    };
                }

                while (await file.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    TRecord? record = null;
                    try
                    {
                        record = csv.GetRecord(mapper);
                    }
                    catch (CsvFormatException e)
                    {
                        var field = e.FieldIndex >= 0 && e.FieldIndex < csv.Headers.Count ? csv.Headers[e.FieldIndex] : e.Member;
                        context.Reject(new RejectedRecord(
                            $"line {csv.LineNumber}",
                            field,
                            http.Redactor.Redact(e.InnerException?.Message ?? e.Message),
                            file.Raw()));
                    }

                    if (record is not null)
                    {
                        yield return record;
                    }
                }
            }

            http.Checkpoint(null, document: document);
        }
    }
}
