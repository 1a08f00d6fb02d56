using Ingestion.Queue;

namespace Ingestion.Postgres.Queue;

/// <summary>The reading side of bulk enqueue: the caller's items in checked, key-ordered chunks, one chunk read ahead.</summary>
public sealed partial class PostgresWorkQueue
{
    /// <summary>
    /// A chunk of a bulk enqueue: its items in input order, and the positions of the first item of each distinct key
    /// in key order (ordinal: UTF-16 order, the "C" collation's byte order but for rare surrogate pairs, which only
    /// costs index locality), which is the order the COPY sends them in.
    /// </summary>
    private sealed class BulkChunk
    {
        /// <summary>The items, in input order.</summary>
        public required List<WorkItemRequest> Items { get; init; }

        /// <summary>Indexes into <see cref="Items"/>: the first item of each key, in key order.</summary>
        public required int[] Order { get; init; }

        /// <summary>How many of <see cref="Order"/> are used (the distinct keys).</summary>
        public required int Distinct { get; init; }

        /// <summary>Items of the call before this chunk (for positions in error messages).</summary>
        public required long Start { get; init; }

        /// <summary>Whether an item has a payload (else the COPY leaves the column out).</summary>
        public bool AnyPayload { get; init; }

        /// <summary>Whether an item has a priority other than 0 (else the column's default).</summary>
        public bool AnyPriority { get; init; }

        /// <summary>Whether an item has a <see cref="WorkItemRequest.NotBefore"/> (else <c>run_after</c> is the transaction's <c>now()</c>, its default).</summary>
        public bool AnyNotBefore { get; init; }
    }

    /// <summary>
    /// Reads the items of a bulk enqueue in chunks, checked and put in key order, one chunk ahead of the COPY: while
    /// the server takes a chunk, the next is read from the caller's sequence and sorted on a pool thread, so the client's
    /// work overlaps the server's instead of alternating with it. The caller's enumerator is only ever used by one
    /// read at a time (a read ahead is awaited before the next read, and before disposal). Chunks start at
    /// <see cref="FirstDirectChunkRows"/> and double up to <see cref="DirectChunkRows"/>, so the first COPY starts early.
    /// At most two chunks are held.
    /// </summary>
    private sealed class BulkReader(IAsyncEnumerator<WorkItemRequest> items, string queue) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private int _nextRows = FirstDirectChunkRows;
        private long _read;
        private bool _more = true;
        private bool _started;
        private Task<BulkChunk?>? _ahead;

        /// <summary>The next chunk (the one read ahead, if any), or <see langword="null"/> at the end of the items.</summary>
        public Task<BulkChunk?> NextAsync(CancellationToken cancellationToken)
        {
            var next = _ahead ?? ReadAsync(cancellationToken);
            _ahead = null;
            return next;
        }

        /// <summary>Starts reading the next chunk on a pool thread, unless the items are exhausted or a read is pending.</summary>
        public void ReadAhead(CancellationToken cancellationToken)
        {
            if (_more && _ahead is null)
            {
                var token = _stop.Token;
                _ahead = Task.Run(() => ReadAsync(cancellationToken, token), CancellationToken.None);
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
                buffered = (await ahead.ConfigureAwait(false))?.Items;
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

        private Task<BulkChunk?> ReadAsync(CancellationToken cancellationToken) => ReadAsync(cancellationToken, _stop.Token);

        private async Task<BulkChunk?> ReadAsync(CancellationToken cancellationToken, CancellationToken stop)
        {
            await StartAsync().ConfigureAwait(false);
            if (!_more)
            {
                return null;
            }

            var rows = _nextRows;
            _nextRows = Math.Min(rows * 2, DirectChunkRows);
            var start = _read;
            var chunk = new List<WorkItemRequest>(rows);
            bool anyPayload = false, anyPriority = false, anyNotBefore = false;
            while (_more && chunk.Count < rows)
            {
                var item = items.Current ?? throw new ArgumentException($"Bulk enqueue to queue '{queue}': item {start + chunk.Count + 1} is null.", "items");
                CheckKey(item.Key, $"item {start + chunk.Count + 1}");
                anyPayload |= item.Payload is not null;
                anyPriority |= item.Priority != 0;
                anyNotBefore |= item.NotBefore is not null;
                chunk.Add(item);
                if ((chunk.Count & 4095) == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    stop.ThrowIfCancellationRequested();
                }

                _more = await items.MoveNextAsync().ConfigureAwait(false);
            }

            _read += chunk.Count;
            var (order, distinct) = KeyOrder(chunk);
            return new BulkChunk
            {
                Items = chunk,
                Order = order,
                Distinct = distinct,
                Start = start,
                AnyPayload = anyPayload,
                AnyPriority = anyPriority,
                AnyNotBefore = anyNotBefore,
            };
        }

        /// <summary>
        /// The first item of each key, in key order. A listing that already arrives in key order (storage listings
        /// usually do) is not sorted again; otherwise keys and positions are sorted together with the ordinal
        /// comparer, and of a run of equal keys the earliest position wins (the sort is not stable).
        /// </summary>
        private static (int[] Order, int Distinct) KeyOrder(List<WorkItemRequest> chunk)
        {
            var keys = new string[chunk.Count];
            var order = new int[chunk.Count];
            var sorted = true;
            for (var i = 0; i < keys.Length; i++)
            {
                keys[i] = chunk[i].Key;
                order[i] = i;
                sorted = sorted && (i == 0 || string.CompareOrdinal(keys[i - 1], keys[i]) <= 0);
            }

            if (!sorted)
            {
                Array.Sort(keys, order, StringComparer.Ordinal);
            }

            var distinct = 0;
            for (var i = 0; i < keys.Length;)
            {
                var first = order[i];
                var j = i + 1;
                for (; j < keys.Length && string.Equals(keys[j], keys[i], StringComparison.Ordinal); j++)
                {
                    first = Math.Min(first, order[j]);
                }

                order[distinct++] = first;
                i = j;
            }

            return (order, distinct);
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
