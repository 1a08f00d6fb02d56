using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Ingestion.Sources.Mapping;

/// <summary>One target column of a dynamic source: where its value comes from and how it is typed.</summary>
public sealed class ColumnMappingOptions
{
    /// <summary>The target column name (letters, digits, <c>_</c>; validated, quoted by the sink).</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>
    /// Where the value is read: a CSV header, or a dotted path into a JSON item (<c>properties.name</c>,
    /// <c>tags.0</c>). Defaults to <see cref="Name"/>.
    /// </summary>
    public string? From { get; set; }

    /// <summary>The column type. Default <see cref="ColumnType.Text"/>.</summary>
    public ColumnType Type { get; set; } = ColumnType.Text;

    /// <summary>An exact format for dates and times (<c>yyyy-MM-dd</c>, <c>dd/MM/yyyy HH:mm</c>); otherwise the culture's forms.</summary>
    public string? Format { get; set; }

    /// <summary>Whether a missing or empty value rejects the record. Key columns are always required.</summary>
    public bool Required { get; set; }

    /// <summary>The source field name: <see cref="From"/>, or <see cref="Name"/>.</summary>
    public string SourceField => string.IsNullOrEmpty(From) ? Name : From;
}

/// <summary>Converts raw text and JSON values to the CLR values of <see cref="ColumnType"/>s, and validates mappings.</summary>
public static partial class ColumnValues
{
    /// <summary>Validates column mappings and key names, naming the settings.</summary>
    /// <param name="prefix">The configuration path of the source options.</param>
    /// <param name="columns">The mappings.</param>
    /// <param name="key">The key column names.</param>
    /// <returns>The problems found.</returns>
    public static IEnumerable<string> Validate(string prefix, IList<ColumnMappingOptions> columns, IList<string> key)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(key);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < columns.Count; i++)
        {
            var c = columns[i];
            if (!IdentifierPattern().IsMatch(c.Name ?? string.Empty))
            {
                yield return $"{prefix}:Columns:{i}:Name '{c.Name}' is not a valid column name (letters, digits and '_', starting with a letter or '_', at most 63).";
            }
            else if (!names.Add(c.Name!))
            {
                yield return $"{prefix}:Columns:{i}:Name '{c.Name}' appears twice.";
            }
        }

        var keyNames = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < key.Count; i++)
        {
            var k = key[i];
            if (!keyNames.Add(k))
            {
                yield return $"{prefix}:Key:{i} '{k}' appears twice in the key.";
            }
            else if (columns.Count > 0 && !names.Contains(k) && k != RecordSchema.SourceIdColumnName)
            {
                yield return $"{prefix}:Key names '{k}', which is not one of the Columns.";
            }
        }
    }

    /// <summary>Whether a name is a valid column name.</summary>
    /// <param name="name">The name.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidColumnName(string? name) => name is not null && IdentifierPattern().IsMatch(name);

    /// <summary>Turns a header or property name into a column name (<c>Date de début</c> becomes <c>date_de_debut</c>).</summary>
    /// <param name="name">The name.</param>
    /// <returns>A valid column name.</returns>
    public static string ToColumnName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var normalized = name.Normalize(System.Text.NormalizationForm.FormD);
        var sb = new System.Text.StringBuilder(normalized.Length);
        foreach (var ch in normalized)
        {
            if (CharUnicodeInfo.GetUnicodeCategory(ch) == UnicodeCategory.NonSpacingMark)
            {
                continue;
            }

            sb.Append(char.IsAsciiLetterOrDigit(ch) ? ch : '_');
        }

        var snake = RecordSchema.ToSnakeCase(sb.ToString());
        snake = MultipleUnderscores().Replace(snake, "_").Trim('_');
        if (snake.Length == 0 || char.IsAsciiDigit(snake[0]))
        {
            snake = "c_" + snake;
        }

        return snake.Length > 63 ? snake[..63] : snake;
    }

    /// <summary>Builds the record schema of mapped columns, with the given key (or the default <c>(source, source_id)</c> key when empty).</summary>
    /// <param name="columns">The mappings.</param>
    /// <param name="key">The key column names.</param>
    /// <param name="extra">Columns added after the mapped ones (e.g. a geometry or raw JSON column).</param>
    /// <returns>The schema.</returns>
    public static RecordSchema BuildSchema(IEnumerable<ColumnMappingOptions> columns, IList<string> key, params ColumnSchema[] extra)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(key);
        var keys = new HashSet<string>(key, StringComparer.Ordinal);
        var list = columns.Select(c => new ColumnSchema(c.Name, c.Type, isNullable: !c.Required && !keys.Contains(c.Name))).Concat(extra).ToList();
        return RecordSchema.Create(list, key.Count == 0 ? null : key);
    }

    /// <summary>Converts a text value.</summary>
    /// <param name="text">The raw text (trimmed by the caller when wanted); empty means null.</param>
    /// <param name="type">The target type.</param>
    /// <param name="culture">The culture of numbers and dates.</param>
    /// <param name="format">An exact date/time format, or <see langword="null"/>.</param>
    /// <param name="value">The converted value (null for empty text).</param>
    /// <returns><see langword="null"/> on success, otherwise why the value is not of the type.</returns>
    public static string? TryConvert(string? text, ColumnType type, CultureInfo culture, string? format, out object? value) =>
        TryConvert(text.AsSpan(), text, type, culture, format, out value);

    /// <summary>
    /// Converts a text value held in a span, so a number, date or boolean read from a buffer needs no string of its
    /// own; a string is made only for a text-like value (text, JSON, bytes, geometry) and for a message.
    /// </summary>
    /// <param name="chars">The raw text; empty means null.</param>
    /// <param name="text">The same text as a string when the caller has one, else <see langword="null"/>.</param>
    /// <param name="type">The target type.</param>
    /// <param name="culture">The culture of numbers and dates.</param>
    /// <param name="format">An exact date/time format, or <see langword="null"/>.</param>
    /// <param name="value">The converted value (null for empty text).</param>
    /// <returns><see langword="null"/> on success, otherwise why the value is not of the type.</returns>
    internal static string? TryConvert(ReadOnlySpan<char> chars, string? text, ColumnType type, CultureInfo culture, string? format, out object? value)
    {
        ArgumentNullException.ThrowIfNull(culture);
        value = null;
        if (chars.IsEmpty)
        {
            return null;
        }

        const NumberStyles Integer = NumberStyles.Integer;
        const NumberStyles Real = NumberStyles.Float | NumberStyles.AllowThousands;
        switch (type)
        {
            case ColumnType.Text:
            case ColumnType.Json:
                value = TextOf(chars, ref text);
                return null;
            case ColumnType.Boolean:
                if (bool.TryParse(chars, out var b))
                {
                    value = b;
                    return null;
                }

                switch (chars.Trim().ToString().ToUpperInvariant())
                {
                    case "1" or "Y" or "YES" or "T" or "O" or "OUI" or "VRAI":
                        value = true;
                        return null;
                    case "0" or "N" or "NO" or "F" or "NON" or "FAUX":
                        value = false;
                        return null;
                    default:
                        return $"'{Clip(TextOf(chars, ref text))}' is not a boolean";
                }

            case ColumnType.Int16:
                return short.TryParse(chars, Integer, culture, out var i16) ? Set(i16, out value) : Bad(TextOf(chars, ref text), "a 16-bit integer");
            case ColumnType.Int32:
                return int.TryParse(chars, Integer, culture, out var i32) ? Set(i32, out value) : Bad(TextOf(chars, ref text), "a 32-bit integer");
            case ColumnType.Int64:
                return long.TryParse(chars, Integer, culture, out var i64) ? Set(i64, out value) : Bad(TextOf(chars, ref text), "a 64-bit integer");
            case ColumnType.Float32:
                return float.TryParse(chars, Real, culture, out var f32) ? Set(f32, out value) : Bad(TextOf(chars, ref text), "a number");
            case ColumnType.Float64:
                return double.TryParse(chars, Real, culture, out var f64) ? Set(f64, out value) : Bad(TextOf(chars, ref text), "a number");
            case ColumnType.Decimal:
                return decimal.TryParse(chars, Real, culture, out var dec) ? Set(dec, out value) : Bad(TextOf(chars, ref text), "a decimal number");
            case ColumnType.Date:
                if (format is null && IsoDateTime.TryParse(chars, out var isoDate, out _, out var dateHasTime) && !dateHasTime)
                {
                    value = DateOnly.FromDateTime(isoDate);
                    return null;
                }

                if (format is not null ? DateOnly.TryParseExact(chars, format, culture, DateTimeStyles.None, out var d) : DateOnly.TryParse(chars, culture, DateTimeStyles.None, out d))
                {
                    value = d;
                    return null;
                }

                if (format is null && DateTimeOffset.TryParse(chars, culture, DateTimeStyles.None, out var asDateTime))
                {
                    value = DateOnly.FromDateTime(asDateTime.Date);
                    return null;
                }

                return Bad(TextOf(chars, ref text), format is null ? "a date" : $"a date in format {format}");
            case ColumnType.TimestampTz:
                {
                    if (format is null && IsoDateTime.TryParse(chars, out var isoTz, out var isoOffset, out _))
                    {
                        return Set(new DateTimeOffset(isoTz, isoOffset ?? TimeSpan.Zero), out value);
                    }

                    var ok = format is not null
                        ? DateTimeOffset.TryParseExact(chars, format, culture, DateTimeStyles.AssumeUniversal, out var dto)
                        : DateTimeOffset.TryParse(chars, culture, DateTimeStyles.AssumeUniversal, out dto);
                    return ok ? Set(dto, out value) : Bad(TextOf(chars, ref text), format is null ? "a date and time" : $"a date and time in format {format}");
                }

            case ColumnType.Timestamp:
                {
                    // With an offset the general parser converts to the machine's local time: that stays its business.
                    if (format is null && IsoDateTime.TryParse(chars, out var isoTs, out var tsOffset, out _) && tsOffset is null)
                    {
                        return Set(isoTs, out value);
                    }

                    var ok = format is not null
                        ? DateTime.TryParseExact(chars, format, culture, DateTimeStyles.None, out var dt)
                        : DateTime.TryParse(chars, culture, DateTimeStyles.None, out dt);
                    return ok ? Set(DateTime.SpecifyKind(dt, DateTimeKind.Unspecified), out value) : Bad(TextOf(chars, ref text), format is null ? "a date and time" : $"a date and time in format {format}");
                }

            case ColumnType.Uuid:
                return Guid.TryParse(chars, out var g) ? Set(g, out value) : Bad(TextOf(chars, ref text), "a UUID");
            case ColumnType.Bytes:
                try
                {
                    value = Convert.FromBase64String(TextOf(chars, ref text));
                    return null;
                }
                catch (FormatException)
                {
                    return Bad(TextOf(chars, ref text), "base64 bytes");
                }

            case ColumnType.Geometry:
                return chars.TrimStart().StartsWith('{') ? Set(new GeoJsonGeometry(TextOf(chars, ref text)), out value) : Bad(TextOf(chars, ref text), "a GeoJSON geometry");
            default:
                return $"column type {type} is not supported";
        }
    }

    /// <summary>Converts a JSON value: numbers, strings, booleans; objects and arrays only to <see cref="ColumnType.Json"/>, <see cref="ColumnType.Text"/> (their JSON text) or <see cref="ColumnType.Geometry"/>.</summary>
    /// <param name="element">The value.</param>
    /// <param name="type">The target type.</param>
    /// <param name="format">An exact date/time format, or <see langword="null"/>.</param>
    /// <param name="value">The converted value (null for JSON null).</param>
    /// <returns><see langword="null"/> on success, otherwise why the value is not of the type.</returns>
    public static string? TryConvert(JsonElement element, ColumnType type, string? format, out object? value)
    {
        value = null;
        switch (element.ValueKind)
        {
            case JsonValueKind.Null or JsonValueKind.Undefined:
                return null;
            case JsonValueKind.Object or JsonValueKind.Array:
                return type switch
                {
                    ColumnType.Json or ColumnType.Text => Set(element.GetRawText(), out value),
                    ColumnType.Geometry when element.ValueKind == JsonValueKind.Object => Set(new GeoJsonGeometry(element.GetRawText()), out value),
                    _ => $"a JSON {element.ValueKind.ToString().ToLowerInvariant()} is not {type}",
                };
            case JsonValueKind.True or JsonValueKind.False:
                return type switch
                {
                    ColumnType.Boolean => Set(element.GetBoolean(), out value),
                    ColumnType.Text => Set(element.GetBoolean() ? "true" : "false", out value),
                    ColumnType.Json => Set(element.GetRawText(), out value),
                    _ => $"a JSON boolean is not {type}",
                };
            case JsonValueKind.Number:
                switch (type)
                {
                    case ColumnType.Int16 when element.TryGetInt16(out var s):
                        return Set(s, out value);
                    case ColumnType.Int32 when element.TryGetInt32(out var i):
                        return Set(i, out value);
                    case ColumnType.Int64 when element.TryGetInt64(out var l):
                        return Set(l, out value);
                    case ColumnType.Float32 when element.TryGetSingle(out var f):
                        return Set(f, out value);
                    case ColumnType.Float64 when element.TryGetDouble(out var d):
                        return Set(d, out value);
                    case ColumnType.Decimal when element.TryGetDecimal(out var m):
                        return Set(m, out value);
                    case ColumnType.Text or ColumnType.Json:
                        return Set(element.GetRawText(), out value);
                    case ColumnType.Boolean:
                        return element.GetRawText() switch { "1" => Set(true, out value), "0" => Set(false, out value), var t => Bad(t, "a boolean") };
                    case ColumnType.TimestampTz when element.TryGetInt64(out var epoch):
                        return Set(epoch > 100_000_000_000 ? DateTimeOffset.FromUnixTimeMilliseconds(epoch) : DateTimeOffset.FromUnixTimeSeconds(epoch), out value);
                    default:
                        return Bad(element.GetRawText(), type.ToString());
                }

            default:
                var text = element.GetString();
                return type == ColumnType.Json
                    ? Set(element.GetRawText(), out value)
                    : TryConvert(text, type, CultureInfo.InvariantCulture, format, out value);
        }
    }

    /// <summary>Finds a dotted path (<c>a.b.0.c</c>) in a JSON value.</summary>
    /// <param name="root">The value to start from.</param>
    /// <param name="path">The path; empty means the root itself.</param>
    /// <param name="found">The value found.</param>
    /// <returns>Whether the path exists.</returns>
    public static bool TryGetPath(JsonElement root, string? path, out JsonElement found)
    {
        found = root;
        if (string.IsNullOrEmpty(path))
        {
            return true;
        }

        foreach (var part in path.Split('.'))
        {
            if (found.ValueKind == JsonValueKind.Object && found.TryGetProperty(part, out var next))
            {
                found = next;
            }
            else if (found.ValueKind == JsonValueKind.Array && int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < found.GetArrayLength())
            {
                found = found[index];
            }
            else
            {
                found = default;
                return false;
            }
        }

        return true;
    }

    /// <summary>Shortens a value for a message.</summary>
    /// <param name="text">The value.</param>
    /// <returns>At most 80 characters.</returns>
    public static string Clip(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Length <= 80 ? text : string.Concat(text.AsSpan(0, 77), "...");
    }

    private static string? Set<T>(T v, out object? value)
    {
        value = v;
        return null;
    }

    private static string TextOf(ReadOnlySpan<char> chars, ref string? text) => text ??= chars.ToString();

    private static string Bad(string text, string what) => $"'{Clip(text)}' is not {what}";

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
    private static partial Regex IdentifierPattern();

    [GeneratedRegex("_+")]
    private static partial Regex MultipleUnderscores();
}
