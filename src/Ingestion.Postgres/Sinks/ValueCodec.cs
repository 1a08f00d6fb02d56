using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// Validates, hashes and writes values in binary COPY. The methods are generic over the value type and
/// branch on <c>typeof(T)</c>, which the JIT folds away for value types: no boxing, no per-row reflection.
/// </summary>
internal static class ValueCodec
{
    /// <summary>Why <paramref name="value"/> (not null) cannot go into <paramref name="column"/>, or <see langword="null"/> when it can.</summary>
    public static string? Validate<T>(T value, PgColumn column)
    {
        if (typeof(T) == typeof(string))
        {
            return ValidateString(Unsafe.As<T, string>(ref value), column);
        }

        if (typeof(T) == typeof(short))
        {
            return ValidateInteger(Unsafe.As<T, short>(ref value), column);
        }

        if (typeof(T) == typeof(int))
        {
            return ValidateInteger(Unsafe.As<T, int>(ref value), column);
        }

        if (typeof(T) == typeof(long))
        {
            return ValidateInteger(Unsafe.As<T, long>(ref value), column);
        }

        if (typeof(T) == typeof(float))
        {
            return ValidateFloat(Unsafe.As<T, float>(ref value), column);
        }

        if (typeof(T) == typeof(double))
        {
            return ValidateFloat(Unsafe.As<T, double>(ref value), column);
        }

        if (typeof(T) == typeof(decimal))
        {
            return ValidateDecimal(Unsafe.As<T, decimal>(ref value), column);
        }

        if (typeof(T) == typeof(DateTime))
        {
            var dt = Unsafe.As<T, DateTime>(ref value);
            return column.Kind == PgKind.TimestampTz && dt.Kind == DateTimeKind.Unspecified
                ? $"DateTime {dt.ToString("O", CultureInfo.InvariantCulture)} has an unspecified kind, but column '{column.Name}' is timestamptz (an instant): give it DateTimeKind.Utc or use DateTimeOffset."
                : null;
        }

        if (typeof(T) == typeof(GeoPoint))
        {
            var p = Unsafe.As<T, GeoPoint>(ref value);
            return p.IsValid ? null : $"Point ({p.Longitude.ToString(CultureInfo.InvariantCulture)}, {p.Latitude.ToString(CultureInfo.InvariantCulture)}) is not a valid WGS 84 longitude/latitude.";
        }

        if (typeof(T) == typeof(GeoJsonGeometry))
        {
            return Ewkb.TryFromGeoJson(Unsafe.As<T, GeoJsonGeometry>(ref value).Json, out _, out var problem) ? null : problem;
        }

        if (value is NetTopologySuite.Geometries.Geometry nts)
        {
            return Ewkb.Check(nts, column);
        }

        return null;
    }

    /// <summary>Writes <paramref name="value"/> (validated, not null) as the column's type.</summary>
    public static void Write<T>(BinaryCopyWriter writer, T value, PgColumn column)
    {
        if (typeof(T) == typeof(string))
        {
            writer.WriteText(Unsafe.As<T, string>(ref value), jsonb: column.Kind == PgKind.Jsonb);
        }
        else if (typeof(T) == typeof(short))
        {
            WriteInteger(writer, Unsafe.As<T, short>(ref value), column);
        }
        else if (typeof(T) == typeof(int))
        {
            WriteInteger(writer, Unsafe.As<T, int>(ref value), column);
        }
        else if (typeof(T) == typeof(long))
        {
            WriteInteger(writer, Unsafe.As<T, long>(ref value), column);
        }
        else if (typeof(T) == typeof(float))
        {
            WriteFloat(writer, Unsafe.As<T, float>(ref value), column);
        }
        else if (typeof(T) == typeof(double))
        {
            WriteFloat(writer, Unsafe.As<T, double>(ref value), column);
        }
        else if (typeof(T) == typeof(decimal))
        {
            var d = Unsafe.As<T, decimal>(ref value);
            if (column.Kind == PgKind.Float64)
            {
                writer.WriteFloat64((double)d);
            }
            else
            {
                writer.WriteNumeric(d);
            }
        }
        else if (typeof(T) == typeof(bool))
        {
            writer.WriteBoolean(Unsafe.As<T, bool>(ref value));
        }
        else if (typeof(T) == typeof(DateOnly))
        {
            writer.WriteDate(Unsafe.As<T, DateOnly>(ref value));
        }
        else if (typeof(T) == typeof(DateTime))
        {
            // timestamptz takes the instant (a local time converted; unspecified ones were rejected), timestamp the wall-clock reading.
            var dt = Unsafe.As<T, DateTime>(ref value);
            writer.WriteTimestamp(column.Kind == PgKind.TimestampTz && dt.Kind == DateTimeKind.Local ? dt.ToUniversalTime() : dt);
        }
        else if (typeof(T) == typeof(DateTimeOffset))
        {
            var dto = Unsafe.As<T, DateTimeOffset>(ref value);
            writer.WriteTimestamp(column.Kind == PgKind.TimestampTz ? dto.UtcDateTime : dto.DateTime);
        }
        else if (typeof(T) == typeof(Guid))
        {
            writer.WriteUuid(Unsafe.As<T, Guid>(ref value));
        }
        else if (typeof(T) == typeof(byte[]))
        {
            writer.WriteBytes(Unsafe.As<T, byte[]>(ref value));
        }
        else if (typeof(T) == typeof(GeoPoint))
        {
            // PostGIS geometry_recv reads EWKB: binary COPY sends it as the field's raw bytes.
            writer.WriteBytes(Ewkb.Point(Unsafe.As<T, GeoPoint>(ref value)));
        }
        else if (typeof(T) == typeof(GeoJsonGeometry))
        {
            _ = Ewkb.TryFromGeoJson(Unsafe.As<T, GeoJsonGeometry>(ref value).Json, out var ewkb, out var problem);
            writer.WriteBytes(ewkb ?? throw new InvalidOperationException(problem));
        }
        else if (value is NetTopologySuite.Geometries.Geometry nts)
        {
            writer.WriteBytes(Ewkb.FromNts(nts));
        }
        else
        {
            throw new NotSupportedException($"Values of type {typeof(T).Name} cannot be written.");
        }
    }

