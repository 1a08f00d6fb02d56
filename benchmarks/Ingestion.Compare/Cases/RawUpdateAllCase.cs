using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;
using Npgsql;

namespace Ingestion.Compare.Cases;

/// <summary>
/// PostgreSQL's own cost of rewriting every row of a keyed table, written by hand the shortest way: the changed rows
/// (<see cref="RowPlan.AllChanged"/>) copied into a temporary table, then one <c>UPDATE ... FROM</c> joined on the key,
/// in one transaction. No batches, no change detection, no counts. It is the reference that shows how far
/// <c>ours_update_all</c>'s goal (against <c>raw_copy_pk</c>) is from what any client can get from the server.
/// </summary>
public sealed class RawUpdateAllCase : CompareCase
{
    private const string Table = "bench_raw_update_all";
    private const string Stage = "bench_raw_update_all_stage";

    /// <inheritdoc />
    public override string Name => "raw_update_all";

    /// <inheritdoc />
    public override async Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await context.CreateFreshTableAsync(Table, cancellationToken);
        await using (var connection = await context.DataSource.OpenConnectionAsync(cancellationToken))
        {
            BenchTable.CopyRaw(connection, Table, RowGenerator.Rows(RowPlan.Initial, context.Rows));
        }

        await context.ExecuteAsync($"VACUUM (ANALYZE) {Table}", cancellationToken);
    }

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await using var connection = await context.DataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await Execute(connection, $"CREATE TEMP TABLE {Stage} (LIKE {Table}) ON COMMIT DROP", cancellationToken);
        BenchTable.CopyRaw(connection, Stage, RowGenerator.Rows(RowPlan.AllChanged, context.Rows));
        var set = string.Join(", ", BenchTable.Columns.Skip(2).Select(c => $"{c} = s.{c}"));
        var updated = await Execute(connection, $"UPDATE {Table} t SET {set} FROM {Stage} s WHERE t.region = s.region AND t.code = s.code", cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return updated;
    }

    /// <inheritdoc />
    public override async Task VerifyAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await context.ExpectRowCountAsync(Table, context.Rows, cancellationToken);
        var expected = RowGenerator.Rows(RowPlan.AllChanged, context.Rows).Sum(r => (decimal)r.Quantity);
        var actual = await context.ScalarAsync<decimal>($"SELECT sum(quantity::numeric) FROM {Table}", cancellationToken);
        if (actual != expected)
        {
            throw new InvalidOperationException($"{Table} has sum(quantity) = {actual} after the update; the changed rows make {expected}.");
        }
    }

    /// <inheritdoc />
    public override Task TearDownAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);

    private static async Task<int> Execute(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}
