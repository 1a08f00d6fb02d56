using NpgsqlTypes;

namespace Ingestion.Postgres.Sinks;

/// <summary>The PostgreSQL storage family of a target column, which decides how a value is sent in binary COPY.</summary>
internal enum PgKind
{
    Text,
    Jsonb,
    Json,
    Boolean,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Numeric,
    Date,
    TimestampTz,
    Timestamp,
    Uuid,
    Bytea,
    Geometry,
}

/// <summary>A column of a target table as the writer uses it.</summary>
internal sealed class PgColumn
{
    public required string Name { get; init; }

    public required string Quoted { get; init; }

    public required PgKind Kind { get; init; }

    /// <summary>The declared SQL type, for messages (e.g. <c>varchar(20)</c>).</summary>
    public required string SqlType { get; init; }

    /// <summary>Maximum length in characters of a <c>varchar(n)</c>/<c>char(n)</c> column; 0: unbounded.</summary>
    public int MaxLength { get; init; }

    /// <summary>Precision of a <c>numeric(p,s)</c> column; 0: unconstrained.</summary>
    public int Precision { get; init; }

    /// <summary>Scale of a <c>numeric(p,s)</c> column.</summary>
    public int Scale { get; init; }

    /// <summary>Whether the table column is NOT NULL.</summary>
    public bool NotNull { get; init; }

    public NpgsqlDbType DbType => Kind switch
    {
        PgKind.Text => NpgsqlDbType.Text,
        PgKind.Jsonb => NpgsqlDbType.Jsonb,
        PgKind.Json => NpgsqlDbType.Json,
        PgKind.Boolean => NpgsqlDbType.Boolean,
        PgKind.Int16 => NpgsqlDbType.Smallint,
        PgKind.Int32 => NpgsqlDbType.Integer,
        PgKind.Int64 => NpgsqlDbType.Bigint,
        PgKind.Float32 => NpgsqlDbType.Real,
        PgKind.Float64 => NpgsqlDbType.Double,
        PgKind.Numeric => NpgsqlDbType.Numeric,
        PgKind.Date => NpgsqlDbType.Date,
        PgKind.TimestampTz => NpgsqlDbType.TimestampTz,
        PgKind.Timestamp => NpgsqlDbType.Timestamp,
        PgKind.Uuid => NpgsqlDbType.Uuid,
        _ => NpgsqlDbType.Bytea,
    };

    /// <summary>Maps a PostgreSQL base type name (<c>pg_type.typname</c>) to a kind, or <see langword="null"/> when the writer cannot fill it.</summary>
    public static PgKind? KindOf(string typeName) => typeName switch
    {
        "text" or "varchar" or "bpchar" or "citext" or "name" => PgKind.Text,
        "jsonb" => PgKind.Jsonb,
        "json" => PgKind.Json,
        "bool" => PgKind.Boolean,
        "int2" => PgKind.Int16,
        "int4" => PgKind.Int32,
        "int8" => PgKind.Int64,
        "float4" => PgKind.Float32,
        "float8" => PgKind.Float64,
        "numeric" => PgKind.Numeric,
        "date" => PgKind.Date,
        "timestamptz" => PgKind.TimestampTz,
        "timestamp" => PgKind.Timestamp,
        "uuid" => PgKind.Uuid,
        "bytea" => PgKind.Bytea,
        "geometry" => PgKind.Geometry,
        _ => null,
    };

    /// <summary>Whether a record column of type <paramref name="type"/> can be written into a column of kind <paramref name="kind"/> without loss of meaning.</summary>
    public static bool Compatible(ColumnType type, PgKind kind) => type switch
    {
        ColumnType.Text => kind is PgKind.Text,
        ColumnType.Json => kind is PgKind.Jsonb or PgKind.Json or PgKind.Text,
        ColumnType.Boolean => kind is PgKind.Boolean,
        ColumnType.Int16 or ColumnType.Int32 or ColumnType.Int64 => kind is PgKind.Int16 or PgKind.Int32 or PgKind.Int64 or PgKind.Numeric,
        ColumnType.Float32 or ColumnType.Float64 => kind is PgKind.Float32 or PgKind.Float64 or PgKind.Numeric,
        ColumnType.Decimal => kind is PgKind.Numeric or PgKind.Float64,
        ColumnType.Date => kind is PgKind.Date,
        ColumnType.TimestampTz => kind is PgKind.TimestampTz,
        ColumnType.Timestamp => kind is PgKind.Timestamp,
        ColumnType.Uuid => kind is PgKind.Uuid,
        ColumnType.Bytes => kind is PgKind.Bytea,
        ColumnType.Geometry => kind is PgKind.Geometry,
        _ => false,
    };

    /// <summary>The SQL type a created table uses for a record column.</summary>
    public static string SqlTypeFor(ColumnSchema column) => column.Type switch
    {
        ColumnType.Text => column.MaxLength > 0 ? $"varchar({column.MaxLength})" : "text",
        ColumnType.Json => "jsonb",
        ColumnType.Boolean => "boolean",
        ColumnType.Int16 => "smallint",
        ColumnType.Int32 => "integer",
        ColumnType.Int64 => "bigint",
        ColumnType.Float32 => "real",
        ColumnType.Float64 => "double precision",
        ColumnType.Decimal => "numeric",
        ColumnType.Date => "date",
        ColumnType.TimestampTz => "timestamptz",
        ColumnType.Timestamp => "timestamp",
        ColumnType.Uuid => "uuid",
        ColumnType.Bytes => "bytea",
        ColumnType.Geometry => "geometry(Geometry, 4326)",
        _ => throw new ArgumentOutOfRangeException(nameof(column), column.Type, "Unknown column type."),
    };
}
