namespace Ingestion.Postgres.Sinks;

/// <summary>
/// What the writer knows of a target table's rows: key hash -> row hash, in an open-addressing table of
/// two 64-bit words per slot (about 22 bytes per row at its load factor). Bounded by a capacity: past it,
/// new keys are not remembered, and the writer's savepoint fallback keeps the counts exact.
/// </summary>
internal sealed class KeyHashIndex
{
    /// <summary>The row hash stored for a key whose row hash is unknown (a row written by someone else).</summary>
    public const ulong UnknownRowHash = 0;

    private readonly int _maxCount;
    private ulong[] _keys;
    private ulong[] _values;
    private int _mask;

    public KeyHashIndex(int maxCount, int initialCapacity = 1024)
    {
        _maxCount = Math.Max(0, maxCount);
        var size = 16;
        while (size < initialCapacity * 4 / 3 && size < (1 << 30))
        {
            size <<= 1;
        }

        _keys = new ulong[size];
        _values = new ulong[size];
        _mask = size - 1;
    }

    public int Count { get; private set; }

    /// <summary>Whether <see cref="MaxCount"/> was reached and a key was not remembered.</summary>
    public bool Overflowed { get; private set; }

    public int MaxCount => _maxCount;

    /// <summary>Maps a hash to a key that is never the empty-slot marker.</summary>
    public static ulong NonZero(ulong hash) => hash == 0 ? 1 : hash;

    public bool TryGetValue(ulong key, out ulong rowHash)
    {
        var i = (int)(Mix(key) & (ulong)_mask);
        while (true)
        {
            var k = _keys[i];
            if (k == key)
            {
                rowHash = _values[i];
                return true;
            }

            if (k == 0)
            {
                rowHash = 0;
                return false;
            }

            i = (i + 1) & _mask;
        }
    }

    /// <summary>Sets a key's row hash; returns <see langword="false"/> when the index is full and the key was new.</summary>
    public bool Set(ulong key, ulong rowHash)
    {
        var i = (int)(Mix(key) & (ulong)_mask);
        while (true)
        {
            var k = _keys[i];
            if (k == key)
            {
                _values[i] = rowHash;
                return true;
            }

            if (k == 0)
            {
                break;
            }

            i = (i + 1) & _mask;
        }

        if (Count >= _maxCount)
        {
            Overflowed = true;
            return false;
        }

        if ((Count + 1) * 4 > _keys.Length * 3)
        {
            Grow();
            return Set(key, rowHash);
        }

        _keys[i] = key;
        _values[i] = rowHash;
        Count++;
        return true;
    }

    private void Grow()
    {
        var oldKeys = _keys;
        var oldValues = _values;
        _keys = new ulong[oldKeys.Length * 2];
        _values = new ulong[oldKeys.Length * 2];
        _mask = _keys.Length - 1;
        for (var j = 0; j < oldKeys.Length; j++)
        {
            if (oldKeys[j] != 0)
            {
                var i = (int)(Mix(oldKeys[j]) & (ulong)_mask);
                while (_keys[i] != 0)
                {
                    i = (i + 1) & _mask;
                }

                _keys[i] = oldKeys[j];
                _values[i] = oldValues[j];
            }
        }
    }

    private static ulong Mix(ulong x)
    {
        x ^= x >> 31;
        x *= 0x7fb5d329728ea185UL;
        x ^= x >> 27;
        return x;
    }
}
