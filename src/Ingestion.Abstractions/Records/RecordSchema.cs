using System.Collections.ObjectModel;
using System.Reflection;
using System.Text;

namespace Ingestion;

/// <summary>
/// The columns and key of a record type: built once from a typed record class
/// (<see cref="FromType(Type)"/>) or at run time from the data (<see cref="Create"/>).
/// </summary>
public sealed class RecordSchema
{
    /// <summary>The name of the column filled with the source name in the default key.</summary>
    public const string SourceColumnName = "source";

    /// <summary>The name of the source's own identifier column in the default key.</summary>
    public const string SourceIdColumnName = "source_id";

    private readonly Dictionary<string, int> _ordinals;

    private RecordSchema(Type? recordType, IReadOnlyList<ColumnSchema> columns, IReadOnlyList<string> keyNames)
    {
        if (columns.Count == 0)
        {
            throw new ArgumentException("A record schema needs at least one column.", nameof(columns));
        }

        _ordinals = new Dictionary<string, int>(StringComparer.Ordinal);
        var keySet = new HashSet<string>(keyNames, StringComparer.Ordinal);
        for (var i = 0; i < columns.Count; i++)
        {
            if (!_ordinals.TryAdd(columns[i].Name, i))
            {
                throw new ArgumentException($"Column '{columns[i].Name}' appears twice in the schema{Describe(recordType)}.", nameof(columns));
            }
        }

        if (keySet.Count != keyNames.Count)
        {
            var twice = keyNames.GroupBy(k => k, StringComparer.Ordinal).First(g => g.Count() > 1).Key;
            throw new ArgumentException($"Key column '{twice}' appears twice in the key{Describe(recordType)}.", nameof(keyNames));
        }

        foreach (var key in keyNames)
        {
            if (!_ordinals.ContainsKey(key))
            {
                throw new ArgumentException($"Key column '{key}' is not a column of the schema{Describe(recordType)}.", nameof(keyNames));
            }
        }

        if (keyNames.Count == 0)
        {
            throw new ArgumentException($"The schema{Describe(recordType)} declares no key.", nameof(keyNames));
        }

        for (var i = 0; i < columns.Count; i++)
        {
            columns[i].Bind(i, keySet.Contains(columns[i].Name));
        }

        RecordType = recordType;
        Columns = new ReadOnlyCollection<ColumnSchema>(columns.ToArray());
        KeyColumns = new ReadOnlyCollection<ColumnSchema>(keyNames.Select(k => columns[_ordinals[k]]).ToArray());
        HasSourceNameColumn = columns.Any(c => c.IsSourceName);
    }

    /// <summary>The typed record class this schema was built from, or <see langword="null"/> for a dynamic schema.</summary>
    public Type? RecordType { get; }

    /// <summary>All columns, in order.</summary>
    public IReadOnlyList<ColumnSchema> Columns { get; }

    /// <summary>The key columns, in key order.</summary>
    public IReadOnlyList<ColumnSchema> KeyColumns { get; }

    /// <summary>Whether the schema has the runtime-filled <c>source</c> column of the default key.</summary>
    public bool HasSourceNameColumn { get; }

    /// <summary>Finds a column by name (ordinal comparison).</summary>
    /// <param name="name">The column name.</param>
    /// <param name="column">The column, when found.</param>
    /// <returns>Whether the column exists.</returns>
    public bool TryGetColumn(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ColumnSchema? column)
    {
        if (_ordinals.TryGetValue(name, out var i))
        {
            column = Columns[i];
            return true;
        }

        column = null;
        return false;
    }

    /// <summary>The ordinal of a column, or -1.</summary>
    /// <param name="name">The column name.</param>
    /// <returns>The column's position, or -1 when the schema has no such column.</returns>
    public int IndexOf(string name) => _ordinals.TryGetValue(name, out var i) ? i : -1;

