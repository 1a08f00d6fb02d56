using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Npgsql;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// Reads a table's keys (and row hashes) from a binary <c>COPY ... TO STDOUT</c> as raw bytes and hashes each key
/// straight from its wire form, without the driver's per-row and per-value reading: loading the key index is the
/// largest part of a re-run that writes little. Each value is decoded to the .NET value a record would hold and hashed by
/// <see cref="ValueCodec.Hash{T}"/>, as the record's key is (text decoded into a reused buffer and hashed as the same
/// UTF-16 code units, never a string); tests check the hashes against the .NET values inserted. Key columns of other
/// types are read through the driver (<see cref="ValueCodec.ReadAndHash"/>).
/// </summary>
internal sealed class KeyHashReader : IDisposable
{
    private const int InitialSize = 256 * 1024;
    private const int HeaderSize = 19;

    private readonly PgColumn[] _keys;
    private readonly bool _hasHash;
    private readonly ulong _seed;
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(InitialSize);
    private char[] _chars = ArrayPool<char>.Shared.Rent(1024);
    private int _start;
    private int _end;

    private KeyHashReader(PgColumn[] keys, bool hasHash, ulong seed)
    {
        _keys = keys;
        _hasHash = hasHash;
        _seed = seed;
    }

    /// <summary>Whether every key column's wire form can be hashed here.</summary>
    /// <param name="keys">The key columns.</param>
    /// <returns><see langword="true"/> when <see cref="LoadAsync"/> can read them.</returns>
    public static bool CanRead(IEnumerable<PgColumn> keys) =>
        keys.All(k => k.Kind is PgKind.Text or PgKind.Int16 or PgKind.Int32 or PgKind.Int64 or PgKind.Boolean or PgKind.Uuid or PgKind.Date);