    /// <summary>Adds a value (not null) to a hash, normalized so that equal stored values hash equally (integers as 64-bit, times to the microsecond).</summary>
    public static void Hash<T>(ref RowHasher hasher, T value)
    {
        if (typeof(T) == typeof(string))
        {
            hasher.Add(Unsafe.As<T, string>(ref value));
        }
        else if (typeof(T) == typeof(short))
        {
            hasher.Add((ulong)Unsafe.As<T, short>(ref value));
        }
        else if (typeof(T) == typeof(int))
        {
            hasher.Add((ulong)Unsafe.As<T, int>(ref value));
        }
        else if (typeof(T) == typeof(long))
        {
            hasher.Add((ulong)Unsafe.As<T, long>(ref value));
        }
        else if (typeof(T) == typeof(float))
        {
            hasher.Add(BitConverter.DoubleToUInt64Bits(Unsafe.As<T, float>(ref value)));
        }
        else if (typeof(T) == typeof(double))
        {
            hasher.Add(BitConverter.DoubleToUInt64Bits(Unsafe.As<T, double>(ref value)));
        }
        else if (typeof(T) == typeof(decimal))
        {
            HashDecimal(ref hasher, Unsafe.As<T, decimal>(ref value));
        }
        else if (typeof(T) == typeof(bool))
        {
            hasher.Add(Unsafe.As<T, bool>(ref value) ? 1UL : 2UL);
        }
        else if (typeof(T) == typeof(DateOnly))
        {
            hasher.Add((ulong)Unsafe.As<T, DateOnly>(ref value).DayNumber);
        }
        else if (typeof(T) == typeof(DateTime))
        {
            var dt = Unsafe.As<T, DateTime>(ref value);
            hasher.Add((ulong)((dt.Kind == DateTimeKind.Local ? dt.ToUniversalTime() : dt).Ticks / 10));
        }
        else if (typeof(T) == typeof(DateTimeOffset))
        {
            hasher.Add((ulong)(Unsafe.As<T, DateTimeOffset>(ref value).UtcTicks / 10));
        }
        else if (typeof(T) == typeof(Guid))
        {
            var g = Unsafe.As<T, Guid>(ref value);
            hasher.Add(MemoryMarshal.AsBytes(new ReadOnlySpan<Guid>(in g)));
        }
        else if (typeof(T) == typeof(byte[]))
        {
            hasher.Add(Unsafe.As<T, byte[]>(ref value));
        }
        else if (typeof(T) == typeof(GeoPoint))
        {
            var p = Unsafe.As<T, GeoPoint>(ref value);
            hasher.Add(BitConverter.DoubleToUInt64Bits(p.Longitude));
            hasher.Add(BitConverter.DoubleToUInt64Bits(p.Latitude));
        }
        else if (typeof(T) == typeof(GeoJsonGeometry))
        {
            hasher.Add(Unsafe.As<T, GeoJsonGeometry>(ref value).Json);
        }
        else if (value is NetTopologySuite.Geometries.Geometry nts)
        {
            hasher.Add(Ewkb.FromNts(nts));
        }
        else
        {
            throw new NotSupportedException($"Values of type {typeof(T).Name} cannot be hashed.");
        }
    }

