using Ingestion.Queue;

namespace Ingestion.Postgres.Queue;

/// <summary>A chunk of a bulk enqueue, held as text and numbers rather than as the caller's objects.</summary>
public sealed partial class PostgresWorkQueue
{
    /// <summary>
    /// A chunk of a bulk enqueue: the items' keys and payloads copied into one character buffer, their other fields
    /// into an array of structs, and the positions of the first item of each distinct key in key order (ordinal: UTF-16
    /// order, the "C" collation's byte order but for rare surrogate pairs, which only costs index locality), which is
    /// the order the COPY sends them in.
    /// </summary>
    /// <remarks>
    /// The caller's <see cref="WorkItemRequest"/> objects are not kept: a chunk of 100,000 items lives across many
    /// collections of generation 0 while it is read, sorted and sent, and held as objects it would be promoted twice
    /// (about 2.5 times the allocation of a plain COPY in all). Copied here, the caller's objects die young, and a
    /// reader reuses a sent chunk's arrays for the chunk after next, so a call allocates its buffers once.
    /// </remarks>
    private sealed class BulkChunk : IComparer<int>
    {
        private Entry[] _entries;
        private char[] _text;
        private int[] _order;

        /// <summary>Creates an empty chunk; its arrays grow as items come (a call of a few items allocates little).</summary>
        public BulkChunk()
        {
            _entries = new Entry[256];
            _order = new int[256];
            _text = new char[256 * 48];
        }

        /// <summary>How many items the chunk holds.</summary>
        public int Count { get; private set; }

        /// <summary>How many characters of keys and payloads the chunk holds.</summary>
        public int TextLength { get; private set; }

        /// <summary>How many distinct keys (the first <see cref="Distinct"/> of the key order are used).</summary>
        public int Distinct { get; private set; }

        /// <summary>Items of the call before this chunk (for positions in error messages).</summary>
        public long Start { get; private set; }

        /// <summary>Whether an item has a payload (else the COPY leaves the column out).</summary>
        public bool AnyPayload { get; private set; }

        /// <summary>Whether an item has a priority other than 0 (else the column's default).</summary>
        public bool AnyPriority { get; private set; }

        /// <summary>Whether an item has a <see cref="WorkItemRequest.NotBefore"/> (else <c>run_after</c> is the transaction's <c>now()</c>, its default).</summary>
        public bool AnyNotBefore { get; private set; }

        /// <summary>Empties the chunk for the items from position <paramref name="start"/> of the call.</summary>
        /// <param name="start">Items of the call before this chunk.</param>
        public void Reset(long start)
        {
            Start = start;
            Count = 0;
            Distinct = 0;
            TextLength = 0;
            AnyPayload = AnyPriority = AnyNotBefore = false;
        }

        /// <summary>Copies an item (already checked) into the chunk.</summary>
        /// <param name="item">The item.</param>
        public void Add(WorkItemRequest item)
        {
            if (Count == _entries.Length)
            {
                Array.Resize(ref _entries, Count * 2);
            }

            var key = Append(item.Key);
            var payload = item.Payload is { } p ? Append(p) : (Start: -1, Length: 0);
            _entries[Count++] = new Entry(key.Start, key.Length, payload.Start, payload.Length, item.Priority, item.NotBefore is { } nb ? nb.UtcTicks : NoTime);
            AnyPayload |= item.Payload is not null;
            AnyPriority |= item.Priority != 0;
            AnyNotBefore |= item.NotBefore is not null;
        }

        /// <summary>The key of item <paramref name="i"/> (input order).</summary>
        /// <param name="i">The position in the chunk.</param>
        /// <returns>Its characters, valid until the chunk is reset.</returns>
        public ReadOnlyMemory<char> Key(int i) => _text.AsMemory(_entries[i].KeyStart, _entries[i].KeyLength);

