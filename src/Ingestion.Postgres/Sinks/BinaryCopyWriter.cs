using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Npgsql;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// Encodes rows in PostgreSQL's binary COPY format into a buffer and sends it through Npgsql's raw binary COPY
/// stream. Values are written by their PostgreSQL wire type directly (big-endian integers and floats, UTF-8 text,
/// microseconds since 2000-01-01 for timestamps, base-10000 digits for numeric), so a row costs a few stores into
/// a buffer instead of a per-value type resolution in the driver. Callers validate values first (no NUL or lone
/// surrogate in text, no unspecified-kind timestamp for timestamptz); this class only encodes.
/// </summary>
internal sealed class BinaryCopyWriter : IDisposable
{
    private const int InitialSize = 64 * 1024;
    private const int FlushAt = 56 * 1024;

    /// <summary>The bytes <see cref="WriteHeader"/> writes: signature, flags and header extension length.</summary>
    internal const int HeaderLength = 19;

    // 2000-01-01T00:00:00, PostgreSQL's epoch for timestamps and dates.
    private const long PgEpochTicks = 630822816000000000L;
    private const int PgEpochDayNumber = 730119;

    private static readonly UInt128[] PowersOf10 = CreatePowers();

    /// <summary>The end-of-data marker: a row of -1 fields.</summary>
    private static readonly byte[] Trailer = [0xFF, 0xFF];

    private byte[] _buffer;
    private int _pos;

    /// <summary>A writer whose buffer starts at the usual size (it is flushed as it fills).</summary>
    public BinaryCopyWriter()
        : this(InitialSize)
    {
    }

