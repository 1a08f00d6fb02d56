using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;
using Npgsql;

namespace Ingestion.Compare.Cases;

/// <summary>
/// <c>raw_copy_then_pk</c> committed batch by batch, as a load that can resume must be: the same hand-written binary
/// COPY into a table without its key, one transaction per batch of the runner's batch size (<c>--batch-size</c>, else
/// the library's default), each also saving a checkpoint row, then <c>ALTER TABLE ... ADD PRIMARY KEY</c>. One
/// thread, no checks, no hashes, no counts: the reference that shows what committing per batch alone costs against the
/// one-COPY ceiling, beside <c>ours_first_load</c>.
/// </summary>
public sealed class RawCopyBatchesThenPkCase : CompareCase
{
    private const string Table = "bench_raw_copy_batches_then_pk";
    private const string Checkpoints = "bench_raw_copy_batches_checkpoint";

    /// <inheritdoc />
    public override string Name => "raw_copy_batches_then_pk";

    /// <inheritdoc />
    public override async Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}, {Checkpoints}", cancellationToken);
        await context.ExecuteAsync(BenchTable.CreateSql(Table, primaryKey: false), cancellationToken);
        await context.ExecuteAsync($"CREATE TABLE {Checkpoints} (source text PRIMARY KEY, copied bigint NOT NULL)", cancellationToken);
        await context.ExecuteAsync($"INSERT INTO {Checkpoints} VALUES ('bench', 0)", cancellationToken);
    }

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var batchSize = context.Options.BatchSize ?? new Ingestion.SourceOptions().BatchSize;
        long copied = 0;
        await using (var connection = await context.DataSource.OpenConnectionAsync(cancellationToken))
        {
            foreach (var batch in RowGenerator.Rows(RowPlan.Initial, context.Rows).Chunk(batchSize))
            {
                await using var tx = await connection.BeginTransactionAsync(cancellationToken);
                copied += (long)BenchTable.CopyRaw(connection, Table, batch);
                await using (var save = new NpgsqlCommand($"UPDATE {Checkpoints} SET copied = $1 WHERE source = 'bench'", connection, tx))
                {
                    save.Parameters.Add(new NpgsqlParameter<long> { TypedValue = copied });
                    await save.ExecuteNonQueryAsync(cancellationToken);
                }

                await tx.CommitAsync(cancellationToken);
            }
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
        if (await context.ScalarAsync<long>($"SELECT copied FROM {Checkpoints}", cancellationToken) != context.Rows)
        {
            throw new InvalidOperationException($"{Checkpoints} does not record the {context.Rows} rows copied.");
        }
    }

    /// <inheritdoc />
    public override Task TearDownAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}, {Checkpoints}", cancellationToken);
}
