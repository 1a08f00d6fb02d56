using System.Threading.Channels;
using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;

namespace Ingestion.Compare.Cases;

/// <summary>
/// <c>raw_copy_batches_then_pk</c> on two connections: while one batch's COPY is on the server, the next one is
/// already being sent on the other connection. The batches still commit in order with their checkpoint, as a
/// resumable load must: each transaction sets the checkpoint row only after the batch before it did, and the row's
/// lock holds its commit until that batch committed. The reference for what a second connection could give our
/// first load on this machine, measured by hand before building it into the sink. Keyed
/// (<c>raw_copy_pk_batches_2conn</c>), into a table that has its primary key from the start, beside
/// <c>ours_first_load_keyed</c>.
/// </summary>
/// <param name="keyed">Whether the table has its primary key while the rows are copied (no key build at the end).</param>
public sealed class RawCopyBatchesTwoConnectionsCase(bool keyed = false) : RawCopyBatchesThenPkCase(keyed)
{
    /// <inheritdoc />
    public override string Name => Keyed ? "raw_copy_pk_batches_2conn" : "raw_copy_batches_2conn_then_pk";

    /// <inheritdoc />
    protected override async Task<long> CopyBatchesAsync(CaseContext context, IEnumerable<BenchRow[]> batches, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(batches);
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var queue = Channel.CreateBounded<Turn>(2);
        var workers = new[] { Task.Run(() => WriteAsync(context, queue.Reader, failed), failed.Token), Task.Run(() => WriteAsync(context, queue.Reader, failed), failed.Token) };
        long copied = 0;
        try
        {
            var previous = Task.CompletedTask;
            foreach (var batch in batches)
            {
                copied += batch.Length;
                var turn = new Turn(batch, copied, previous, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                await queue.Writer.WriteAsync(turn, failed.Token);
                previous = turn.Saved.Task;
            }
        }
        catch (OperationCanceledException) when (failed.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // A worker failed: its exception is the one to report.
        }
        finally
        {
            queue.Writer.TryComplete();
        }

        await Task.WhenAll(workers);
        return copied;
    }

    private async Task WriteAsync(CaseContext context, ChannelReader<Turn> queue, CancellationTokenSource failed)
    {
        try
        {
            await using var connection = await context.DataSource.OpenConnectionAsync(failed.Token);
            await foreach (var turn in queue.ReadAllAsync(failed.Token))
            {
                await using var tx = await connection.BeginTransactionAsync(failed.Token);
                BenchTable.CopyRaw(connection, Table, turn.Rows);
                await turn.Previous.WaitAsync(failed.Token);
                await SaveCheckpointAsync(connection, tx, turn.CopiedThrough, failed.Token);
                turn.Saved.SetResult();
                await tx.CommitAsync(failed.Token);
            }
        }
        catch
        {
            await failed.CancelAsync();
            throw;
        }
    }

    /// <summary>One batch, the rows copied through it, and the checkpoint of the batch before it.</summary>
    private sealed record Turn(BenchRow[] Rows, long CopiedThrough, Task Previous, TaskCompletionSource Saved);
}
