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
    /// <summary>The signature, flags and header extension <see cref="BinaryCopyWriter.WriteHeader"/> writes.</summary>
    private const int HeaderLength = 19;

    private static readonly byte[] Trailer = [0xFF, 0xFF];

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
        var writer = new BinaryCopyWriter(capacity);
        var encoded = new EncodedRows<TRecord>(writer, fields, rowHashes is not null, records.Count);
        try
        {
            writer.WriteHeader();
            var width = (short)(fields.Length + (rowHashes is null ? 0 : 1));
            for (var n = 0; n < rows.Count; n++)
            {
                if ((n & 1023) == 1023)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }

                var i = rows[n];
                var record = records[i];
                encoded._start[i] = writer.Length;
                writer.StartRow(width);
                foreach (var f in fields)
                {
                    f.Write(writer, record);
                }

                if (rowHashes is not null)
                {
                    writer.WriteInt64(unchecked((long)rowHashes[i]));
                }

                encoded._end[i] = writer.Length;
            }

            return encoded;
        }
        catch
        {
            encoded.Dispose();
            throw;
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

        var stream = await connection.BeginRawBinaryCopyAsync(copySql, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            try
            {
                await stream.WriteAsync(_bytes.Buffered(0, HeaderLength), cancellationToken).ConfigureAwait(false);
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

                cancellationToken.ThrowIfCancellationRequested();
                await stream.WriteAsync(Trailer, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Disposing the stream would end the COPY and keep the rows sent so far: abort it instead.
                await BinaryCopyWriter.CancelQuietlyAsync(stream).ConfigureAwait(false);
                throw;
            }
        }

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
