namespace Ingestion;

/// <summary>The storage type of a record column, independent of any database driver.</summary>
public enum ColumnType
{
    /// <summary>Text (<see cref="string"/>); PostgreSQL <c>text</c>, or <c>varchar(n)</c> when a maximum length is set.</summary>
    Text,
    /// <summary>A boolean (<see cref="bool"/>).</summary>
    Boolean,
    /// <summary>A 16-bit integer (<see cref="short"/>).</summary>
    Int16,
    /// <summary>A 32-bit integer (<see cref="int"/>).</summary>
    Int32,
    /// <summary>A 64-bit integer (<see cref="long"/>).</summary>
    Int64,
    /// <summary>A single-precision float (<see cref="float"/>).</summary>
    Float32,
    /// <summary>A double-precision float (<see cref="double"/>).</summary>
    Float64,
    /// <summary>An exact decimal (<see cref="decimal"/>); PostgreSQL <c>numeric</c>.</summary>
    Decimal,
    /// <summary>A calendar date (<see cref="DateOnly"/>).</summary>
    Date,
    /// <summary>An instant (<see cref="DateTimeOffset"/>, or <see cref="DateTime"/> of kind UTC); PostgreSQL <c>timestamptz</c>.</summary>
    TimestampTz,
    /// <summary>A wall-clock date and time without zone (<see cref="DateTime"/> of unspecified kind); PostgreSQL <c>timestamp</c>.</summary>
    Timestamp,
    /// <summary>A UUID (<see cref="Guid"/>).</summary>
    Uuid,
    /// <summary>A JSON document held as text (<see cref="string"/>); PostgreSQL <c>jsonb</c>.</summary>
    Json,
    /// <summary>Raw bytes (<see cref="byte"/> array); PostgreSQL <c>bytea</c>.</summary>
    Bytes,
    /// <summary>A geometry (<see cref="GeoPoint"/>, <see cref="GeoJsonGeometry"/>, or a NetTopologySuite <c>Geometry</c> with the PostgreSQL sink); PostGIS <c>geometry</c> in SRID 4326.</summary>
    Geometry,
}
