using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;

namespace Ingestion.Compare.Cases;

/// <summary>
/// The ceiling of a first load into a fresh table: the same hand-written binary COPY as <c>raw_copy_pk</c>, into a table
/// without its key, then <c>ALTER TABLE ... ADD PRIMARY KEY</c> (both timed). Our sink's first load builds the key after
/// the rows the same way, so <c>ours_first_load</c> is measured against this too.
/// </summary>
public sealed class RawCopyThenPkCase : CompareCase
{
    private const string Table = "bench_raw_copy_then_pk";

    /// <inheritdoc />
    public override string Name => "raw_copy_then_pk";

    /// <inheritdoc />
    public override async Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);
        await context.ExecuteAsync(BenchTable.CreateSql(Table, primaryKey: false), cancellationToken);
    }

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        long copied;
        await using (var connection = await context.DataSource.OpenConnectionAsync(cancellationToken))
        {
            copied = (long)BenchTable.CopyRaw(connection, Table, RowGenerator.Rows(RowPlan.Initial, context.Rows));
        }

        await context.ExecuteAsync(BenchTable.AddPrimaryKeySql(Table), cancellationToken);
        return copied;
    }

    /// <inheritdoc />
    public override async Task VerifyAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await context.ExpectRowCountAsync(Table, context.Rows, cancellationToken);
        await context.ExpectPrimaryKeyAsync(Table, cancellationToken);
    }

    /// <inheritdoc />
    public override Task TearDownAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);
}
