using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// What the writer knows of a target table's rows: key hash -> row hash, in open-addressing tables of two 64-bit
/// words per slot, the key beside its row hash so that a lookup reads one cache line (about 22 bytes per row at their
/// load factor). Bounded by a capacity: past it, new keys are not remembered (<see cref="Overflowed"/>), and the
/// writer looks up what it does not remember.
/// </summary>
/// <remarks>
/// The slots are split into <see cref="ShardCount"/> small tables chosen by the top bits of the mixed hash, each
/// doubling on its own. A single table would double in one step (at 1.6M rows: 32 MB live next to the new 64 MB);
/// shards double a few hundred kilobytes at a time, so a doubling never needs twice the index's memory at once. From
/// 32 kB, a shard's table is made of pages that the next shard to double reuses, so the shards doubling one after the
/// other do not leave the index's old size behind as garbage either.
/// A table of a million keys spans tens of megabytes: a lookup is a cache (and TLB) miss, so loops over a batch
/// announce the keys a few rows ahead (<see cref="Prefetch"/>) and the misses overlap.
/// </remarks>
internal sealed class KeyHashIndex
{
    /// <summary>The row hash stored for a key whose row hash is unknown (a row written by someone else).</summary>
    public const ulong UnknownRowHash = 0;

    /// <summary>The number of shards (a power of two).</summary>
    internal const int ShardCount = 512;

    /// <summary>
    /// How many keys ahead a loop over many keys announces them (<see cref="Prefetch"/>): enough for the memory reads of
    /// the next keys to be under way while one is looked up or set.
    /// </summary>
    internal const int PrefetchDistance = 8;

    private const int ShardBits = 9;

    /// <summary>The words of a page of a shard's table (32 kB: 2,048 slots), a power of two.</summary>
    private const int PageWords = 1 << PageShift;

    private const int PageShift = 12;

    private const int PageMask = PageWords - 1;

    private readonly int _maxCount;
    private readonly Shard[] _shards;
    private readonly PagePool _pool = new();

    public KeyHashIndex(int maxCount, int initialCapacity = 1024)
    {
        _maxCount = Math.Max(0, maxCount);
        var perShard = 16;
        while (perShard * ShardCount * 3 / 4 < initialCapacity && perShard < (1 << 20))
        {
            perShard <<= 1;
        }

        _shards = new Shard[ShardCount];
        for (var s = 0; s < ShardCount; s++)
        {
            _shards[s] = new Shard(perShard, _pool);
        }
    }

    public int Count { get; private set; }

    /// <summary>Whether <see cref="MaxCount"/> was reached and a key was not remembered.</summary>
    public bool Overflowed { get; private set; }

    public int MaxCount => _maxCount;

    /// <summary>The slots allocated over all shards (for tests and diagnostics).</summary>
    internal long Slots => _shards.Sum(s => ((long)s.Mask + 1) / 2);

    /// <summary>The whole pages allocated so far, reused ones counted once (for tests and diagnostics).</summary>
    internal long PagesAllocated => _pool.Allocated;

    /// <summary>The slots of one whole page.</summary>
    internal const int SlotsPerPage = PageWords / 2;

    /// <summary>Maps a hash to a key that is never the empty-slot marker.</summary>
    public static ulong NonZero(ulong hash) => hash == 0 ? 1 : hash;

    public bool TryGetValue(ulong key, out ulong rowHash)
    {
        var mixed = Mix(key);
        var page = _shards[(int)(mixed >> (64 - ShardBits))].Find(key, mixed, out var i);
        rowHash = page[i + 1];
        return page[i] == key;
    }

    /// <summary>
    /// Asks the processor to fetch the cache line where <paramref name="key"/> starts its search, so that a lookup a few
    /// keys later does not wait for memory. Only a hint: it changes nothing, and does nothing where it is not supported.
    /// </summary>
    /// <param name="key">A key hash that will be looked up or set soon.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void Prefetch(ulong key)
    {
        if (Sse.IsSupported)
        {
            var mixed = Mix(key);
            var page = _shards[(int)(mixed >> (64 - ShardBits))].Home(mixed, out var i);

            // A prefetch never faults, so an address the collector moves meanwhile costs at most a wasted fetch.
            Sse.Prefetch0(Unsafe.AsPointer(ref page[i]));
        }
    }