    /// <summary>Reads one key column from a binary COPY export and adds it to a key hash exactly as <see cref="Hash{T}"/> does for records.</summary>
    public static void ReadAndHash(NpgsqlBinaryExporter exporter, PgColumn column, ref RowHasher hasher)
    {
        switch (column.Kind)
        {
            case PgKind.Text or PgKind.Jsonb or PgKind.Json:
                hasher.Add(exporter.Read<string>(column.Kind == PgKind.Text ? NpgsqlDbType.Text : column.DbType));
                break;
            case PgKind.Boolean:
                hasher.Add(exporter.Read<bool>(NpgsqlDbType.Boolean) ? 1UL : 2UL);
                break;
            case PgKind.Int16:
                hasher.Add((ulong)exporter.Read<short>(NpgsqlDbType.Smallint));
                break;
            case PgKind.Int32:
                hasher.Add((ulong)exporter.Read<int>(NpgsqlDbType.Integer));
                break;
            case PgKind.Int64:
                hasher.Add((ulong)exporter.Read<long>(NpgsqlDbType.Bigint));
                break;
            case PgKind.Float32:
                hasher.Add(BitConverter.DoubleToUInt64Bits(exporter.Read<float>(NpgsqlDbType.Real)));
                break;
            case PgKind.Float64:
                hasher.Add(BitConverter.DoubleToUInt64Bits(exporter.Read<double>(NpgsqlDbType.Double)));
                break;
            case PgKind.Numeric:
                HashDecimal(ref hasher, exporter.Read<decimal>(NpgsqlDbType.Numeric));
                break;
            case PgKind.Date:
                hasher.Add((ulong)exporter.Read<DateOnly>(NpgsqlDbType.Date).DayNumber);
                break;
            case PgKind.TimestampTz:
                hasher.Add((ulong)(exporter.Read<DateTime>(NpgsqlDbType.TimestampTz).Ticks / 10));
                break;
            case PgKind.Timestamp:
                hasher.Add((ulong)(exporter.Read<DateTime>(NpgsqlDbType.Timestamp).Ticks / 10));
                break;
            case PgKind.Uuid:
                var g = exporter.Read<Guid>(NpgsqlDbType.Uuid);
                hasher.Add(MemoryMarshal.AsBytes(new ReadOnlySpan<Guid>(in g)));
                break;
            case PgKind.Bytea:
                hasher.Add(exporter.Read<byte[]>(NpgsqlDbType.Bytea));
                break;
            default:
                throw new NotSupportedException($"Column '{column.Name}' ({column.SqlType}) cannot be part of a key.");
        }
    }

    private static void HashDecimal(ref RowHasher hasher, decimal d)
    {
        // Normalize the scale (1.50 and 1.5 are the same number; numeric(p,s) returns them padded).
        d /= 1.000000000000000000000000000000000m;
        Span<int> bits = stackalloc int[4];
        _ = decimal.GetBits(d, bits);
        hasher.Add(((ulong)(uint)bits[0] << 32) | (uint)bits[1]);
        hasher.Add(((ulong)(uint)bits[2] << 32) | (uint)bits[3]);
    }

    private static string? ValidateString(string s, PgColumn column)
    {
        if (s.Contains('\0', StringComparison.Ordinal))
        {
            return $"Text contains a NUL character (\\0) at index {s.IndexOf('\0', StringComparison.Ordinal)}, which PostgreSQL text cannot hold.";
        }

        if (UnpairedSurrogate(s) is { } at)
        {
            return $"Text contains an unpaired UTF-16 surrogate at index {at}, which is not valid Unicode and cannot be sent as UTF-8.";
        }

        if (column.MaxLength > 0 && s.Length > column.MaxLength)
        {
            var length = s.EnumerateRunes().Count();
            if (length > column.MaxLength)
            {
                return $"Text of {length} characters is longer than column '{column.Name}' ({column.SqlType}) allows.";
            }
        }

        if (column.Kind is PgKind.Jsonb or PgKind.Json)
        {
            try
            {
                using var doc = JsonDocument.Parse(s);

                // jsonb decodes escapes: an escaped NUL or lone surrogate parses as JSON but PostgreSQL refuses it.
                if (column.Kind == PgKind.Jsonb && s.Contains("\\u", StringComparison.Ordinal) && JsonbProblem(doc.RootElement) is { } problem)
                {
                    return $"Value cannot be stored in column '{column.Name}' ({column.SqlType}): {problem}";
                }
            }
            catch (JsonException e)
            {
                return $"Value is not valid JSON for column '{column.Name}' ({column.SqlType}): {e.Message}";
            }
        }

        return null;
    }