    /// <summary>
    /// Builds a dynamic schema. When <paramref name="keyColumns"/> is empty the default key
    /// <c>(source, source_id)</c> is used: the columns must include <c>source_id</c>, and a
    /// runtime-filled <c>source</c> column is added in front.
    /// </summary>
    /// <param name="columns">The columns, in order.</param>
    /// <param name="keyColumns">The key column names, in key order.</param>
    /// <returns>The schema.</returns>
    /// <exception cref="ArgumentException">Duplicate column names, an unknown key column, or no key.</exception>
    public static RecordSchema Create(IEnumerable<ColumnSchema> columns, IEnumerable<string>? keyColumns = null)
    {
        ArgumentNullException.ThrowIfNull(columns);
        var list = columns.ToList();
        var keys = keyColumns?.ToList() ?? [];
        if (keys.Count == 0)
        {
            if (!list.Any(c => c.Name == SourceIdColumnName))
            {
                throw new ArgumentException($"A dynamic schema without declared key columns needs a '{SourceIdColumnName}' column for the default (source, source_id) key.", nameof(keyColumns));
            }

            list.Insert(0, ColumnSchema.SourceNameColumn());
            keys = [SourceColumnName, SourceIdColumnName];
        }

        return new RecordSchema(null, list, keys);
    }

    /// <summary>
    /// Builds the schema of a typed record class from its public readable properties: names in
    /// snake_case (or <see cref="ColumnAttribute.Name"/>), types from the CLR types, the key from
    /// <see cref="RecordKeyAttribute"/>, or <c>(source, source_id)</c> when the class has a
    /// <c>SourceId</c> property and no declared key. Reflection runs here, once; the sink compiles
    /// accessors from <see cref="ColumnSchema.Property"/>.
    /// </summary>
    /// <param name="recordType">The record class.</param>
    /// <returns>The schema.</returns>
    /// <exception cref="ArgumentException">A property has an unsupported type, or the class declares no key.</exception>
    public static RecordSchema FromType(Type recordType)
    {
        ArgumentNullException.ThrowIfNull(recordType);
        if (recordType == typeof(DynamicRecord))
        {
            throw new ArgumentException("DynamicRecord has no static schema: each record carries its own.", nameof(recordType));
        }

        var columns = new List<ColumnSchema>();
        var keys = new List<(int Order, int Index, string Name)>();
        var nullability = new NullabilityInfoContext();
        foreach (var property in recordType.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetMethod is null || property.GetIndexParameters().Length > 0 || property.IsDefined(typeof(IgnoreColumnAttribute), true))
            {
                continue;
            }

            var column = property.GetCustomAttribute<ColumnAttribute>(true);
            var name = column?.Name ?? ToSnakeCase(property.Name);
            var clr = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            var type = MapClrType(clr, column)
                ?? throw new ArgumentException($"Property '{recordType.Name}.{property.Name}' has type {property.PropertyType.Name}, which has no column type. Use string, bool, short, int, long, float, double, decimal, DateOnly, DateTime, DateTimeOffset, Guid, byte[], GeoPoint or GeoJsonGeometry, or mark it [IgnoreColumn].", nameof(recordType));
            var isNullable = property.PropertyType.IsValueType
                ? Nullable.GetUnderlyingType(property.PropertyType) is not null
                : nullability.Create(property).ReadState != NullabilityState.NotNull;
            columns.Add(ColumnSchema.ForProperty(property, name, type, isNullable, column?.MaxLength ?? 0));
            if (property.GetCustomAttribute<RecordKeyAttribute>(true) is { } key)
            {
                keys.Add((key.Order, columns.Count - 1, name));
            }
        }

        List<string> keyNames;
        if (keys.Count > 0)
        {
            keyNames = keys.OrderBy(k => k.Order).ThenBy(k => k.Index).Select(k => k.Name).ToList();
        }
        else if (columns.Any(c => c.Name == SourceIdColumnName))
        {
            columns.Insert(0, ColumnSchema.SourceNameColumn());
            keyNames = [SourceColumnName, SourceIdColumnName];
        }
        else
        {
            throw new ArgumentException($"Record type '{recordType.FullName}' declares no key: mark its key properties with [RecordKey], or give it a SourceId property for the default (source, source_id) key.", nameof(recordType));
        }

