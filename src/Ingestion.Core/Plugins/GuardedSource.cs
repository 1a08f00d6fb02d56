namespace Ingestion.Plugins;

/// <summary>
/// Wraps a plug-in's source so that a run's cancellation (its timeout, or the host shutting down) always
/// stops the run, even when the source ignores its token and hangs: the pending read is abandoned and the
/// runner goes on. The abandoned read is disposed in the background when (if ever) it completes.
/// Every error of the source is prefixed with the plug-in's name and file (<paramref name="origin"/>), keeping its
/// position, field and transient nature, so a run's error always says which plug-in failed.
/// </summary>
/// <typeparam name="TRecord">The record type.</typeparam>
internal sealed class GuardedSource<TRecord>(IIngestionSource<TRecord> inner, string origin) : IIngestionSource<TRecord>
    where TRecord : class
{
    public Type RecordType => typeof(TRecord);

    /// <summary>The plug-in's source.</summary>
    public IIngestionSource<TRecord> Inner { get; } = inner;

    public IAsyncEnumerable<TRecord> ReadAsync(IngestionContext context, CancellationToken cancellationToken) =>
        new Sequence(Inner, origin, context, cancellationToken);

    private sealed class Sequence(IIngestionSource<TRecord> source, string origin, IngestionContext context, CancellationToken readToken) : IAsyncEnumerable<TRecord>
    {
        public IAsyncEnumerator<TRecord> GetAsyncEnumerator(CancellationToken cancellationToken = default) =>
            new Enumerator(source, origin, context, readToken.CanBeCanceled ? readToken : cancellationToken);
    }

    private sealed class Enumerator(IIngestionSource<TRecord> source, string origin, IngestionContext context, CancellationToken cancellationToken) : IAsyncEnumerator<TRecord>
    {
        private IAsyncEnumerator<TRecord>? _inner;
        private Task<bool>? _abandoned;

        public TRecord Current => _inner is null ? throw new InvalidOperationException("MoveNextAsync was not called.") : _inner.Current;

        public async ValueTask<bool> MoveNextAsync()
        {
            try
            {
                return await NextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not (OutOfMemoryException or Sinks.RejectBudgetExceededException) && !(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
            {
                // The runner's own error budget passes through as is; everything the plug-in throws names it.
                throw PluginErrors.Prefixed(origin, e);
            }
        }

        private async ValueTask<bool> NextAsync()
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

/// <summary>Puts a plug-in's name and file in front of its errors.</summary>
internal static class PluginErrors
{
    /// <summary>The same error, prefixed with the plug-in (<c>Plug-in name ('file'): ...</c>), keeping position, field and retry hints.</summary>
    public static IngestionException Prefixed(string origin, Exception e) => e switch
    {
        TransientIngestionException t => new TransientIngestionException($"{origin}: {t.Message}", t) { SourceName = t.SourceName, Position = t.Position, Field = t.Field, RetryAfter = t.RetryAfter },
        IngestionException i => new IngestionException($"{origin}: {i.Message}", i) { SourceName = i.SourceName, Position = i.Position, Field = i.Field },
        _ => new IngestionException($"{origin}: {PluginGeneration.Describe(e)}", e),
    };
}
