using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;
using NpgsqlTypes;

namespace Ingestion.Compare.Cases;

/// <summary>
/// The reference: a hand-written Npgsql binary COPY of the generated rows into a fresh table with the
/// same two-text primary key, in one COPY, written the way Npgsql's documentation shows.
/// </summary>
public sealed class RawCopyPkCase : CompareCase
{
    private const string Table = "bench_raw_copy_pk";

    /// <inheritdoc />
    public override string Name => "raw_copy_pk";

    /// <inheritdoc />
    public override Task SetUpAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.CreateFreshTableAsync(Table, cancellationToken);

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        await using var connection = await context.DataSource.OpenConnectionAsync(cancellationToken);
        return Copy(connection, Table, RowGenerator.Rows(RowPlan.Initial, context.Rows));
    }

    /// <inheritdoc />
    public override Task VerifyAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExpectRowCountAsync(Table, context.Rows, cancellationToken);

    /// <inheritdoc />
    public override Task TearDownAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);

    /// <summary>Copies rows into a table of the benchmark shape with a plain binary COPY.</summary>
    /// <param name="connection">An open connection.</param>
    /// <param name="table">The table.</param>
    /// <param name="rows">The rows.</param>
    /// <returns>The number of rows copied, as the server reports it.</returns>
    public static long Copy(Npgsql.NpgsqlConnection connection, string table, IEnumerable<BenchRow> rows)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(rows);
        using var importer = connection.BeginBinaryImport($"COPY {table} ({BenchTable.ColumnList}) FROM STDIN (FORMAT BINARY)");
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

        return (long)importer.Complete();
    }
}
