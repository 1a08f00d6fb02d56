namespace Ingestion.Postgres.Sinks;

/// <summary>
/// What the writer knows of a target table's rows: key hash -> row hash, in open-addressing tables of two 64-bit
/// words per slot (about 22 bytes per row at their load factor). Bounded by a capacity: past it, new keys are not
/// remembered (<see cref="Overflowed"/>), and the writer looks up what it does not remember.
/// </summary>
/// <remarks>
/// The slots are split into <see cref="ShardCount"/> small tables chosen by the top bits of the mixed hash, each
/// doubling on its own. A single table would double in one step (at 1.6M rows: 32 MB live next to the new 64 MB,
/// the old half then garbage on the large-object heap); shards double a few hundred kilobytes at a time, and at the
/// default capacity each stays under the large-object threshold, so the garbage of a doubling is young and cheap.
/// </remarks>
internal sealed class KeyHashIndex
{
    /// <summary>The row hash stored for a key whose row hash is unknown (a row written by someone else).</summary>
    public const ulong UnknownRowHash = 0;

    /// <summary>The number of shards (a power of two).</summary>
    internal const int ShardCount = 512;

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
    internal long Slots => _shards.Sum(s => (long)s.Keys.Length);

    /// <summary>Maps a hash to a key that is never the empty-slot marker.</summary>
    public static ulong NonZero(ulong hash) => hash == 0 ? 1 : hash;

    public bool TryGetValue(ulong key, out ulong rowHash)
    {
        var mixed = Mix(key);
        var shard = _shards[(int)(mixed >> (64 - ShardBits))];
        var i = shard.Find(key, mixed);
        rowHash = shard.Values[i];
        return shard.Keys[i] == key;
    }

    /// <summary>Sets a key's row hash; returns <see langword="false"/> when the index is full and the key was new.</summary>
    public bool Set(ulong key, ulong rowHash)
    {
        var mixed = Mix(key);
        var shard = _shards[(int)(mixed >> (64 - ShardBits))];
        var i = shard.Find(key, mixed);
        if (shard.Keys[i] == key)
        {
            shard.Values[i] = rowHash;
            return true;
        }

        if (Count >= _maxCount)
        {
            Overflowed = true;
            return false;
        }

        if ((shard.Count + 1) * 4 > shard.Keys.Length * 3)
        {
            shard.Grow();
            i = shard.Find(key, mixed);
        }

        shard.Keys[i] = key;
        shard.Values[i] = rowHash;
        shard.Count++;
        Count++;
        return true;
    }

    private static ulong Mix(ulong x)
    {
        x ^= x >> 31;
        x *= 0x7fb5d329728ea185UL;
        x ^= x >> 27;
        return x;
    }

    private sealed class Shard(int size)
    {
        public ulong[] Keys { get; private set; } = new ulong[size];

        public ulong[] Values { get; private set; } = new ulong[size];

        public int Count { get; set; }

        /// <summary>The slot holding <paramref name="key"/>, or the empty slot where it would go.</summary>
        public int Find(ulong key, ulong mixed)
        {
            var keys = Keys;
            var mask = keys.Length - 1;
            var i = (int)mixed & mask;
            while (keys[i] != key && keys[i] != 0)
            {
                i = (i + 1) & mask;
            }

            return i;
        }

        public void Grow()
        {
            var oldKeys = Keys;
            var oldValues = Values;
            Keys = new ulong[oldKeys.Length * 2];
            Values = new ulong[oldKeys.Length * 2];
            for (var j = 0; j < oldKeys.Length; j++)
            {
                if (oldKeys[j] != 0)
                {
                    var i = Find(oldKeys[j], Mix(oldKeys[j]));
                    Keys[i] = oldKeys[j];
                    Values[i] = oldValues[j];
                }
            }
        }
    }
}
