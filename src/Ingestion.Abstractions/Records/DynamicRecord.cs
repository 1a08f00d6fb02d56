namespace Ingestion;

/// <summary>
/// A record whose columns are known only at run time (CSV headers, CKAN fields). The values are
/// stored in schema order; the runtime-filled <c>source</c> column, when present, is left null here.
/// </summary>
public sealed class DynamicRecord
{
    private readonly object?[] _values;

    /// <summary>Creates an empty record of a schema.</summary>
    /// <param name="schema">The schema; share one instance among all records of a run.</param>
    public DynamicRecord(RecordSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        Schema = schema;
        _values = new object?[schema.Columns.Count];
    }

    /// <summary>Creates a record from values in schema order.</summary>
    /// <param name="schema">The schema.</param>
    /// <param name="values">One value per column, in schema order (the array is used, not copied).</param>
    /// <exception cref="ArgumentException">The number of values differs from the number of columns.</exception>
    public DynamicRecord(RecordSchema schema, object?[] values)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != schema.Columns.Count)
        {
            throw new ArgumentException($"Expected {schema.Columns.Count} values for the schema, got {values.Length}.", nameof(values));
        }

        Schema = schema;
        _values = values;
    }

    /// <summary>The schema of the record.</summary>
    public RecordSchema Schema { get; }

    /// <summary>The values in schema order.</summary>
    public ReadOnlySpan<object?> Values => _values;

    /// <summary>Gets or sets a value by ordinal.</summary>
    /// <param name="ordinal">The column position.</param>
    public object? this[int ordinal]
    {
        get => _values[ordinal];
        set => _values[ordinal] = value;
    }

    /// <summary>Gets or sets a value by column name.</summary>
    /// <param name="column">The column name.</param>
    /// <exception cref="KeyNotFoundException">The schema has no such column.</exception>
    public object? this[string column]
    {
        get => _values[Ordinal(column)];
        set => _values[Ordinal(column)] = value;
    }

    private int Ordinal(string column)
    {
        var i = Schema.IndexOf(column);
        return i >= 0 ? i : throw new KeyNotFoundException($"The record schema has no column '{column}'.");
    }
}