        return new RecordSchema(recordType, columns, keyNames);
    }

    /// <summary>Converts a PascalCase or camelCase name to snake_case (<c>StartsAt</c> becomes <c>starts_at</c>, <c>HTTPCode</c> becomes <c>http_code</c>).</summary>
    /// <param name="name">The name.</param>
    /// <returns>The snake_case name.</returns>
    public static string ToSnakeCase(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var sb = new StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c))
            {
                var prevLowerOrDigit = i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]));
                var acronymEnd = i > 0 && char.IsUpper(name[i - 1]) && i + 1 < name.Length && char.IsLower(name[i + 1]);
                if (sb.Length > 0 && sb[^1] != '_' && (prevLowerOrDigit || acronymEnd))
                {
                    sb.Append('_');
                }

                sb.Append(char.ToLowerInvariant(c));
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    /// <summary>The column type a CLR type maps to by default, or <see langword="null"/> when it has none.</summary>
    /// <param name="clrType">The CLR type (not nullable-wrapped).</param>
    /// <returns>The column type, or <see langword="null"/>.</returns>
    public static ColumnType? MapClrType(Type clrType) => MapClrType(clrType, null);

    private static ColumnType? MapClrType(Type clr, ColumnAttribute? column) => clr switch
    {
        _ when clr == typeof(string) => column?.Json == true ? ColumnType.Json : ColumnType.Text,
        _ when clr == typeof(bool) => ColumnType.Boolean,
        _ when clr == typeof(short) => ColumnType.Int16,
        _ when clr == typeof(int) => ColumnType.Int32,
        _ when clr == typeof(long) => ColumnType.Int64,
        _ when clr == typeof(float) => ColumnType.Float32,
        _ when clr == typeof(double) => ColumnType.Float64,
        _ when clr == typeof(decimal) => ColumnType.Decimal,
        _ when clr == typeof(DateOnly) => ColumnType.Date,
        _ when clr == typeof(DateTime) => column?.WithoutTimeZone == true ? ColumnType.Timestamp : ColumnType.TimestampTz,
        _ when clr == typeof(DateTimeOffset) => ColumnType.TimestampTz,
        _ when clr == typeof(Guid) => ColumnType.Uuid,
        _ when clr == typeof(byte[]) => ColumnType.Bytes,
        _ when clr == typeof(GeoPoint) || clr == typeof(GeoJsonGeometry) || IsNetTopologySuiteGeometry(clr) => ColumnType.Geometry,
        _ => null,
    };

    /// <summary>Whether a type is NetTopologySuite's <c>Geometry</c> or derives from it (recognized by name: this package references no geometry library).</summary>
    private static bool IsNetTopologySuiteGeometry(Type clr)
    {
        for (var t = clr; t is not null && t != typeof(object); t = t.BaseType)
        {
            if (t.FullName == "NetTopologySuite.Geometries.Geometry")
            {
                return true;
            }
        }

        return false;
    }

    internal static Type DefaultClrType(ColumnType type) => type switch
    {
        ColumnType.Text or ColumnType.Json => typeof(string),
        ColumnType.Boolean => typeof(bool),
        ColumnType.Int16 => typeof(short),
        ColumnType.Int32 => typeof(int),
        ColumnType.Int64 => typeof(long),
        ColumnType.Float32 => typeof(float),
        ColumnType.Float64 => typeof(double),
        ColumnType.Decimal => typeof(decimal),
        ColumnType.Date => typeof(DateOnly),
        ColumnType.TimestampTz => typeof(DateTimeOffset),
        ColumnType.Timestamp => typeof(DateTime),
        ColumnType.Uuid => typeof(Guid),
        ColumnType.Bytes => typeof(byte[]),
        ColumnType.Geometry => typeof(GeoJsonGeometry),
        _ => typeof(object),
    };

    private static string Describe(Type? recordType) => recordType is null ? string.Empty : $" of '{recordType.FullName}'";
}