    /// <summary>
    /// Runs <paramref name="copySql"/> (the key columns, then the row hash when <paramref name="hasHash"/>) and sets
    /// each row's key hash in <paramref name="index"/>; returns <see langword="false"/> when the index filled up. The
    /// export is read to its end, never cancelled: a cancel that reaches the server after the export ended aborts the
    /// connection's next statement (its transaction then refuses every later command), so the query limits itself
    /// (see <see cref="TableMapping{TRecord}.ExportKeyHashes"/>).
    /// </summary>
    public static async Task<bool> LoadAsync(NpgsqlConnection connection, string copySql, PgColumn[] keys, bool hasHash, ulong seed, KeyHashIndex index, CancellationToken cancellationToken)
    {
        using var reader = new KeyHashReader(keys, hasHash, seed);
        var stream = await connection.BeginRawBinaryCopyAsync(copySql, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            return await reader.ReadAllAsync(stream, index, cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        ArrayPool<char>.Shared.Return(_chars);
    }

    private async Task<bool> ReadAllAsync(Stream stream, KeyHashIndex index, CancellationToken cancellationToken)
    {
        if (!await FillAsync(stream, HeaderSize, cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidDataException("The binary COPY export ended before its header.");
        }

        var extension = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_start + 15));
        _start += HeaderSize;
        if (extension > 0 && !await FillAsync(stream, extension, cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidDataException("The binary COPY export ended inside its header extension.");
        }

        _start += Math.Max(0, extension);
        var setter = new KeyHashIndex.StreamingSetter(index);
        var full = false;
        while (true)
        {
            // A whole row in the buffer (its length is known only by walking its fields), else read more.
            int length;
            while ((length = RowLength()) < 0)
            {
                if (!await FillAsync(stream, (_end - _start) + Math.Max(-length, 1), cancellationToken).ConfigureAwait(false))
                {
                    throw new InvalidDataException("The binary COPY export ended inside a row.");
                }
            }

            if (length == 2 && BinaryPrimitives.ReadInt16BigEndian(_buffer.AsSpan(_start)) == -1)
            {
                return !full && setter.Flush(); // the trailer
            }

            var (key, rowHash) = HashRow(_buffer.AsSpan(_start, length));
            _start += length;
            // Once the index is full the rest is only read (the export's LIMIT leaves little of it).
            full = full || !setter.Add(key, rowHash);

            if ((index.Count & 0xFFFF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
    }

    /// <summary>The length of the row at the read position, or minus the bytes still needed to know it.</summary>
    private int RowLength()
    {
        var available = _end - _start;
        if (available < 2)
        {
            return -(2 - available);
        }

        var span = _buffer.AsSpan(_start, available);
        var fields = BinaryPrimitives.ReadInt16BigEndian(span);
        if (fields == -1)
        {
            return 2;
        }

        var expected = _keys.Length + (_hasHash ? 1 : 0);
        if (fields != expected)
        {
            throw new InvalidDataException($"A row of the binary COPY export has {fields} fields; {expected} were asked for.");
        }

        var at = 2;
        for (var f = 0; f < fields; f++)
        {
            if (available < at + 4)
            {
                return -(at + 4 - available);
            }

            var size = BinaryPrimitives.ReadInt32BigEndian(span[at..]);
            at += 4 + Math.Max(0, size);
            if (available < at)
            {
                return -(at - available);
            }
        }

        return at;
    }

    private (ulong Key, ulong RowHash) HashRow(ReadOnlySpan<byte> row)
    {
        var at = 2;
        var hasher = new RowHasher(_seed);
        foreach (var column in _keys)
        {
            var size = BinaryPrimitives.ReadInt32BigEndian(row[at..]);
            at += 4;
            if (size < 0)
            {
                throw new InvalidDataException($"Key column '{column.Name}' holds a NULL.");
            }

            Hash(ref hasher, column, row.Slice(at, size));
            at += size;
        }

        var rowHash = KeyHashIndex.UnknownRowHash;
        if (_hasHash)
        {
            var size = BinaryPrimitives.ReadInt32BigEndian(row[at..]);
            at += 4;
            if (size == 8)
            {
                rowHash = BinaryPrimitives.ReadUInt64BigEndian(row[at..]);
            }
        }

        return (KeyHashIndex.NonZero(hasher.Finish()), rowHash);
    }

    private void Hash(ref RowHasher hasher, PgColumn column, ReadOnlySpan<byte> value)
    {
        switch (column.Kind)
        {
            case PgKind.Text:
                // The record's string is hashed as UTF-16: decode the UTF-8 into a reused buffer, never a string.
                if (_chars.Length < value.Length)
                {
                    ArrayPool<char>.Shared.Return(_chars);
                    _chars = ArrayPool<char>.Shared.Rent(value.Length);
                }

                var chars = Encoding.UTF8.GetChars(value, _chars);
                hasher.Add(_chars.AsSpan(0, chars));
                break;
            case PgKind.Int16:
                ValueCodec.Hash(ref hasher, BinaryPrimitives.ReadInt16BigEndian(value));
                break;
            case PgKind.Int32:
                ValueCodec.Hash(ref hasher, BinaryPrimitives.ReadInt32BigEndian(value));
                break;
            case PgKind.Int64:
                ValueCodec.Hash(ref hasher, BinaryPrimitives.ReadInt64BigEndian(value));
                break;
            case PgKind.Boolean:
                ValueCodec.Hash(ref hasher, value[0] != 0);
                break;
            case PgKind.Uuid:
                ValueCodec.Hash(ref hasher, new Guid(value, bigEndian: true));
                break;
            case PgKind.Date:
                ValueCodec.Hash(ref hasher, BinaryCopyWriter.ReadDate(BinaryPrimitives.ReadInt32BigEndian(value)));
                break;
            default:
                throw new NotSupportedException($"Column '{column.Name}' ({column.SqlType}) is not read by {nameof(KeyHashReader)}.");
        }
    }

    /// <summary>Reads until at least <paramref name="needed"/> bytes are buffered; <see langword="false"/> when the stream ends first.</summary>
    private async Task<bool> FillAsync(Stream stream, int needed, CancellationToken cancellationToken)
    {
        if (_start > 0)
        {
            // Move the unread bytes to the front.
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (needed > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
            Buffer.BlockCopy(_buffer, 0, bigger, 0, _end);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        while (_end < needed)
        {
            var read = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return false;
            }

            _end += read;
        }

        return true;
    }
}