    /// <summary>Sets a key's row hash; returns <see langword="false"/> when the index is full and the key was new.</summary>
    public bool Set(ulong key, ulong rowHash) => Remember(key, rowHash, out _) != Remembered.NotKept;

    /// <summary>
    /// Looks a key up and sets its row hash in one search (one cache miss): says whether the key was held, and with
    /// which row hash (<paramref name="previous"/>), or is new, or was new and not kept because the index is full.
    /// </summary>
    public Remembered Remember(ulong key, ulong rowHash, out ulong previous)
    {
        var mixed = Mix(key);
        var shard = _shards[(int)(mixed >> (64 - ShardBits))];
        var page = shard.Find(key, mixed, out var i);
        if (page[i] == key)
        {
            previous = page[i + 1];
            page[i + 1] = rowHash;
            return Remembered.Held;
        }

        previous = UnknownRowHash;
        return Insert(shard, page, i, key, mixed, rowHash) ? Remembered.New : Remembered.NotKept;
    }

    /// <summary>Puts a new key into the free slot <paramref name="i"/> of its shard, unless the index is full.</summary>
    private bool Insert(Shard shard, ulong[] page, int i, ulong key, ulong mixed, ulong rowHash)
    {
        if (Count >= _maxCount)
        {
            Overflowed = true;
            return false;
        }

        if ((shard.Count + 1) * 8 > (shard.Mask + 1) * 3)
        {
            shard.Grow(_pool);
            page = shard.Find(key, mixed, out i);
        }

        page[i + 1] = rowHash;
        page[i] = key;
        shard.Count++;
        Count++;
        return true;
    }

    /// <summary>
    /// Sets keys that arrive one at a time (a table's export, a committed batch), each held back
    /// <see cref="PrefetchDistance"/> keys after it was announced (<see cref="Prefetch"/>), so that its slot is in cache
    /// when it is set. Keys are set in arrival order.
    /// </summary>
    internal sealed class StreamingSetter(KeyHashIndex index)
    {
        private readonly ulong[] _keys = new ulong[PrefetchDistance];
        private readonly ulong[] _rowHashes = new ulong[PrefetchDistance];
        private int _count;
        private int _next;

        /// <summary>Announces a key and sets the one announced <see cref="PrefetchDistance"/> keys before it.</summary>
        /// <returns><see langword="false"/> when the index is full (see <see cref="KeyHashIndex.Set"/>).</returns>
        public bool Add(ulong key, ulong rowHash)
        {
            index.Prefetch(key);
            var ok = true;
            if (_count == PrefetchDistance)
            {
                ok = index.Set(_keys[_next], _rowHashes[_next]);
            }
            else
            {
                _count++;
            }

            _keys[_next] = key;
            _rowHashes[_next] = rowHash;
            _next = (_next + 1) % PrefetchDistance;
            return ok;
        }

        /// <summary>Sets the keys still held back.</summary>
        /// <returns><see langword="false"/> when the index is full.</returns>
        public bool Flush()
        {
            var first = (_next - _count + PrefetchDistance) % PrefetchDistance;
            for (var n = 0; n < _count; n++)
            {
                var i = (first + n) % PrefetchDistance;
                if (!index.Set(_keys[i], _rowHashes[i]))
                {
                    _count = 0;
                    return false;
                }
            }

            _count = 0;
            return true;
        }
    }

    private static ulong Mix(ulong x)
    {
        x ^= x >> 31;
        x *= 0x7fb5d329728ea185UL;
        x ^= x >> 27;
        return x;
    }

    /// <summary>
    /// One open-addressing table: entry pairs (key, row hash), linear probing, 0 marks a free slot. Its words are split
    /// into pages of <see cref="PageWords"/> (a table smaller than that is one shorter page), so that a doubling reuses
    /// the pages another shard left when it doubled (<see cref="PagePool"/>).
    /// </summary>
    private sealed class Shard
    {
        public Shard(int size, PagePool pool)
        {
            Pages = pool.Rent(size * 2);
            Mask = size * 2 - 1;
        }

