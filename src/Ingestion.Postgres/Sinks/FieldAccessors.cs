using System.Buffers;
using System.Globalization;
using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.CompilerServices;
using Npgsql;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// Reads, validates, hashes and writes one column of a record. Built once per record schema: typed
/// records get compiled property getters returning the property's own type (no boxing); dynamic
/// records convert their boxed values once, in place, during validation.
/// </summary>
internal abstract class FieldAccessor<TRecord>
    where TRecord : class
{
    protected FieldAccessor(ColumnSchema schema, PgColumn column)
    {
        Schema = schema;
        Column = column;
    }

    public ColumnSchema Schema { get; }

    public PgColumn Column { get; }

    public abstract bool IsNull(TRecord record);

    /// <summary>Checks (and for dynamic records normalizes) a non-null value; returns the reason it is bad, or <see langword="null"/>.</summary>
    public abstract string? Validate(TRecord record, out string? raw);

    public abstract void Hash(TRecord record, ref RowHasher hasher);

    /// <summary>Adds a non-null value to a key hash, without null markers, exactly as <see cref="ValueCodec.ReadAndHash"/> hashes the stored key.</summary>
    public abstract void HashValue(TRecord record, ref RowHasher hasher);

    public abstract void Write(BinaryCopyWriter writer, TRecord record);

    public abstract bool ValueEquals(TRecord a, TRecord b);

    /// <summary>
    /// Orders <paramref name="rows"/> (indexes into <paramref name="records"/>, all with non-null keys) by this key
    /// field's values, rows with equal values then by <c>keys[next..]</c>: see <see cref="KeyOrder"/>.
    /// </summary>
    public abstract void SortRows(IReadOnlyList<TRecord> records, Span<int> rows, FieldAccessor<TRecord>[] keys, int next);

    /// <summary>Builds the accessor of a typed record's property.</summary>
    public static FieldAccessor<TRecord> ForProperty(ColumnSchema schema, PgColumn column)
    {
        var property = schema.Property ?? throw new ArgumentException($"Column '{schema.Name}' has no property.", nameof(schema));
        var type = property.PropertyType;
        Type accessorType;
        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            accessorType = typeof(NullableAccessor<,>).MakeGenericType(typeof(TRecord), underlying);
        }
        else if (type.IsValueType)
        {
            accessorType = typeof(StructAccessor<,>).MakeGenericType(typeof(TRecord), type);
        }
        else
        {
            accessorType = typeof(RefAccessor<,>).MakeGenericType(typeof(TRecord), type);
        }

        return (FieldAccessor<TRecord>)Activator.CreateInstance(accessorType, schema, column, Getters.GetOrAdd(property, Compile))!;
    }

    /// <summary>
    /// The compiled getter of each property, compiled once per process: a getter compiled per run is a dynamic method
    /// per column per run, which the runtime then finalizes again at every collection until it can free it.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<PropertyInfo, Delegate> Getters = new();

    private static Delegate Compile(PropertyInfo property)
    {
        var p = Expression.Parameter(typeof(TRecord), "r");
        return Expression.Lambda(typeof(Func<,>).MakeGenericType(typeof(TRecord), property.PropertyType), Expression.Property(p, property), p).Compile();
    }

    protected static string? Raw<T>(T value) => value switch
    {
        null => null,
        DateTime d => d.ToString("O", CultureInfo.InvariantCulture),
        DateTimeOffset d => d.ToString("O", CultureInfo.InvariantCulture),
        DateOnly d => d.ToString("O", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        GeoJsonGeometry g => g.Json,
        byte[] b => Convert.ToHexString(b.AsSpan(0, Math.Min(b.Length, 256))),
        _ => value.ToString(),
    };
}

internal sealed class StructAccessor<TRecord, T>(ColumnSchema schema, PgColumn column, Func<TRecord, T> get) : FieldAccessor<TRecord>(schema, column)
    where TRecord : class
    where T : struct
{
    public override bool IsNull(TRecord record) => false;

    public override string? Validate(TRecord record, out string? raw)
    {
        var v = get(record);
        var reason = ValueCodec.Validate(v, Column);
        raw = reason is null ? null : Raw(v);
        return reason;
    }

    public override void Hash(TRecord record, ref RowHasher hasher) => ValueCodec.Hash(ref hasher, get(record));

    public override void HashValue(TRecord record, ref RowHasher hasher) => ValueCodec.Hash(ref hasher, get(record));

    public override void Write(BinaryCopyWriter writer, TRecord record) => ValueCodec.Write(writer, get(record), Column);

    public override bool ValueEquals(TRecord a, TRecord b) => EqualityComparer<T>.Default.Equals(get(a), get(b));

    public override void SortRows(IReadOnlyList<TRecord> records, Span<int> rows, FieldAccessor<TRecord>[] keys, int next) =>
        KeyOrder.Sort(get, records, rows, keys, next);
}

