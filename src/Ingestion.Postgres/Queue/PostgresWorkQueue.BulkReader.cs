using Ingestion.Queue;

namespace Ingestion.Postgres.Queue;

/// <summary>The reading side of bulk enqueue: the caller's items in checked, key-ordered chunks, one chunk read ahead.</summary>
public sealed partial class PostgresWorkQueue
{
    /// <summary>
    /// Reads the items of a bulk enqueue in chunks, checked and put in key order, one chunk ahead of the COPY: while
    /// the server takes a chunk, the next is read from the caller's sequence and sorted on a pool thread, so the client's
    /// work overlaps the server's instead of alternating with it. The caller's enumerator is only ever used by one
    /// read at a time (a read ahead is awaited before the next read, and before disposal). Chunks start at
    /// <see cref="FirstDirectChunkRows"/> and double up to <see cref="DirectChunkRows"/> (or <see cref="DirectChunkChars"/>
    /// characters of keys and payloads), so the first COPY starts early. At most two chunks are held, and a chunk's
    /// arrays are reused once the chunk after it is handed out.
    /// </summary>
    private sealed class BulkReader(IAsyncEnumerator<WorkItemRequest> items, string queue) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private int _nextRows = FirstDirectChunkRows;
        private long _read;
        private bool _more = true;
        private bool _started;
        private Task<BulkChunk?>? _ahead;
        private BulkChunk? _current;
        private BulkChunk? _spare;

        /// <summary>
        /// The next chunk (the one read ahead, if any), or <see langword="null"/> at the end of the items. The chunk
        /// returned before is done with: its arrays are reused for the next read ahead.
        /// </summary>
        public async Task<BulkChunk?> NextAsync(CancellationToken cancellationToken)
        {
            var ahead = _ahead;
            _ahead = null;
            var next = await (ahead ?? ReadAsync(TakeSpare(), cancellationToken, _stop.Token)).ConfigureAwait(false);
            _spare ??= _current;
            _current = next;
            return next;
        }

        /// <summary>Starts reading the next chunk on a pool thread, unless the items are exhausted or a read is pending.</summary>
        public void ReadAhead(CancellationToken cancellationToken)
        {
            if (_more && _ahead is null)
            {
                var token = _stop.Token;
                var spare = TakeSpare();
                _ahead = Task.Run(() => ReadAsync(spare, cancellationToken, token), CancellationToken.None);
            }
        }

        /// <summary>
        /// The items not handed out in chunks yet (the chunk read ahead, then the rest of the sequence) as one
        /// enumerator positioned on its first item, for the staged path; <see langword="null"/> when there are none.
        /// </summary>
        public async Task<IAsyncEnumerator<WorkItemRequest>?> RemainingAsync(CancellationToken cancellationToken)
        {
            List<WorkItemRequest>? buffered = null;
            if (_ahead is { } ahead)
            {
                _ahead = null;
                buffered = (await ahead.ConfigureAwait(false))?.ToRequests();
            }

            await StartAsync().ConfigureAwait(false);
            var rest = Concat(buffered, _more ? items : null).GetAsyncEnumerator(cancellationToken);
            if (await rest.MoveNextAsync().ConfigureAwait(false))
            {
                return rest;
            }

            await rest.DisposeAsync().ConfigureAwait(false);
            return null;
        }

        private static async IAsyncEnumerable<WorkItemRequest> Concat(List<WorkItemRequest>? buffered, IAsyncEnumerator<WorkItemRequest>? positioned)
        {
            foreach (var item in buffered ?? [])
            {
                yield return item;
            }

            if (positioned is not null)
            {
                do
                {
                    yield return positioned.Current;
                }
                while (await positioned.MoveNextAsync().ConfigureAwait(false));
            }
        }

        private async ValueTask StartAsync()
        {
            if (!_started)
            {
                _started = true;
                _more = await items.MoveNextAsync().ConfigureAwait(false);
            }
        }

        private BulkChunk? TakeSpare()
        {
            var spare = _spare;
            _spare = null;
            return spare;
        }

        private async Task<BulkChunk?> ReadAsync(BulkChunk? spare, CancellationToken cancellationToken, CancellationToken stop)
        {
            await StartAsync().ConfigureAwait(false);
            if (!_more)
            {
                return null;
            }

            var rows = _nextRows;
            _nextRows = Math.Min(rows * 2, DirectChunkRows);
            var chunk = spare ?? new BulkChunk();
            chunk.Reset(_read);
            while (_more && chunk.Count < rows && chunk.TextLength < DirectChunkChars)
            {
                var item = items.Current ?? throw new ArgumentException($"Bulk enqueue to queue '{queue}': item {chunk.Start + chunk.Count + 1} is null.", "items");
                CheckKey(item.Key, $"item {chunk.Start + chunk.Count + 1}");
                chunk.Add(item);
                if ((chunk.Count & 4095) == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    stop.ThrowIfCancellationRequested();
                }

                _more = await items.MoveNextAsync().ConfigureAwait(false);
            }

            _read += chunk.Count;
            chunk.SortKeys();
            return chunk;
        }

        /// <summary>Stops a read ahead at its next check and waits for it, so the caller's enumerator is free to dispose.</summary>
        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            if (_ahead is { } ahead)
            {
                _ahead = null;
                try
                {
                    await ahead.ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A read ahead of a chunk that will not be sent: the call already failed (with its own error) or stopped.
                }
            }

            _stop.Dispose();
        }
    }
}
