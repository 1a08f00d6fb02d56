using Ingestion.Sinks;

namespace Ingestion.Sync;

/// <summary>
/// Work done alongside a sink, per run: after each written batch (with the batch's records and counts)
/// and at completion. Cross-source dedup and full-refresh deletion detection are hooks, so they work
/// with any sink. Register implementations in the container as <see cref="ISinkHook"/>; the runner
/// wraps each run's writer with the hooks interested in the run.
/// </summary>
public interface ISinkHook
{
    /// <summary>Starts the hook for one run attempt.</summary>
    /// <typeparam name="TRecord">The record type.</typeparam>
    /// <param name="run">The run.</param>
    /// <param name="cancellationToken">Cancels opening.</param>
    /// <returns>The hook's run, or <see langword="null"/> when the hook has nothing to do for this run.</returns>
    ValueTask<ISinkHookRun<TRecord>?> OpenAsync<TRecord>(SinkRun run, CancellationToken cancellationToken)
        where TRecord : class;
}

/// <summary>A hook's part in one run attempt.</summary>
/// <typeparam name="TRecord">The record type.</typeparam>
public interface ISinkHookRun<TRecord> : IAsyncDisposable
    where TRecord : class
{
    /// <summary>
    /// Called before the sink writes a batch, outside its transaction: work that must be durable before the batch's
    /// checkpoint is (e.g. cross-source dedup files the records as pending, so a failure after the batch commits never
    /// leaves them unmatched). Does nothing by default.
    /// </summary>
    /// <param name="batch">The batch.</param>
    /// <param name="cancellationToken">Cancels the hook.</param>
    /// <returns>A task.</returns>
    ValueTask BeforeBatchAsync(SinkBatch<TRecord> batch, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Called after the sink wrote a batch.</summary>
    /// <param name="batch">The batch.</param>
    /// <param name="written">The sink's counts for the batch (including what earlier hooks added).</param>
    /// <param name="cancellationToken">Cancels the hook.</param>
    /// <returns>The counts, with the hook's own added (e.g. <see cref="SinkBatchResult.Linked"/>).</returns>
    ValueTask<SinkBatchResult> AfterBatchAsync(SinkBatch<TRecord> batch, SinkBatchResult written, CancellationToken cancellationToken);

    /// <summary>Called after the sink completed the run.</summary>
    /// <param name="completion">What completing changed so far.</param>
    /// <param name="cancellationToken">Cancels the hook.</param>
    /// <returns>The completion, with the hook's own changes added (e.g. <see cref="SinkCompletion.Deleted"/>).</returns>
    ValueTask<SinkCompletion> AfterCompleteAsync(SinkCompletion completion, CancellationToken cancellationToken);
}

/// <summary>Wraps a sink writer with the hooks interested in a run.</summary>
public static class SinkHooks
{
    /// <summary>Opens the hooks for a run and wraps the writer; returns the writer itself when no hook is interested.</summary>
    /// <typeparam name="TRecord">The record type.</typeparam>
    /// <param name="writer">The sink's writer.</param>
    /// <param name="run">The run.</param>
    /// <param name="hooks">The registered hooks, in order.</param>
    /// <param name="cancellationToken">Cancels opening.</param>
    /// <returns>The writer to use.</returns>
    public static async ValueTask<ISinkWriter<TRecord>> WrapAsync<TRecord>(ISinkWriter<TRecord> writer, SinkRun run, IEnumerable<ISinkHook> hooks, CancellationToken cancellationToken)
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(hooks);
        var runs = new List<ISinkHookRun<TRecord>>();
        try
        {
            foreach (var hook in hooks)
            {
                if (await hook.OpenAsync<TRecord>(run, cancellationToken).ConfigureAwait(false) is { } r)
                {
                    runs.Add(r);
                }
            }
        }
        catch
        {
            foreach (var r in runs)
            {
                await r.DisposeAsync().ConfigureAwait(false);
            }

            await writer.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return runs.Count == 0 ? writer : new HookedWriter<TRecord>(writer, runs);
    }

    private sealed class HookedWriter<TRecord>(ISinkWriter<TRecord> inner, List<ISinkHookRun<TRecord>> runs) : ISinkWriter<TRecord>
        where TRecord : class
    {
        public async ValueTask<SinkBatchResult> WriteBatchAsync(SinkBatch<TRecord> batch, CancellationToken cancellationToken)
        {
            foreach (var r in runs)
            {
                await r.BeforeBatchAsync(batch, cancellationToken).ConfigureAwait(false);
            }

            var result = await inner.WriteBatchAsync(batch, cancellationToken).ConfigureAwait(false);
            foreach (var r in runs)
            {
                result = await r.AfterBatchAsync(batch, result, cancellationToken).ConfigureAwait(false);
            }

            return result;
        }

        public async ValueTask<SinkCompletion> CompleteAsync(CancellationToken cancellationToken)
        {
            var completion = await inner.CompleteAsync(cancellationToken).ConfigureAwait(false);
            foreach (var r in runs)
            {
                completion = await r.AfterCompleteAsync(completion, cancellationToken).ConfigureAwait(false);
            }

            return completion;
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                foreach (var r in runs)
                {
                    await r.DisposeAsync().ConfigureAwait(false);
                }
            }
            finally
            {
                await inner.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