internal sealed class NullableAccessor<TRecord, T>(ColumnSchema schema, PgColumn column, Func<TRecord, T?> get) : FieldAccessor<TRecord>(schema, column)
    where TRecord : class
    where T : struct
{
    private Func<TRecord, T>? _getValue;

    public override bool IsNull(TRecord record) => !get(record).HasValue;

    public override string? Validate(TRecord record, out string? raw)
    {
        var v = get(record).GetValueOrDefault();
        var reason = ValueCodec.Validate(v, Column);
        raw = reason is null ? null : Raw(v);
        return reason;
    }

    public override void Hash(TRecord record, ref RowHasher hasher)
    {
        var v = get(record);
        if (v.HasValue)
        {
            hasher.Add(0x5bd1e995UL);
            ValueCodec.Hash(ref hasher, v.GetValueOrDefault());
        }
        else
        {
            hasher.Add(0x9e3779b97f4a7c15UL);
        }
    }

    public override void HashValue(TRecord record, ref RowHasher hasher) => ValueCodec.Hash(ref hasher, get(record).GetValueOrDefault());

    public override void Write(BinaryCopyWriter writer, TRecord record)
    {
        var v = get(record);
        if (v.HasValue)
        {
            ValueCodec.Write(writer, v.GetValueOrDefault(), Column);
        }
        else
        {
            writer.WriteNull();
        }
    }

    public override bool ValueEquals(TRecord a, TRecord b) => Nullable.Equals(get(a), get(b));

    public override void SortRows(IReadOnlyList<TRecord> records, Span<int> rows, FieldAccessor<TRecord>[] keys, int next) =>
        KeyOrder.Sort(_getValue ??= r => get(r).GetValueOrDefault(), records, rows, keys, next);
}

internal sealed class RefAccessor<TRecord, T>(ColumnSchema schema, PgColumn column, Func<TRecord, T?> get) : FieldAccessor<TRecord>(schema, column)
    where TRecord : class
    where T : class
{
    public override bool IsNull(TRecord record) => get(record) is null;

    public override string? Validate(TRecord record, out string? raw)
    {
        var v = get(record)!;
        var reason = ValueCodec.Validate(v, Column);
        raw = reason is null ? null : Raw(v);
        return reason;
    }

    public override void Hash(TRecord record, ref RowHasher hasher)
    {
        if (get(record) is { } v)
        {
            hasher.Add(0x5bd1e995UL);
            ValueCodec.Hash(ref hasher, v);
        }
        else
        {
            hasher.Add(0x9e3779b97f4a7c15UL);
        }
    }

    public override void HashValue(TRecord record, ref RowHasher hasher) => ValueCodec.Hash(ref hasher, get(record)!);

    public override void Write(BinaryCopyWriter writer, TRecord record)
    {
        if (get(record) is { } v)
        {
            ValueCodec.Write(writer, v, Column);
        }
        else
        {
            writer.WriteNull();
        }
    }

    public override bool ValueEquals(TRecord a, TRecord b) =>
        typeof(T) == typeof(byte[]) ? ((byte[]?)(object?)get(a) ?? []).AsSpan().SequenceEqual((byte[]?)(object?)get(b) ?? []) : EqualityComparer<T>.Default.Equals(get(a), get(b));

    public override void SortRows(IReadOnlyList<TRecord> records, Span<int> rows, FieldAccessor<TRecord>[] keys, int next) =>
        KeyOrder.Sort(get, records, rows, keys, next);
}