        /// <summary>The table's words, page by page: word <c>i</c> is <c>Pages[i &gt;&gt; PageShift][i &amp; PageMask]</c>.</summary>
        public ulong[][] Pages { get; private set; }

        /// <summary>The number of words less one (a power of two less one).</summary>
        public int Mask { get; private set; }

        public int Count { get; set; }

        /// <summary>The word index (of the key word) of the slot where the search for <paramref name="mixed"/> starts.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private int Start(ulong mixed) => ((int)mixed << 1) & Mask;

        /// <summary>The page and offset (of the key word) of the slot where the search for <paramref name="mixed"/> starts.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ulong[] Home(ulong mixed, out int offset)
        {
            var i = Start(mixed);
            offset = i & PageMask;
            return Pages[i >> PageShift];
        }

        /// <summary>
        /// The page and offset (of the key word) of the slot holding <paramref name="key"/>, or of the free slot where it
        /// would go. A pair never straddles two pages: pages hold an even number of words.
        /// </summary>
        public ulong[] Find(ulong key, ulong mixed, out int offset)
        {
            var pages = Pages;
            var mask = Mask;
            var i = Start(mixed);
            while (true)
            {
                var page = pages[i >> PageShift];
                var o = i & PageMask;
                var found = page[o];
                if (found == key || found == 0)
                {
                    offset = o;
                    return page;
                }

                i = (i + 2) & mask;
            }
        }

        /// <summary>Doubles the table: its entries move into pages rented from <paramref name="pool"/>, and its old pages go back to it.</summary>
        public void Grow(PagePool pool)
        {
            var old = Pages;
            Pages = pool.Rent((Mask + 1) * 2);
            Mask = Mask * 2 + 1;
            foreach (var page in old)
            {
                for (var j = 0; j < page.Length; j += 2)
                {
                    if (page[j] != 0)
                    {
                        var to = Find(page[j], Mix(page[j]), out var o);
                        to[o] = page[j];
                        to[o + 1] = page[j + 1];
                    }
                }
            }

            pool.Return(old);
        }
    }

    /// <summary>
    /// Whole pages of <see cref="PageWords"/> words left by shards that doubled, handed to the next shard that doubles.
    /// Shards fill at about the same pace, so they double in waves: without reuse, each wave would leave the index's
    /// whole previous size behind as garbage (32 MB at 1.6M rows) until a full collection, on top of its new size.
    /// With it, a wave allocates only the growth, plus one shard's pages. Touched only by the index's single user at a
    /// time, like the rest of the index.
    /// </summary>
    private sealed class PagePool
    {
        private readonly Stack<ulong[]> _free = new();

        /// <summary>Pages allocated so far (for tests and diagnostics).</summary>
        public long Allocated { get; private set; }

        /// <summary>Cleared pages for a table of <paramref name="words"/> words (a power of two).</summary>
        public ulong[][] Rent(int words)
        {
            if (words < PageWords)
            {
                return [new ulong[words]];
            }

            var pages = new ulong[words / PageWords][];
            for (var p = 0; p < pages.Length; p++)
            {
                if (_free.TryPop(out var page))
                {
                    Array.Clear(page);
                }
                else
                {
                    page = new ulong[PageWords];
                    Allocated++;
                }

                pages[p] = page;
            }

            return pages;
        }

        /// <summary>Takes back a table's pages; a table shorter than one page is left to the collector (it is small).</summary>
        public void Return(ulong[][] pages)
        {
            foreach (var page in pages)
            {
                if (page.Length == PageWords)
                {
                    _free.Push(page);
                }
            }
        }
    }
}

/// <summary>What <see cref="KeyHashIndex.Remember"/> found.</summary>
internal enum Remembered
{
    /// <summary>The key was held; its row hash is now the one given.</summary>
    Held,

    /// <summary>The key was new and is now held.</summary>
    New,

    /// <summary>The key was new and is not held: the index is full (<see cref="KeyHashIndex.Overflowed"/>).</summary>
    NotKept,
}
