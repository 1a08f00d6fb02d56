namespace Ingestion.Plugins;

/// <summary>
/// Wraps a plug-in's source so that a run's cancellation (its timeout, or the host shutting down) always
/// stops the run, even when the source ignores its token and hangs: the pending read is abandoned and the
/// runner goes on. The abandoned read is disposed in the background when (if ever) it completes.
/// </summary>
/// <typeparam name="TRecord">The record type.</typeparam>
internal sealed class GuardedSource<TRecord>(IIngestionSource<TRecord> inner) : IIngestionSource<TRecord>
    where TRecord : class
{
    public Type RecordType => typeof(TRecord);

    /// <summary>The plug-in's source.</summary>
    public IIngestionSource<TRecord> Inner { get; } = inner;

    public IAsyncEnumerable<TRecord> ReadAsync(IngestionContext context, CancellationToken cancellationToken) =>
        new Sequence(Inner, context, cancellationToken);

    private sealed class Sequence(IIngestionSource<TRecord> source, IngestionContext context, CancellationToken readToken) : IAsyncEnumerable<TRecord>
    {
        public IAsyncEnumerator<TRecord> GetAsyncEnumerator(CancellationToken cancellationToken = default) =>
            new Enumerator(source, context, readToken.CanBeCanceled ? readToken : cancellationToken);
    }

    private sealed class Enumerator(IIngestionSource<TRecord> source, IngestionContext context, CancellationToken cancellationToken) : IAsyncEnumerator<TRecord>
    {
        private IAsyncEnumerator<TRecord>? _inner;
        private Task<bool>? _abandoned;

        public TRecord Current => _inner is null ? throw new InvalidOperationException("MoveNextAsync was not called.") : _inner.Current;

        public async ValueTask<bool> MoveNextAsync()
        {
            cancellationToken.ThrowIfCancellationRequested();
            _inner ??= source.ReadAsync(context, cancellationToken).GetAsyncEnumerator(cancellationToken);
            var next = _inner.MoveNextAsync();
            if (next.IsCompleted || !cancellationToken.CanBeCanceled)
            {
                return await next.ConfigureAwait(false);
            }

            var pending = next.AsTask();
            try
            {
                return await pending.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !pending.IsCompleted)
            {
                _abandoned = pending;
                throw;
            }
        }

        public ValueTask DisposeAsync()
        {
            if (_inner is null)
            {
                return ValueTask.CompletedTask;
            }

            if (_abandoned is { } pending)
            {
                // The source is still inside MoveNextAsync; disposing it now is not allowed and waiting could take forever.
                var inner = _inner;
                _ = pending.ContinueWith(
                    static (_, state) => ((IAsyncEnumerator<TRecord>)state!).DisposeAsync().AsTask(),
                    inner,
                    CancellationToken.None,
                    TaskContinuationOptions.None,
                    TaskScheduler.Default).Unwrap().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
                return ValueTask.CompletedTask;
            }

            return _inner.DisposeAsync();
        }
    }
}
