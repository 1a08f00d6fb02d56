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
/// doubling on its own. A single table would double in one step (at 1.6M rows: 32 MB live next to the new 64 MB,
/// the old half then garbage on the large-object heap); shards double a few hundred kilobytes at a time, so a
/// doubling never needs twice the index's memory at once.
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

    private readonly int _maxCount;
    private readonly Shard[] _shards;

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
            _shards[s] = new Shard(perShard);
        }
    }

    public int Count { get; private set; }

    /// <summary>Whether <see cref="MaxCount"/> was reached and a key was not remembered.</summary>
    public bool Overflowed { get; private set; }

    public int MaxCount => _maxCount;

    /// <summary>The slots allocated over all shards (for tests and diagnostics).</summary>
    internal long Slots => _shards.Sum(s => (long)s.Entries.Length / 2);

    /// <summary>Maps a hash to a key that is never the empty-slot marker.</summary>
    public static ulong NonZero(ulong hash) => hash == 0 ? 1 : hash;

    public bool TryGetValue(ulong key, out ulong rowHash)
    {
        var mixed = Mix(key);
        var shard = _shards[(int)(mixed >> (64 - ShardBits))];
        var entries = shard.Entries;
        var i = Shard.Find(entries, key, mixed);
        rowHash = entries[i + 1];
        return entries[i] == key;
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
            var entries = _shards[(int)(mixed >> (64 - ShardBits))].Entries;

            // A prefetch never faults, so an address the collector moves meanwhile costs at most a wasted fetch.
            Sse.Prefetch0(Unsafe.AsPointer(ref entries[Shard.Home(entries, mixed)]));
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
        var i = Shard.Find(shard.Entries, key, mixed);
        if (shard.Entries[i] == key)
        {
            previous = shard.Entries[i + 1];
            shard.Entries[i + 1] = rowHash;
            return Remembered.Held;
        }

        previous = UnknownRowHash;
        return Insert(shard, i, key, mixed, rowHash) ? Remembered.New : Remembered.NotKept;
    }

    /// <summary>Puts a new key into the free slot <paramref name="i"/> of its shard, unless the index is full.</summary>
    private bool Insert(Shard shard, int i, ulong key, ulong mixed, ulong rowHash)
    {
        if (Count >= _maxCount)
        {
            Overflowed = true;
            return false;
        }

        if ((shard.Count + 1) * 8 > shard.Entries.Length * 3)
        {
            shard.Grow();
            i = Shard.Find(shard.Entries, key, mixed);
        }

        shard.Entries[i + 1] = rowHash;
        shard.Entries[i] = key;
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

    /// <summary>One open-addressing table: entry pairs (key, row hash) in one array, linear probing, 0 marks a free slot.</summary>
    private sealed class Shard(int size)
    {
        public ulong[] Entries { get; private set; } = new ulong[size * 2];

        public int Count { get; set; }

        /// <summary>The index (of the key word) of the slot where the search for <paramref name="mixed"/> starts.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static int Home(ulong[] entries, ulong mixed) => ((int)mixed << 1) & (entries.Length - 1);

        /// <summary>The index (of the key word) of the slot holding <paramref name="key"/>, or of the free slot where it would go.</summary>
        public static int Find(ulong[] entries, ulong key, ulong mixed)
        {
            var mask = entries.Length - 1;
            var i = Home(entries, mixed);
            while (entries[i] != key && entries[i] != 0)
            {
                i = (i + 2) & mask;
            }

            return i;
        }

        public void Grow()
        {
            var old = Entries;
            var entries = new ulong[old.Length * 2];
            for (var j = 0; j < old.Length; j += 2)
            {
                if (old[j] != 0)
                {
                    var i = Find(entries, old[j], Mix(old[j]));
                    entries[i] = old[j];
                    entries[i + 1] = old[j + 1];
                }
            }

            Entries = entries;
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
