namespace Ingestion;

/// <summary>Marks a property of a typed record as part of its key. Several properties form a composite key, ordered by <see cref="Order"/>.</summary>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false, Inherited = true)]
public sealed class RecordKeyAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    /// <param name="order">The position of this property in a composite key (lowest first).</param>
    public RecordKeyAttribute(int order = 0) => Order = order;

    /// <summary>The position of this property in a composite key.</summary>
    public int Order { get; }
}

/// <summary>Overrides how a property of a typed record maps to its column.</summary>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false, Inherited = true)]
public sealed class ColumnAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    /// <param name="name">The column name; <see langword="null"/> keeps the snake_case name of the property.</param>
    public ColumnAttribute(string? name = null) => Name = name;

    /// <summary>The column name, or <see langword="null"/> for the snake_case name of the property.</summary>
    public string? Name { get; }

    /// <summary>The maximum length of a text column (<c>varchar(n)</c>); 0 means unbounded.</summary>
    public int MaxLength { get; set; }

    /// <summary>Stores a <see cref="string"/> property as <c>jsonb</c>.</summary>
    public bool Json { get; set; }

    /// <summary>Stores a <see cref="DateTime"/> property as <c>timestamp</c> (no time zone) instead of <c>timestamptz</c>.</summary>
    public bool WithoutTimeZone { get; set; }
}

/// <summary>Excludes a property of a typed record from its columns.</summary>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false, Inherited = true)]
public sealed class IgnoreColumnAttribute : Attribute
{
}
