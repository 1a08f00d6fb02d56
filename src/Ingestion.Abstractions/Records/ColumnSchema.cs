using System.Reflection;

namespace Ingestion;

/// <summary>One column of a <see cref="RecordSchema"/>.</summary>
public sealed class ColumnSchema
{
    /// <summary>Creates a column description.</summary>
    /// <param name="name">The column name (validated and quoted by the sink, never concatenated raw).</param>
    /// <param name="type">The storage type.</param>
    /// <param name="isNullable">Whether the column accepts nulls.</param>
    /// <param name="maxLength">For text columns, the maximum length (0: unbounded).</param>
    /// <exception cref="ArgumentException">The name is empty or whitespace, or <paramref name="maxLength"/> is negative.</exception>
    public ColumnSchema(string name, ColumnType type, bool isNullable = true, int maxLength = 0)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentOutOfRangeException.ThrowIfNegative(maxLength);
        Name = name;
        Type = type;
        IsNullable = isNullable;
        MaxLength = maxLength;
    }

    /// <summary>The column name.</summary>
    public string Name { get; }

    /// <summary>The storage type.</summary>
    public ColumnType Type { get; }

    /// <summary>Whether the column accepts nulls. Key columns never do.</summary>
    public bool IsNullable { get; private set; }

    /// <summary>For text columns, the maximum length in characters (0: unbounded).</summary>
    public int MaxLength { get; }

    /// <summary>Whether the column is part of the record key.</summary>
    public bool IsKey { get; private set; }

    /// <summary>The position of the column in its schema.</summary>
    public int Ordinal { get; private set; }

    /// <summary>
    /// Whether the column is filled by the runtime with the source name (the <c>source</c> column of the
    /// default <c>(source, source_id)</c> key) rather than read from the record.
    /// </summary>
    public bool IsSourceName { get; private init; }

    /// <summary>For typed records, the property the value is read from; <see langword="null"/> for dynamic records and the source-name column.</summary>
    public PropertyInfo? Property { get; private init; }

    /// <summary>The CLR type of the values (the underlying type for nullable value types).</summary>
    public Type ClrType => Property is { } p ? Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType : RecordSchema.DefaultClrType(Type);

    internal static ColumnSchema ForProperty(PropertyInfo property, string name, ColumnType type, bool isNullable, int maxLength) =>
        new(name, type, isNullable, maxLength) { Property = property };

    internal static ColumnSchema SourceNameColumn() => new("source", ColumnType.Text, isNullable: false) { IsSourceName = true };

    internal ColumnSchema Bind(int ordinal, bool isKey)
    {
        Ordinal = ordinal;
        IsKey = isKey;
        if (isKey)
        {
            IsNullable = false;
        }

        return this;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} {Type}{(IsKey ? " key" : string.Empty)}{(IsNullable ? " null" : " not null")}";
}
