using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;
using Npgsql;

namespace Ingestion.Compare.Cases;

/// <summary>
/// <c>raw_copy_then_pk</c> committed batch by batch, as a load that can resume must be: the same hand-written binary
/// COPY into a table without its key, one transaction per batch of the runner's batch size (<c>--batch-size</c>, else
/// the library's default), each also saving a checkpoint row, then <c>ALTER TABLE ... ADD PRIMARY KEY</c>. One
/// thread, no checks, no hashes, no counts: the reference that shows what committing per batch alone costs against the
/// one-COPY ceiling, beside <c>ours_first_load</c>. Keyed (<c>raw_copy_pk_batches</c>), the table has its primary key
/// from the start, as <c>raw_copy_pk</c>'s has: the same per-batch commits, beside <c>ours_first_load_keyed</c>.
/// </summary>
/// <param name="keyed">Whether the table has its primary key while the rows are copied (no key build at the end).</param>
public class RawCopyBatchesThenPkCase(bool keyed = false) : CompareCase
{
    /// <summary>Whether the table has its primary key while the rows are copied.</summary>
    protected bool Keyed => keyed;

    /// <summary>The case's table.</summary>
    protected string Table => $"bench_{Name}";

    private string Checkpoints => $"bench_{Name}_checkpoint";

    /// <inheritdoc />
    public override string Name => keyed ? "raw_copy_pk_batches" : "raw_copy_batches_then_pk";

    /// <inheritdoc />
    public override async Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}, {Checkpoints}", cancellationToken);
        await context.ExecuteAsync(BenchTable.CreateSql(Table, primaryKey: keyed), cancellationToken);
        await context.ExecuteAsync($"CREATE TABLE {Checkpoints} (source text PRIMARY KEY, copied bigint NOT NULL)", cancellationToken);
        await context.ExecuteAsync($"INSERT INTO {Checkpoints} VALUES ('bench', 0)", cancellationToken);
    }

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var batchSize = context.Options.BatchSize ?? new Ingestion.SourceOptions().BatchSize;
        var copied = await CopyBatchesAsync(context, RowGenerator.Rows(RowPlan.Initial, context.Rows).Chunk(batchSize), cancellationToken);
        if (!keyed)
        {
            await context.ExecuteAsync(BenchTable.AddPrimaryKeySql(Table), cancellationToken);
        }

        return copied;
    }

    /// <summary>Copies the batches, each in its own transaction with the checkpoint; returns the rows copied.</summary>
    /// <param name="context">The case context.</param>
    /// <param name="batches">The batches, in order.</param>
    /// <param name="cancellationToken">Cancels the load.</param>
    /// <returns>The rows copied.</returns>
    protected virtual async Task<long> CopyBatchesAsync(CaseContext context, IEnumerable<BenchRow[]> batches, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(batches);
        long copied = 0;
        await using var connection = await context.DataSource.OpenConnectionAsync(cancellationToken);
        foreach (var batch in batches)
        {
            await using var tx = await connection.BeginTransactionAsync(cancellationToken);
            BenchTable.CopyRaw(connection, Table, batch);
            copied += batch.Length;
            await SaveCheckpointAsync(connection, tx, copied, cancellationToken);
            await tx.CommitAsync(cancellationToken);
        }

        return copied;
    }

    /// <summary>Sets the checkpoint row to the rows copied so far, inside the batch's transaction.</summary>
    /// <param name="connection">The batch's connection.</param>
    /// <param name="transaction">The batch's transaction.</param>
    /// <param name="copied">The rows copied through this batch.</param>
    /// <param name="cancellationToken">Cancels the statement.</param>
    /// <returns>A task.</returns>
    protected async Task SaveCheckpointAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long copied, CancellationToken cancellationToken)
    {
        await using var save = new NpgsqlCommand($"UPDATE {Checkpoints} SET copied = $1 WHERE source = 'bench'", connection, transaction);
        save.Parameters.Add(new NpgsqlParameter<long> { TypedValue = copied });
        await save.ExecuteNonQueryAsync(cancellationToken);
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
