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
}