/// <summary>
/// The order a batch's rows are sent in: by key, so that consecutive rows land next to each other in the
/// key's B-tree index (fewer pages touched per row than in arrival order). Strings compare by UTF-16 code
/// unit, byte arrays by byte, other comparable types by their own order; a type without an order leaves its
/// rows to the next key field. Only index locality depends on it, never a result, so it need not match the
/// server's collation. One key field at a time: its values are copied into an array once and ordered with
/// the row indexes (unless already in order: grouped by value when they repeat a lot, else sorted), then each
/// run of equal values is ordered by the next field.
/// </summary>
internal static class KeyOrder
{
    public static void Sort<TRecord, T>(Func<TRecord, T> get, IReadOnlyList<TRecord> records, Span<int> rows, FieldAccessor<TRecord>[] keys, int next)
        where TRecord : class
    {
        if (OrderOf<T>.Comparer is not { } comparer)
        {
            SortByNext(records, rows, keys, next);
            return;
        }

        var buffer = ArrayPool<T>.Shared.Rent(rows.Length);
        try
        {
            var values = buffer.AsSpan(0, rows.Length);
            for (var i = 0; i < rows.Length; i++)
            {
                values[i] = get(records[rows[i]]);
            }

            if (!IsSorted(values, comparer) && !TryGroup(values, rows, comparer))
            {
                values.Sort(rows, comparer);
            }

            if (next >= keys.Length)
            {
                return;
            }

            for (var i = 0; i < values.Length;)
            {
                var j = i + 1;
                while (j < values.Length && comparer.Compare(values[i], values[j]) == 0)
                {
                    j++;
                }

                if (j - i > 1)
                {
                    keys[next].SortRows(records, rows[i..j], keys, next + 1);
                }

                i = j;
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(buffer, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        }
    }

    /// <summary>Orders rows whose values of the current key field are all equal (or unordered) by the next fields.</summary>
    public static void SortByNext<TRecord>(IReadOnlyList<TRecord> records, Span<int> rows, FieldAccessor<TRecord>[] keys, int next)
        where TRecord : class
    {
        if (next < keys.Length && rows.Length > 1)
        {
            keys[next].SortRows(records, rows, keys, next + 1);
        }
    }

    /// <summary>
    /// When the values repeat a lot (say 50 regions over 10,000 rows), orders them without comparing rows: each
    /// distinct value gets its rank (a dictionary, then a sort of the few distinct values), and a counting sort
    /// places the rows by rank, keeping arrival order among equal values (often already the order of the next
    /// key field). Gives up, leaving the rows as they were, past one distinct value per eight rows.
    /// </summary>
    private static bool TryGroup<T>(Span<T> values, Span<int> rows, IComparer<T> comparer)
    {
        var n = values.Length;
        if (typeof(T) == typeof(byte[]) || n < 64)
        {
            return false; // byte arrays hash by reference; a few rows sort faster than they group.
        }

        var limit = n / 8;
#pragma warning disable CS8714 // T is unconstrained (key types of any kind); a null value gives up below before it is added.
        var groupOf = new Dictionary<T, int>();
#pragma warning restore CS8714
        var group = ArrayPool<int>.Shared.Rent(n);
        try
        {
            for (var i = 0; i < n; i++)
            {
                var v = values[i];
                if (v is null)
                {
                    return false;
                }

                if (!groupOf.TryGetValue(v, out var g))
                {
                    if (groupOf.Count >= limit)
                    {
                        return false;
                    }

                    g = groupOf.Count;
                    groupOf.Add(v, g);
                }

                group[i] = g;
            }

            var k = groupOf.Count;
            var distinct = new T[k];
            var groupAtRank = new int[k];
            foreach (var (value, g) in groupOf)
            {
                distinct[g] = value;
                groupAtRank[g] = g;
            }

            distinct.AsSpan().Sort(groupAtRank.AsSpan(), comparer);
            var rankOf = new int[k];
            for (var r = 0; r < k; r++)
            {
                rankOf[groupAtRank[r]] = r;
            }

            // next[r]: where the next row of rank r goes.
            var next = new int[k + 1];
            for (var i = 0; i < n; i++)
            {
                next[rankOf[group[i]] + 1]++;
            }

            for (var r = 0; r < k; r++)
            {
                next[r + 1] += next[r];
            }

            var sortedRows = ArrayPool<int>.Shared.Rent(n);
            var sortedValues = ArrayPool<T>.Shared.Rent(n);
            for (var i = 0; i < n; i++)
            {
                var at = next[rankOf[group[i]]]++;
                sortedRows[at] = rows[i];
                sortedValues[at] = values[i];
            }

            sortedRows.AsSpan(0, n).CopyTo(rows);
            sortedValues.AsSpan(0, n).CopyTo(values);
            ArrayPool<int>.Shared.Return(sortedRows);
            ArrayPool<T>.Shared.Return(sortedValues, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
            return true;
        }
        finally
        {
            ArrayPool<int>.Shared.Return(group);
        }
    }

    private static bool IsSorted<T>(ReadOnlySpan<T> values, IComparer<T> comparer)
    {
        for (var i = 1; i < values.Length; i++)
        {
            if (comparer.Compare(values[i - 1], values[i]) > 0)
            {
                return false;
            }
        }

        return true;
    }

    private static class OrderOf<T>
    {
        public static readonly IComparer<T>? Comparer =
            typeof(T) == typeof(string) ? (IComparer<T>)(object)StringComparer.Ordinal
            : typeof(T) == typeof(byte[]) ? (IComparer<T>)(object)BytesOrder.Instance
            : typeof(IComparable<T>).IsAssignableFrom(typeof(T)) || typeof(IComparable).IsAssignableFrom(typeof(T)) ? Comparer<T>.Default
            : null;
    }

    private sealed class BytesOrder : IComparer<byte[]>
    {
        public static readonly BytesOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}

/// <summary>The runtime-filled <c>source</c> column of the default key.</summary>
internal sealed class SourceNameAccessor<TRecord>(ColumnSchema schema, PgColumn column, string sourceName) : FieldAccessor<TRecord>(schema, column)
    where TRecord : class
{
    public override bool IsNull(TRecord record) => false;

    public override string? Validate(TRecord record, out string? raw)
    {
        raw = null;
        return null;
    }

    public override void Hash(TRecord record, ref RowHasher hasher) => hasher.Add(sourceName);

    public override void HashValue(TRecord record, ref RowHasher hasher) => hasher.Add(sourceName);

    public override void Write(BinaryCopyWriter writer, TRecord record) => ValueCodec.Write(writer, sourceName, Column);

    public override bool ValueEquals(TRecord a, TRecord b) => true;

    public override void SortRows(IReadOnlyList<TRecord> records, Span<int> rows, FieldAccessor<TRecord>[] keys, int next) =>
        KeyOrder.SortByNext(records, rows, keys, next);
}

/// <summary>
/// A column of a <see cref="DynamicRecord"/>: the boxed value is converted to the column's storage
/// type <typeparamref name="T"/> during validation and stored back in the record, so hashing and
/// writing unbox it without converting again.
/// </summary>
internal sealed class DynamicAccessor<T>(ColumnSchema schema, PgColumn column) : FieldAccessor<DynamicRecord>(schema, column)
{
    private readonly int _ordinal = schema.Ordinal;
    private Func<DynamicRecord, T>? _getValue;

    public override bool IsNull(DynamicRecord record) => record[_ordinal] is null or DBNull;

    public override string? Validate(DynamicRecord record, out string? raw)
    {
        var value = record[_ordinal]!;
        raw = null;
        if (value is not T typed)
        {
            if (!DynamicConvert.TryConvert(value, Column, out typed, out var problem))
            {
                raw = Raw(value);
                return problem;
            }

            record[_ordinal] = typed;
        }

        var reason = ValueCodec.Validate(typed, Column);
        raw = reason is null ? null : Raw(typed);
        return reason;
    }

    public override void Hash(DynamicRecord record, ref RowHasher hasher)
    {
        if (record[_ordinal] is T v)
        {
            hasher.Add(0x5bd1e995UL);
            ValueCodec.Hash(ref hasher, v);
        }
        else
        {
            hasher.Add(0x9e3779b97f4a7c15UL);
        }
    }

    public override void HashValue(DynamicRecord record, ref RowHasher hasher) => ValueCodec.Hash(ref hasher, (T)record[_ordinal]!);

    public override void Write(BinaryCopyWriter writer, DynamicRecord record)
    {
        if (record[_ordinal] is T v)
        {
            ValueCodec.Write(writer, v, Column);
        }
        else
        {
            writer.WriteNull();
        }
    }

    public override bool ValueEquals(DynamicRecord a, DynamicRecord b) =>
        a[_ordinal] is byte[] x && b[_ordinal] is byte[] y ? x.AsSpan().SequenceEqual(y) : Equals(a[_ordinal], b[_ordinal]);

    public override void SortRows(IReadOnlyList<DynamicRecord> records, Span<int> rows, FieldAccessor<DynamicRecord>[] keys, int next) =>
        KeyOrder.Sort(_getValue ??= r => r[_ordinal] is T v ? v : default!, records, rows, keys, next);
}

/// <summary>Creates the accessors of dynamic columns.</summary>
internal static class DynamicAccessors
{
    /// <summary>Creates the accessor for a dynamic column stored in a column of the given kind.</summary>
    public static FieldAccessor<DynamicRecord> Create(ColumnSchema schema, PgColumn column) => column.Kind switch
    {
        PgKind.Text or PgKind.Json or PgKind.Jsonb => new DynamicAccessor<string>(schema, column),
        PgKind.Boolean => new DynamicAccessor<bool>(schema, column),
        PgKind.Int16 => new DynamicAccessor<short>(schema, column),
        PgKind.Int32 => new DynamicAccessor<int>(schema, column),
        PgKind.Int64 => new DynamicAccessor<long>(schema, column),
        PgKind.Float32 => new DynamicAccessor<float>(schema, column),
        PgKind.Float64 => new DynamicAccessor<double>(schema, column),
        PgKind.Numeric => new DynamicAccessor<decimal>(schema, column),
        PgKind.Date => new DynamicAccessor<DateOnly>(schema, column),
        PgKind.TimestampTz => new DynamicAccessor<DateTimeOffset>(schema, column),
        PgKind.Timestamp => new DynamicAccessor<DateTime>(schema, column),
        PgKind.Uuid => new DynamicAccessor<Guid>(schema, column),
        PgKind.Bytea => new DynamicAccessor<byte[]>(schema, column),
        _ => new DynamicGeometryAccessor(schema, column),
    };
}

/// <summary>A geometry column of a dynamic record: a <see cref="GeoPoint"/>, a <see cref="GeoJsonGeometry"/>, GeoJSON text or a NetTopologySuite geometry.</summary>
internal sealed class DynamicGeometryAccessor(ColumnSchema schema, PgColumn column) : FieldAccessor<DynamicRecord>(schema, column)
{
    private readonly int _ordinal = schema.Ordinal;

    public override bool IsNull(DynamicRecord record) => record[_ordinal] is null or DBNull;

    public override string? Validate(DynamicRecord record, out string? raw)
    {
        var value = record[_ordinal];
        if (value is string s)
        {
            record[_ordinal] = value = new GeoJsonGeometry(s);
        }

        raw = Raw(value);
        return value switch
        {
            GeoPoint p => ValueCodec.Validate(p, Column),
            GeoJsonGeometry g => ValueCodec.Validate(g, Column),
            NetTopologySuite.Geometries.Geometry n => ValueCodec.Validate(n, Column),
            _ => $"Expected a GeoPoint, GeoJSON or NetTopologySuite geometry for column '{Column.Name}' ({Column.SqlType}), got {value!.GetType().Name}.",
        };
    }

    public override void Hash(DynamicRecord record, ref RowHasher hasher)
    {
        switch (record[_ordinal])
        {
            case GeoPoint p:
                hasher.Add(1UL);
                ValueCodec.Hash(ref hasher, p);
                break;
            case GeoJsonGeometry g:
                hasher.Add(2UL);
                ValueCodec.Hash(ref hasher, g);
                break;
            case NetTopologySuite.Geometries.Geometry n:
                hasher.Add(3UL);
                ValueCodec.Hash(ref hasher, n);
                break;
            default:
                hasher.Add(0x9e3779b97f4a7c15UL);
                break;
        }
    }

    public override void HashValue(DynamicRecord record, ref RowHasher hasher) => Hash(record, ref hasher);

    public override void Write(BinaryCopyWriter writer, DynamicRecord record)
    {
        switch (record[_ordinal])
        {
            case GeoPoint p:
                ValueCodec.Write(writer, p, Column);
                break;
            case GeoJsonGeometry g:
                ValueCodec.Write(writer, g, Column);
                break;
            case NetTopologySuite.Geometries.Geometry n:
                ValueCodec.Write(writer, n, Column);
                break;
            default:
                writer.WriteNull();
                break;
        }
    }

    public override bool ValueEquals(DynamicRecord a, DynamicRecord b) => Equals(a[_ordinal], b[_ordinal]);

    public override void SortRows(IReadOnlyList<DynamicRecord> records, Span<int> rows, FieldAccessor<DynamicRecord>[] keys, int next) =>
        KeyOrder.SortByNext(records, rows, keys, next);
}

/// <summary>Converts the boxed values of dynamic records to a column's storage type, refusing lossy conversions.</summary>
internal static class DynamicConvert
{
    public static bool TryConvert<T>(object value, PgColumn column, out T result, out string? problem)
    {
        problem = null;
        result = default!;
        object? converted = null;
        try
        {
            converted = Convert(value, typeof(T), column, out problem);
        }
        catch (OverflowException)
        {
            problem = $"{Describe(value)} is out of range for column '{column.Name}' ({column.SqlType}).";
        }

        if (converted is T t)
        {
            result = t;
            return true;
        }

        problem ??= $"Expected a value for column '{column.Name}' ({column.SqlType}), got {Describe(value)} of type {value.GetType().Name}.";
        return false;
    }

    private static object? Convert(object value, Type target, PgColumn column, out string? problem)
    {
        problem = null;
        var ic = CultureInfo.InvariantCulture;
        if (target == typeof(short) || target == typeof(int) || target == typeof(long))
        {
            long v;
            switch (value)
            {
                case byte or sbyte or short or ushort or int or uint or long:
                    v = System.Convert.ToInt64(value, ic);
                    break;
                case ulong u:
                    v = checked((long)u);
                    break;
                case float or double or decimal:
                    var d = System.Convert.ToDouble(value, ic);
                    if (!double.IsFinite(d))
                    {
                        problem = $"{Describe(value)} is not a finite number; column '{column.Name}' ({column.SqlType}) cannot hold it.";
                        return null;
                    }

                    var m = value is decimal dec ? dec : (decimal)d;
                    if (m != decimal.Truncate(m))
                    {
                        problem = $"{Describe(value)} has a fractional part; column '{column.Name}' ({column.SqlType}) holds integers.";
                        return null;
                    }

                    v = decimal.ToInt64(m);
                    break;
                default:
                    return null;
            }

            return target == typeof(short) ? (object)checked((short)v) : target == typeof(int) ? (object)checked((int)v) : (object)v;
        }

        if (target == typeof(float) || target == typeof(double))
        {
            if (value is not (byte or sbyte or short or ushort or int or uint or long or ulong or float or double or decimal))
            {
                return null;
            }

            var d = System.Convert.ToDouble(value, ic);
            if (target == typeof(float))
            {
                return double.IsFinite(d) && Math.Abs(d) > float.MaxValue ? throw new OverflowException() : (float)d;
            }

            return d;
        }

        if (target == typeof(decimal))
        {
            switch (value)
            {
                case float or double:
                    var d = System.Convert.ToDouble(value, ic);
                    if (!double.IsFinite(d))
                    {
                        problem = $"{Describe(value)} is not a finite number; column '{column.Name}' ({column.SqlType}) cannot hold it.";
                        return null;
                    }

                    return (decimal)d;
                case byte or sbyte or short or ushort or int or uint or long or ulong:
                    return System.Convert.ToDecimal(value, ic);
                default:
                    return null;
            }
        }

        if (target == typeof(DateTimeOffset))
        {
            switch (value)
            {
                case DateTime { Kind: DateTimeKind.Unspecified } dt:
                    problem = $"DateTime {dt.ToString("O", ic)} has an unspecified kind, but column '{column.Name}' is timestamptz (an instant): give it DateTimeKind.Utc or use DateTimeOffset.";
                    return null;
                case DateTime dt:
                    return new DateTimeOffset(dt.ToUniversalTime());
                default:
                    return null;
            }
        }

        if (target == typeof(DateTime))
        {
            return value is DateTimeOffset dto ? dto.DateTime : null;
        }

        if (target == typeof(DateOnly))
        {
            return value is DateTime dt ? DateOnly.FromDateTime(dt) : null;
        }

        if (target == typeof(Guid))
        {
            return value is string s && Guid.TryParse(s, ic, out var g) ? g : null;
        }

        if (target == typeof(string))
        {
            return value is char c ? c.ToString() : null;
        }

        return null;
    }

    private static string Describe(object value) => value switch
    {
        string s => $"'{(s.Length > 60 ? s[..60] + "..." : s)}'",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? value.GetType().Name,
    };
}
