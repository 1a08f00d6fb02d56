using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;

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
        return (long)BenchTable.CopyRaw(connection, Table, RowGenerator.Rows(RowPlan.Initial, context.Rows));
    }

    /// <inheritdoc />
    public override Task VerifyAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExpectRowCountAsync(Table, context.Rows, cancellationToken);

    /// <inheritdoc />
    public override Task TearDownAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);
}
