using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// A deterministic 64-bit hash of a sequence of values (xxHash64-style rounds), stable across
/// processes and versions of .NET: row hashes are stored in target tables and compared on later runs.
/// </summary>
internal struct RowHasher
{
    private const ulong Prime1 = 11400714785074694791UL;
    private const ulong Prime2 = 14029467366897019727UL;
    private const ulong Prime3 = 1609587929392839161UL;
    private const ulong Prime4 = 9650029242287828579UL;
    private const ulong Prime5 = 2870177450012600261UL;

    private ulong _acc;
    private ulong _count;

    public RowHasher(ulong seed)
    {
        _acc = seed + Prime5;
        _count = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(ulong value)
    {
        var k = BitOperations.RotateLeft(value * Prime2, 31) * Prime1;
        _acc = (BitOperations.RotateLeft(_acc ^ k, 27) * Prime1) + Prime4;
        _count++;
    }

    public void Add(ReadOnlySpan<byte> bytes)
    {
        Add((ulong)bytes.Length);
        var words = MemoryMarshal.Cast<byte, ulong>(bytes);
        foreach (var w in words)
        {
            Add(w);
        }

        var rest = bytes[(words.Length * 8)..];
        if (rest.Length > 0)
        {
            ulong tail = 0;
            for (var i = 0; i < rest.Length; i++)
            {
                tail |= (ulong)rest[i] << (8 * i);
            }

            Add(tail);
        }
    }

    public void Add(string value) => Add(value.AsSpan());

    /// <summary>Adds text as its UTF-16 code units, as <see cref="Add(string)"/> does for a string holding the same characters.</summary>
    public void Add(ReadOnlySpan<char> value) => Add(MemoryMarshal.AsBytes(value));

    public readonly ulong Finish()
    {
        var h = _acc + _count;
        h ^= h >> 33;
        h *= Prime2;
        h ^= h >> 29;
        h *= Prime3;
        h ^= h >> 32;
        return h;
    }
}
