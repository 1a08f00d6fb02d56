using System.Linq.Expressions;

namespace Ingestion.Sinks;

/// <summary>
/// Reads column values of records without per-row reflection: for typed records, accessors are
/// compiled once per schema; for <see cref="DynamicRecord"/>, values come from the record itself.
/// Values are boxed: this is the general-purpose path (in-memory sink, dedup keys, tests), not the COPY hot path.
/// </summary>
/// <typeparam name="TRecord">The record type.</typeparam>
public sealed class RecordValues<TRecord>
    where TRecord : class
{
    /// <summary>Each property's boxing getter, compiled once per process (see the sink's field accessors).</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<System.Reflection.PropertyInfo, Func<TRecord, object?>> Getters = new();

    private readonly Func<TRecord, object?>?[]? _getters;

    /// <summary>Builds the readers for a typed schema, or for dynamic records when <paramref name="schema"/> is <see langword="null"/>.</summary>
    /// <param name="schema">The typed schema, or <see langword="null"/> for <see cref="DynamicRecord"/>.</param>
    /// <exception cref="ArgumentException">The schema was built for another type.</exception>
    public RecordValues(RecordSchema? schema)
    {
        if (schema is null)
        {
            if (typeof(TRecord) != typeof(DynamicRecord))
            {
                throw new ArgumentException($"Typed record '{typeof(TRecord).Name}' needs a schema.", nameof(schema));
            }

            return;
        }

        if (schema.RecordType is { } t && !t.IsAssignableFrom(typeof(TRecord)))
        {
            throw new ArgumentException($"The schema was built for '{t.Name}', not '{typeof(TRecord).Name}'.", nameof(schema));
        }

        _getters = new Func<TRecord, object?>?[schema.Columns.Count];
        foreach (var c in schema.Columns)
        {
            if (c.Property is { } prop)
            {
                _getters[c.Ordinal] = Getters.GetOrAdd(prop, static prop =>
                {
                    var p = Expression.Parameter(typeof(TRecord), "r");
                    return Expression.Lambda<Func<TRecord, object?>>(Expression.Convert(Expression.Property(p, prop), typeof(object)), p).Compile();
                });
            }
        }

        Schema = schema;
    }

    /// <summary>The typed schema, or <see langword="null"/> for dynamic records.</summary>
    public RecordSchema? Schema { get; }

    /// <summary>The schema of a record.</summary>
    /// <param name="record">The record.</param>
    /// <returns>Its schema.</returns>
    public RecordSchema SchemaOf(TRecord record) => Schema ?? ((DynamicRecord)(object)record).Schema;

    /// <summary>Reads one column of a record; the source-name column reads <paramref name="sourceName"/>.</summary>
    /// <param name="record">The record.</param>
    /// <param name="column">The column.</param>
    /// <param name="sourceName">The source name, for the default key's <c>source</c> column.</param>
    /// <returns>The value (boxed), or <see langword="null"/>.</returns>
    public object? Get(TRecord record, ColumnSchema column, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(column);
        if (column.IsSourceName)
        {
            return sourceName;
        }

        return _getters is null ? ((DynamicRecord)(object)record)[column.Ordinal] : _getters[column.Ordinal]!(record);
    }
}