    /// <summary>A writer whose buffer starts at <paramref name="capacity"/> bytes at least (for rows kept whole, see <see cref="EncodedRows{TRecord}"/>).</summary>
    /// <param name="capacity">The bytes expected.</param>
    public BinaryCopyWriter(int capacity)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(capacity, InitialSize));
    }

    /// <summary>How many bytes are buffered.</summary>
    public int Length => _pos;

    /// <summary>The bytes buffered from <paramref name="start"/> on, <paramref name="length"/> of them.</summary>
    /// <param name="start">The first byte.</param>
    /// <param name="length">How many.</param>
    /// <returns>The bytes, valid until the writer writes again or is disposed.</returns>
    public ReadOnlyMemory<byte> Buffered(int start, int length) => _buffer.AsMemory(start, length);

    /// <summary>Whether enough is buffered to send it (checked between rows).</summary>
    public bool ShouldFlush => _pos >= FlushAt;

    /// <summary>The signature, flags and header extension that start a binary COPY stream.</summary>
    public void WriteHeader()
    {
        Ensure(HeaderLength);
        ReadOnlySpan<byte> signature = [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xFF, (byte)'\r', (byte)'\n', 0];
        signature.CopyTo(_buffer.AsSpan(_pos));
        _pos += signature.Length;
        PutInt32(0);
        PutInt32(0);
    }

    /// <summary>
    /// One record's row as the sink's copies send it: its <paramref name="fields"/>, then its row hash when
    /// <paramref name="rowHashes"/> is given (a table with the hash column).
    /// </summary>
    /// <typeparam name="TRecord">The record type.</typeparam>
    /// <param name="fields">The columns, in the COPY's order.</param>
    /// <param name="record">The record.</param>
    /// <param name="rowHashes">The row hashes by record index, or <see langword="null"/>.</param>
    /// <param name="index">The record's index in the batch (for its row hash).</param>
    public void WriteRecord<TRecord>(FieldAccessor<TRecord>[] fields, TRecord record, ulong[]? rowHashes, int index)
        where TRecord : class
    {
        StartRow(fields.Length + (rowHashes is null ? 0 : 1));
        foreach (var f in fields)
        {
            f.Write(this, record);
        }

        if (rowHashes is not null)
        {
            WriteInt64(unchecked((long)rowHashes[index]));
        }
    }

    /// <summary>Starts a row of <paramref name="fields"/> values.</summary>
    public void StartRow(int fields)
    {
        Ensure(2);
        PutInt16((short)fields);
    }

    /// <summary>A SQL NULL.</summary>
    public void WriteNull()
    {
        Ensure(4);
        PutInt32(-1);
    }

    /// <summary>A <c>boolean</c>.</summary>
    public void WriteBoolean(bool value)
    {
        Ensure(5);
        PutInt32(1);
        _buffer[_pos++] = value ? (byte)1 : (byte)0;
    }

    /// <summary>A <c>smallint</c>.</summary>
    public void WriteInt16(short value)
    {
        Ensure(6);
        PutInt32(2);
        PutInt16(value);
    }

    /// <summary>An <c>integer</c>.</summary>
    public void WriteInt32(int value)
    {
        Ensure(8);
        PutInt32(4);
        PutInt32(value);
    }

    /// <summary>A <c>bigint</c>.</summary>
    public void WriteInt64(long value)
    {
        Ensure(12);
        PutInt32(8);
        BinaryPrimitives.WriteInt64BigEndian(_buffer.AsSpan(_pos), value);
        _pos += 8;
    }

    /// <summary>A <c>real</c>.</summary>
    public void WriteFloat32(float value)
    {
        Ensure(8);
        PutInt32(4);
        BinaryPrimitives.WriteSingleBigEndian(_buffer.AsSpan(_pos), value);
        _pos += 4;
    }

    /// <summary>A <c>double precision</c>.</summary>
    public void WriteFloat64(double value)
    {
        Ensure(12);
        PutInt32(8);
        BinaryPrimitives.WriteDoubleBigEndian(_buffer.AsSpan(_pos), value);
        _pos += 8;
    }

    /// <summary>A <c>timestamptz</c> or <c>timestamp</c> from the ticks of a <see cref="DateTime"/> (UTC for timestamptz, wall-clock for timestamp): microseconds since 2000-01-01, the extra precision dropped; <see cref="DateTime.MaxValue"/> and <see cref="DateTime.MinValue"/> are <c>infinity</c> and <c>-infinity</c>, as Npgsql sends them.</summary>
    public void WriteTimestamp(DateTime value)
    {
        var micros = value.Ticks == DateTime.MaxValue.Ticks ? long.MaxValue
            : value.Ticks == DateTime.MinValue.Ticks ? long.MinValue
            : (value.Ticks - PgEpochTicks) / 10;
        WriteInt64(micros);
    }

    /// <summary>A <c>date</c>: days since 2000-01-01; <see cref="DateOnly.MaxValue"/> and <see cref="DateOnly.MinValue"/> are <c>infinity</c> and <c>-infinity</c>, as Npgsql sends them.</summary>
    public void WriteDate(DateOnly value)
    {
        var days = value == DateOnly.MaxValue ? int.MaxValue
            : value == DateOnly.MinValue ? int.MinValue
            : value.DayNumber - PgEpochDayNumber;
        WriteInt32(days);
    }

    /// <summary>The value <see cref="WriteDate"/> wrote as <paramref name="days"/> (a <c>date</c>'s wire form): the inverse, infinities included.</summary>
    /// <param name="days">Days since 2000-01-01, or <see cref="int.MaxValue"/>/<see cref="int.MinValue"/> for the infinities.</param>
    /// <returns>The date.</returns>
    public static DateOnly ReadDate(int days) =>
        days == int.MaxValue ? DateOnly.MaxValue
        : days == int.MinValue ? DateOnly.MinValue
        : DateOnly.FromDayNumber(days + PgEpochDayNumber);

    /// <summary>A <c>uuid</c> (16 bytes in RFC 4122 order).</summary>
    public void WriteUuid(Guid value)
    {
        Ensure(20);
        PutInt32(16);
        _ = value.TryWriteBytes(_buffer.AsSpan(_pos, 16), bigEndian: true, out _);
        _pos += 16;
    }

    /// <summary>A <c>bytea</c>, or any value whose wire form is given as bytes (EWKB for PostGIS geometry).</summary>
    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        Ensure(4 + value.Length);
        PutInt32(value.Length);
        value.CopyTo(_buffer.AsSpan(_pos));
        _pos += value.Length;
    }

    /// <summary><c>text</c>, <c>varchar</c> or <c>json</c> as UTF-8; <c>jsonb</c> (<paramref name="jsonb"/>) adds its format version byte.</summary>
    public void WriteText(string value, bool jsonb = false)
    {
        Ensure(5 + Encoding.UTF8.GetMaxByteCount(value.Length));
        var start = _pos;
        _pos += 4;
        if (jsonb)
        {
            _buffer[_pos++] = 1;
        }

        _pos += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_pos));
        BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(start), _pos - start - 4);
    }

    /// <summary>
    /// A <c>numeric</c>: the decimal's digits regrouped in base 10,000 around the decimal point, with its scale as
    /// the display scale (so 1.50 is stored as 1.50, as the text form would be).
    /// </summary>
    public void WriteNumeric(decimal value)
    {
        Span<int> bits = stackalloc int[4];
        _ = decimal.GetBits(value, bits);
        var scale = (bits[3] >> 16) & 0xFF;
        var negative = bits[3] < 0;
        var mantissa = ((UInt128)(uint)bits[2] << 64) | ((UInt128)(uint)bits[1] << 32) | (uint)bits[0];

        // Pad the fraction to whole base-10000 digits: value = mantissa / 10^fractionDigits.
        var pad = (4 - (scale % 4)) % 4;
        mantissa *= PowersOf10[pad];
        var fractionGroups = (scale + pad) / 4;

        // Base-10000 digits, least significant first (at most 8: 96 bits times 1000 is under 10^32).
        Span<short> groups = stackalloc short[10];
        var count = 0;
        while (mantissa != 0)
        {
            groups[count++] = (short)(ulong)(mantissa % 10000);
            mantissa /= 10000;
        }

        var low = 0;
        while (low < count && groups[low] == 0)
        {
            low++;
        }

        var digits = count - low;
        Ensure(4 + 8 + (2 * digits));
        PutInt32(8 + (2 * digits));
        PutInt16((short)digits);
        PutInt16((short)(digits == 0 ? 0 : count - 1 - fractionGroups));
        PutInt16(negative && digits > 0 ? (short)0x4000 : (short)0);
        PutInt16((short)scale);
        for (var i = count - 1; i >= low; i--)
        {
            PutInt16(groups[i]);
        }
    }

    /// <summary>Sends what is buffered.</summary>
    public async ValueTask FlushAsync(Stream stream, CancellationToken cancellationToken)
    {
        if (_pos > 0)
        {
            await stream.WriteAsync(_buffer.AsMemory(0, _pos), cancellationToken).ConfigureAwait(false);
            _pos = 0;
        }

        if (_buffer.Length > 4 * InitialSize)
        {
            // A huge value grew the buffer: give it back rather than keep it for the rest of the run.
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(InitialSize);
        }
    }

    /// <summary>Returns the buffer to the pool.</summary>
    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        _pos = 0;
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Writes rows through a raw binary COPY, cancelling the COPY (nothing lands) when writing fails or is cancelled.</summary>
    public static async Task<long> CopyAsync<TState>(NpgsqlConnection connection, string copySql, TState state, int rows, Action<BinaryCopyWriter, TState, int> writeRow, CancellationToken cancellationToken)
    {
        using var writer = new BinaryCopyWriter();
        await RawCopyAsync(
            connection,
            copySql,
            async stream =>
            {
                writer.WriteHeader();
                for (var n = 0; n < rows; n++)
                {
                    writeRow(writer, state, n);
                    if (writer.ShouldFlush)
                    {
                        await writer.FlushAsync(stream, cancellationToken).ConfigureAwait(false);
                    }
                }

                await writer.FlushAsync(stream, cancellationToken).ConfigureAwait(false);
            },
            cancellationToken).ConfigureAwait(false);
        return rows;
    }

    /// <summary>
    /// Runs a raw binary COPY: <paramref name="write"/> sends the header and the rows, then the end-of-data marker ends
    /// it; a COPY whose writing fails or is cancelled is aborted, so nothing of it lands.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="copySql">The <c>COPY ... FROM STDIN (FORMAT BINARY)</c> statement.</param>
    /// <param name="write">Sends the header and the rows.</param>
    /// <param name="cancellationToken">Cancels (and aborts) the copy.</param>
    /// <returns>A task.</returns>
    internal static async Task RawCopyAsync(NpgsqlConnection connection, string copySql, Func<NpgsqlRawCopyStream, Task> write, CancellationToken cancellationToken)
    {
        var stream = await connection.BeginRawBinaryCopyAsync(copySql, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            try
            {
                await write(stream).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                await stream.WriteAsync(Trailer, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Disposing the stream would end the COPY and keep the rows sent so far: abort it instead.
                await CancelQuietlyAsync(stream).ConfigureAwait(false);
                throw;
            }
        }
    }

    private static async Task CancelQuietlyAsync(NpgsqlRawCopyStream stream)
    {
        try
        {
            await stream.CancelAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException or ObjectDisposedException)
        {
            // The connection broke (the reason the copy failed, often): the transaction is gone with it.
        }
    }

    private static UInt128[] CreatePowers()
    {
        var powers = new UInt128[4];
        powers[0] = 1;
        for (var i = 1; i < powers.Length; i++)
        {
            powers[i] = powers[i - 1] * 10;
        }

        return powers;
    }

    private void Ensure(int bytes)
    {
        if (_buffer.Length - _pos < bytes)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _pos + bytes));
            _buffer.AsSpan(0, _pos).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
    }

    private void PutInt16(short value)
    {
        BinaryPrimitives.WriteInt16BigEndian(_buffer.AsSpan(_pos), value);
        _pos += 2;
    }

    private void PutInt32(int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(_pos), value);
        _pos += 4;
    }
}