    /// <summary>Why jsonb cannot hold a parsed JSON value (an escaped NUL or a lone surrogate in a string or a name), or <see langword="null"/>.</summary>
    private static string? JsonbProblem(JsonElement e)
    {
        static string? Text(Func<string> read)
        {
            string text;
            try
            {
                text = read();
            }
            catch (InvalidOperationException)
            {
                return "it escapes an unpaired UTF-16 surrogate, which jsonb cannot store.";
            }

            return text.Contains('\0', StringComparison.Ordinal) ? "it contains \\u0000 (an escaped NUL), which jsonb cannot store."
                : UnpairedSurrogate(text) is not null ? "it escapes an unpaired UTF-16 surrogate, which jsonb cannot store."
                : null;
        }

        switch (e.ValueKind)
        {
            case JsonValueKind.String:
                return Text(() => e.GetString()!);
            case JsonValueKind.Array:
                foreach (var item in e.EnumerateArray())
                {
                    if (JsonbProblem(item) is { } p)
                    {
                        return p;
                    }
                }

                return null;
            case JsonValueKind.Object:
                foreach (var property in e.EnumerateObject())
                {
                    if ((Text(() => property.Name) ?? JsonbProblem(property.Value)) is { } p)
                    {
                        return p;
                    }
                }

                return null;
            default:
                return null;
        }
    }

    /// <summary>The index of the first surrogate without its pair (a cut emoji, a bad decoder), or <see langword="null"/>; vectorized search, so clean text costs one pass.</summary>
    internal static int? UnpairedSurrogate(string s)
    {
        var i = s.AsSpan().IndexOfAnyInRange('\ud800', '\udfff');
        while (i >= 0 && i < s.Length)
        {
            if (!char.IsHighSurrogate(s[i]) || i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]))
            {
                return i;
            }

            i += 2;
            var next = s.AsSpan(i).IndexOfAnyInRange('\ud800', '\udfff');
            i = next < 0 ? -1 : i + next;
        }

        return null;
    }

    private static string? ValidateInteger(long v, PgColumn column) => column.Kind switch
    {
        PgKind.Int16 when v is < short.MinValue or > short.MaxValue => OutOfRange(v.ToString(CultureInfo.InvariantCulture), column),
        PgKind.Int32 when v is < int.MinValue or > int.MaxValue => OutOfRange(v.ToString(CultureInfo.InvariantCulture), column),
        PgKind.Numeric => ValidateDecimal(v, column),
        _ => null,
    };

    private static string? ValidateFloat(double v, PgColumn column)
    {
        if (!double.IsFinite(v) && column.Kind != PgKind.Float32 && column.Kind != PgKind.Float64)
        {
            return $"{v.ToString(CultureInfo.InvariantCulture)} is not a finite number; column '{column.Name}' ({column.SqlType}) cannot hold it.";
        }

        return column.Kind switch
        {
            PgKind.Float32 when double.IsFinite(v) && Math.Abs(v) > float.MaxValue => OutOfRange(v.ToString("R", CultureInfo.InvariantCulture), column),
            PgKind.Numeric when Math.Abs(v) >= 7.9e28 => OutOfRange(v.ToString("R", CultureInfo.InvariantCulture), column),
            PgKind.Numeric => ValidateDecimal((decimal)v, column),
            _ => null,
        };
    }

    private static string? ValidateDecimal(decimal d, PgColumn column)
    {
        if (column.Kind != PgKind.Numeric || column.Precision <= 0)
        {
            return null;
        }

        var integerDigits = column.Precision - column.Scale;
        var limit = integerDigits >= 29 ? decimal.MaxValue : Pow10(integerDigits);
        var rounded = Math.Round(Math.Abs(d), Math.Min(column.Scale, 28), MidpointRounding.AwayFromZero);
        return rounded >= limit ? OutOfRange(d.ToString(CultureInfo.InvariantCulture), column) : null;
    }

    private static decimal Pow10(int n)
    {
        var r = 1m;
        for (var i = 0; i < n; i++)
        {
            r *= 10m;
        }

        return r;
    }

    private static string OutOfRange(string value, PgColumn column) =>
        $"{value} is out of range for column '{column.Name}' ({column.SqlType}).";

    private static void WriteInteger(BinaryCopyWriter writer, long v, PgColumn column)
    {
        switch (column.Kind)
        {
            case PgKind.Int16:
                writer.WriteInt16((short)v);
                break;
            case PgKind.Int32:
                writer.WriteInt32((int)v);
                break;
            case PgKind.Numeric:
                writer.WriteNumeric(v);
                break;
            case PgKind.Float32:
                writer.WriteFloat32(v);
                break;
            case PgKind.Float64:
                writer.WriteFloat64(v);
                break;
            default:
                writer.WriteInt64(v);
                break;
        }
    }

    private static void WriteFloat(BinaryCopyWriter writer, double v, PgColumn column)
    {
        switch (column.Kind)
        {
            case PgKind.Float32:
                writer.WriteFloat32((float)v);
                break;
            case PgKind.Numeric:
                writer.WriteNumeric((decimal)v);
                break;
            default:
                writer.WriteFloat64(v);
                break;
        }
    }
}
