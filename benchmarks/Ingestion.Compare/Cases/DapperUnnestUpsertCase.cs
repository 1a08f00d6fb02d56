using Dapper;
using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;

namespace Ingestion.Compare.Cases;

/// <summary>
/// Dapper: <c>INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE ... WHERE IS DISTINCT FROM</c>,
/// 5,000 rows a statement (one array parameter per column), into a fresh table with the primary key:
/// the common hand-rolled bulk upsert.
/// </summary>
public sealed class DapperUnnestUpsertCase : CompareCase
{
    private const string Table = "bench_dapper";
    private const int Chunk = 5_000;

    private static readonly string Sql = $"""
        INSERT INTO {Table} AS t ({BenchTable.ColumnList})
        SELECT * FROM unnest(@Region::text[], @Code::text[], @ObservedAt::timestamptz[], @Name::text[], @Category::smallint[],
                             @Quantity::integer[], @Latitude::float8[], @Longitude::float8[], @Description::text[], @Active::boolean[])
        ON CONFLICT (region, code) DO UPDATE SET
            observed_at = EXCLUDED.observed_at, name = EXCLUDED.name, category = EXCLUDED.category,
            quantity = EXCLUDED.quantity, latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
            description = EXCLUDED.description, active = EXCLUDED.active
        WHERE (t.observed_at, t.name, t.category, t.quantity, t.latitude, t.longitude, t.description, t.active)
              IS DISTINCT FROM
              (EXCLUDED.observed_at, EXCLUDED.name, EXCLUDED.category, EXCLUDED.quantity, EXCLUDED.latitude,
               EXCLUDED.longitude, EXCLUDED.description, EXCLUDED.active)
        """;

    /// <inheritdoc />
    public override string Name => "dapper_unnest_upsert";

    /// <inheritdoc />
    public override Task SetUpAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.CreateFreshTableAsync(Table, cancellationToken);

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        await using var connection = await context.DataSource.OpenConnectionAsync(cancellationToken);
        long written = 0;
        foreach (var chunk in RowGenerator.Rows(RowPlan.Initial, context.Rows).Chunk(Chunk))
        {
            var args = new
            {
                Region = chunk.Select(r => r.Region).ToArray(),
                Code = chunk.Select(r => r.Code).ToArray(),
                ObservedAt = chunk.Select(r => r.ObservedAt).ToArray(),
                Name = chunk.Select(r => r.Name).ToArray(),
                Category = chunk.Select(r => r.Category).ToArray(),
                Quantity = chunk.Select(r => r.Quantity).ToArray(),
                Latitude = chunk.Select(r => r.Latitude).ToArray(),
                Longitude = chunk.Select(r => r.Longitude).ToArray(),
                Description = chunk.Select(r => r.Description).ToArray(),
                Active = chunk.Select(r => r.Active).ToArray(),
            };
            written += await connection.ExecuteAsync(new CommandDefinition(Sql, args, commandTimeout: 0, cancellationToken: cancellationToken));
        }

        return written;
    }

    /// <inheritdoc />
    public override Task VerifyAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExpectRowCountAsync(Table, context.Rows, cancellationToken);

    /// <inheritdoc />
    public override Task TearDownAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);
}