        /// <summary>The payload of item <paramref name="i"/>, or <see langword="null"/>.</summary>
        /// <param name="i">The position in the chunk.</param>
        /// <returns>Its characters, valid until the chunk is reset.</returns>
        public ReadOnlyMemory<char>? Payload(int i)
        {
            // Not a conditional expression: its null would convert to an empty ReadOnlyMemory (as a null array does).
            if (_entries[i].PayloadStart < 0)
            {
                return null;
            }

            return _text.AsMemory(_entries[i].PayloadStart, _entries[i].PayloadLength);
        }

        /// <summary>The priority of item <paramref name="i"/>.</summary>
        /// <param name="i">The position in the chunk.</param>
        /// <returns>The priority.</returns>
        public int Priority(int i) => _entries[i].Priority;

        /// <summary>The <see cref="WorkItemRequest.NotBefore"/> of item <paramref name="i"/>, in UTC, or <see langword="null"/>.</summary>
        /// <param name="i">The position in the chunk.</param>
        /// <returns>The time.</returns>
        public DateTime? NotBefore(int i) => _entries[i].NotBeforeTicks == NoTime ? null : new DateTime(_entries[i].NotBeforeTicks, DateTimeKind.Utc);

        /// <summary>Item <paramref name="n"/> of the key order: the first item of the n-th distinct key.</summary>
        /// <param name="n">From 0 to <see cref="Distinct"/> - 1.</param>
        /// <returns>Its position in the chunk.</returns>
        public int Ordered(int n) => _order[n];

        /// <summary>The items again as requests, in input order (for the staged merge, which is rare).</summary>
        /// <returns>New requests equal to those read.</returns>
        public List<WorkItemRequest> ToRequests()
        {
            var list = new List<WorkItemRequest>(Count);
            for (var i = 0; i < Count; i++)
            {
                list.Add(new WorkItemRequest(new string(Key(i).Span))
                {
                    Payload = Payload(i) is { } p ? new string(p.Span) : null,
                    Priority = Priority(i),
                    NotBefore = NotBefore(i) is { } nb ? new DateTimeOffset(nb) : null,
                });
            }

            return list;
        }

        /// <summary>
        /// Puts the first item of each key in key order. A listing that already arrives in key order (storage listings
        /// usually do) is not sorted again; otherwise positions are sorted by their keys (ordinal), and of a run of
        /// equal keys the earliest position wins (the sort is not stable).
        /// </summary>
        public void SortKeys()
        {
            if (_order.Length < Count)
            {
                _order = new int[_entries.Length];
            }

            var sorted = true;
            for (var i = 0; i < Count; i++)
            {
                _order[i] = i;
                sorted = sorted && (i == 0 || Compare(i - 1, i) <= 0);
            }

            if (!sorted)
            {
                Array.Sort(_order, 0, Count, this);
            }

            var distinct = 0;
            for (var i = 0; i < Count;)
            {
                var first = _order[i];
                var j = i + 1;
                for (; j < Count && Compare(_order[j], _order[i]) == 0; j++)
                {
                    first = Math.Min(first, _order[j]);
                }

                _order[distinct++] = first;
                i = j;
            }

            Distinct = distinct;
        }

        /// <summary>Compares the keys of two items, ordinally.</summary>
        /// <param name="x">A position in the chunk.</param>
        /// <param name="y">Another.</param>
        /// <returns>The order of their keys.</returns>
        public int Compare(int x, int y) => Key(x).Span.SequenceCompareTo(Key(y).Span);

        private (int Start, int Length) Append(string s)
        {
            var start = TextLength;
            if (_text.Length - start < s.Length)
            {
                Array.Resize(ref _text, (int)Math.Min(Array.MaxLength, Math.Max((long)_text.Length * 2, (long)start + s.Length)));
            }

            s.CopyTo(_text.AsSpan(start));
            TextLength = start + s.Length;
            return (start, s.Length);
        }

        private const long NoTime = long.MinValue;

        private readonly record struct Entry(int KeyStart, int KeyLength, int PayloadStart, int PayloadLength, int Priority, long NotBeforeTicks);
    }
}
