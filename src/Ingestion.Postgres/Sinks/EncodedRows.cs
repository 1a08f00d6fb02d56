using Npgsql;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// Rows of a batch encoded once in PostgreSQL's binary COPY format and kept as bytes, so that the batch's records can be
/// released while its rows may still have to be sent: a copy ahead rolled back before its batch's write took it, or a
/// batch written again without a record the table refused. Any of the rows can be copied again, in any order, from
/// these bytes; rows that follow each other in the buffer go out in one write. The bytes are for the columns they were
/// encoded for: a copy of other columns is refused as a bug, never sent.
/// </summary>
/// <typeparam name="TRecord">The record type.</typeparam>
internal sealed class EncodedRows<TRecord> : IDisposable
    where TRecord : class
{
    private readonly BinaryCopyWriter _bytes;
    private readonly FieldAccessor<TRecord>[] _fields;
    private readonly bool _withRowHash;

    /// <summary>By record index: where its row starts in the buffer, and where it ends; -1 for a record not encoded.</summary>
    private readonly int[] _start;
    private readonly int[] _end;
    private int _disposed;

    private EncodedRows(BinaryCopyWriter bytes, FieldAccessor<TRecord>[] fields, bool withRowHash, int records)
    {
        _bytes = bytes;
        _fields = fields;
        _withRowHash = withRowHash;
        _start = new int[records];
        _end = new int[records];
        Array.Fill(_start, -1);
    }

    /// <summary>How many bytes the rows take (header included).</summary>
    public int Length => _bytes.Length;

    /// <summary>
    /// Encodes the <paramref name="rows"/> of <paramref name="records"/> (indexes into it) as <see cref="PostgresSinkWriter{TRecord}"/>'s
    /// copies send them: every field, then the row hash when <paramref name="rowHashes"/> is given.
    /// </summary>
    /// <param name="fields">The columns, in the COPY's order.</param>
    /// <param name="rowHashes">The row hashes by record index, or <see langword="null"/> for a table without the hash column.</param>
    /// <param name="records">The batch's records (checked already).</param>
    /// <param name="rows">The records to encode.</param>
    /// <param name="capacity">The bytes expected (the previous batch's size): the buffer is rented at that size.</param>
    /// <param name="cancellationToken">Checked every 1,024 rows.</param>
    /// <returns>The encoded rows; dispose of them to give the buffer back.</returns>
    public static EncodedRows<TRecord> Encode(FieldAccessor<TRecord>[] fields, ulong[]? rowHashes, IReadOnlyList<TRecord> records, List<int> rows, int capacity, CancellationToken cancellationToken)
    {
        var encoded = Start(fields, rowHashes, records.Count, capacity);
        try
        {
            encoded.Append(rowHashes, records, rows, 0, rows.Count, cancellationToken);
            return encoded;
        }
        catch
        {
            encoded.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Encodes <paramref name="rows"/> as <see cref="Encode"/> does while copying them with <paramref name="copySql"/>: the
    /// first rows are sent as soon as they are encoded, so the server starts at once; the rest are encoded in one go
    /// (<paramref name="encoded"/> is then called, and may release the records), and sent.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="copySql">The <c>COPY ... FROM STDIN (FORMAT BINARY)</c> statement.</param>
    /// <param name="fields">The columns, in the COPY's order.</param>
    /// <param name="rowHashes">The row hashes by record index, or <see langword="null"/> for a table without the hash column.</param>
    /// <param name="records">The batch's records (checked already).</param>
    /// <param name="rows">The records to encode and send.</param>
    /// <param name="capacity">The bytes expected (the previous batch's size).</param>
    /// <param name="encoded">Called once every row is encoded, before the last of them are sent; the rows are then its
    /// caller's to dispose of, whether the copy succeeds or not.</param>
    /// <param name="cancellationToken">Cancels (and aborts) the copy.</param>
    /// <returns>The encoded rows; dispose of them to give the buffer back.</returns>
    public static async Task<EncodedRows<TRecord>> EncodeAndCopyAsync(NpgsqlConnection connection, string copySql, FieldAccessor<TRecord>[] fields, ulong[]? rowHashes, IReadOnlyList<TRecord> records, List<int> rows, int capacity, Action<EncodedRows<TRecord>> encoded, CancellationToken cancellationToken)
    {
        var result = Start(fields, rowHashes, records.Count, capacity);
        var handedOver = false;
        try
        {
            await BinaryCopyWriter.RawCopyAsync(
                connection,
                copySql,
                async stream =>
                {
                    // An eighth first: about what the server takes while the rest is encoded.
                    var head = Math.Min(rows.Count, Math.Clamp(rows.Count / 8, 256, 2048));
                    result.Append(rowHashes, records, rows, 0, head, cancellationToken);
                    var sent = result.Length;
                    await stream.WriteAsync(result._bytes.Buffered(0, sent), cancellationToken).ConfigureAwait(false);
                    result.Append(rowHashes, records, rows, head, rows.Count, cancellationToken);
                    encoded(result);
                    handedOver = true;
                    await stream.WriteAsync(result._bytes.Buffered(sent, result.Length - sent), cancellationToken).ConfigureAwait(false);
                },
                cancellationToken).ConfigureAwait(false);
            return result;
        }
        catch when (!handedOver)
        {
            result.Dispose();
            throw;
        }
    }

    private static EncodedRows<TRecord> Start(FieldAccessor<TRecord>[] fields, ulong[]? rowHashes, int records, int capacity)
    {
        var writer = new BinaryCopyWriter(capacity);
        writer.WriteHeader();
        return new EncodedRows<TRecord>(writer, fields, rowHashes is not null, records);
    }

    /// <summary>Encodes <c>rows[from..to)</c> after the rows encoded so far (the buffer may grow: nothing may be sending from it meanwhile).</summary>
    private void Append(ulong[]? rowHashes, IReadOnlyList<TRecord> records, List<int> rows, int from, int to, CancellationToken cancellationToken)
    {
        for (var n = from; n < to; n++)
        {
            if ((n & 1023) == 1023)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            var i = rows[n];
            _start[i] = _bytes.Length;
            _bytes.WriteRecord(_fields, records[i], rowHashes, i);
            _end[i] = _bytes.Length;
        }
    }

    /// <summary>
    /// Copies <paramref name="rows"/> (record indexes, each encoded here) with <paramref name="copySql"/> on
    /// <paramref name="connection"/>, in that order; a failed or cancelled copy is aborted, so nothing of it lands.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="copySql">The <c>COPY ... FROM STDIN (FORMAT BINARY)</c> statement.</param>
    /// <param name="fields">The columns the statement takes: those the rows were encoded with.</param>
    /// <param name="withRowHash">Whether the statement takes the row hash after them, as the rows were encoded.</param>
    /// <param name="rows">The records whose rows to send.</param>
    /// <param name="cancellationToken">Cancels (and aborts) the copy.</param>
    /// <returns>How many rows were sent.</returns>
    /// <exception cref="InvalidOperationException">The statement takes other columns, or a row was not encoded: a bug of the caller.</exception>
    public async Task<long> CopyAsync(NpgsqlConnection connection, string copySql, FieldAccessor<TRecord>[] fields, bool withRowHash, List<int> rows, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!ReferenceEquals(fields, _fields) || withRowHash != _withRowHash)
        {
            throw new InvalidOperationException("The batch's rows were encoded for other columns than this copy takes.");
        }

        foreach (var row in rows)
        {
            if (_start[row] < 0)
            {
                throw new InvalidOperationException($"Row {row} of the batch was not encoded, and its record is released.");
            }
        }

        await BinaryCopyWriter.RawCopyAsync(
            connection,
            copySql,
            async stream =>
            {
                await stream.WriteAsync(_bytes.Buffered(0, BinaryCopyWriter.HeaderLength), cancellationToken).ConfigureAwait(false);
                int from = -1, to = -1;
                foreach (var row in rows)
                {
                    if (_start[row] == to)
                    {
                        to = _end[row];
                        continue;
                    }

                    if (from >= 0)
                    {
                        await stream.WriteAsync(_bytes.Buffered(from, to - from), cancellationToken).ConfigureAwait(false);
                    }

                    (from, to) = (_start[row], _end[row]);
                }

                if (from >= 0)
                {
                    await stream.WriteAsync(_bytes.Buffered(from, to - from), cancellationToken).ConfigureAwait(false);
                }
            },
            cancellationToken).ConfigureAwait(false);
        return rows.Count;
    }

    /// <summary>Gives the buffer back to the pool (once the batch's write is over).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _bytes.Dispose();
        }
    }
}
