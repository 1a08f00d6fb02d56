using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Benchmarks.Data;

/// <summary>The SQL shape of <see cref="BenchRow"/>: one table definition shared by every case.</summary>
public static class BenchTable
{
    /// <summary>The column names, in <see cref="BenchRow"/> order (the snake_case names our sink derives).</summary>
    public static readonly IReadOnlyList<string> Columns =
        ["region", "code", "observed_at", "name", "category", "quantity", "latitude", "longitude", "description", "active"];

    /// <summary>The comma-separated column list.</summary>
    public static string ColumnList { get; } = string.Join(", ", Columns);

    /// <summary>The DDL of a fresh table, with the two-text primary key unless <paramref name="primaryKey"/> is false.</summary>
    /// <param name="table">A table name made by the harness (never from data).</param>
    /// <param name="primaryKey">Whether to declare the primary key (region, code).</param>
    /// <returns>The CREATE TABLE statement.</returns>
    public static string CreateSql(string table, bool primaryKey = true) => $"""
        CREATE TABLE {table} (
            region      text             NOT NULL,
            code        text             NOT NULL,
            observed_at timestamptz      NOT NULL,
            name        text             NOT NULL,
            category    smallint         NOT NULL,
            quantity    integer          NOT NULL,
            latitude    double precision NOT NULL,
            longitude   double precision NOT NULL,
            description text             NOT NULL,
            active      boolean          NOT NULL{(primaryKey ? ",\n    PRIMARY KEY (region, code)" : string.Empty)})
        """;

    /// <summary>The statement that adds the primary key (region, code) to a table of this shape made without it.</summary>
    /// <param name="table">A table name made by the harness (never from data).</param>
    /// <returns>The ALTER TABLE statement.</returns>
    public static string AddPrimaryKeySql(string table) => $"ALTER TABLE {table} ADD PRIMARY KEY (region, code)";

    /// <summary>
    /// Copies rows into a table of this shape with a plain, hand-written binary COPY (the way Npgsql's documentation
    /// shows it): the reference every comparison and benchmark measures our sink against.
    /// </summary>
    /// <param name="connection">An open connection.</param>
    /// <param name="table">A table name made by the harness (never from data).</param>
    /// <param name="rows">The rows.</param>
    /// <returns>The number of rows copied, as the server reports it.</returns>
    public static ulong CopyRaw(NpgsqlConnection connection, string table, IEnumerable<BenchRow> rows)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(rows);
        using var importer = connection.BeginBinaryImport($"COPY {table} ({ColumnList}) FROM STDIN (FORMAT BINARY)");
        importer.Timeout = TimeSpan.Zero;
        foreach (var r in rows)
        {
            importer.StartRow();
            importer.Write(r.Region, NpgsqlDbType.Text);
            importer.Write(r.Code, NpgsqlDbType.Text);
            importer.Write(r.ObservedAt, NpgsqlDbType.TimestampTz);
            importer.Write(r.Name, NpgsqlDbType.Text);
            importer.Write(r.Category, NpgsqlDbType.Smallint);
            importer.Write(r.Quantity, NpgsqlDbType.Integer);
            importer.Write(r.Latitude, NpgsqlDbType.Double);
            importer.Write(r.Longitude, NpgsqlDbType.Double);
            importer.Write(r.Description, NpgsqlDbType.Text);
            importer.Write(r.Active, NpgsqlDbType.Boolean);
        }

        return importer.Complete();
    }
}
