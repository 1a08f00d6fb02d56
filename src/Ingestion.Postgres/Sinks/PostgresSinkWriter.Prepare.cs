using System.Runtime.InteropServices;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// The database-free part of writing a batch: each value checked (a bad one becomes a rejected record), keys and rows
/// hashed, the last record of each key kept, and the rows put in key order; runs ahead on the runner's reading thread
/// when it can, and there also classifies the rows against the key index (see PostgresSinkWriter.Classify.cs).
/// </summary>
internal sealed partial class PostgresSinkWriter<TRecord>
{
    public object? PrepareBatch(IReadOnlyList<TRecord> records, long firstRecordNumber) => PrepareAhead(records, null, firstRecordNumber);

    public object? PrepareReleasableBatch(TRecord[] records, long firstRecordNumber) => PrepareAhead(records, records, firstRecordNumber);

    /// <summary>
    /// Prepares a batch ahead of its write; <paramref name="owned"/> is the same records when the runner gave the array
    /// over, so a copy ahead may release them once it has encoded their rows (<see cref="RecordRelease"/>).
    /// </summary>
    private PreparedRows? PrepareAhead(IReadOnlyList<TRecord> records, TRecord[]? owned, long firstRecordNumber)
    {
        ArgumentNullException.ThrowIfNull(records);
        var previous = NotePrepared(firstRecordNumber);

        // Only with the mapping already in use: finding a new one needs the connection, which the write holds.
        var mapping = Volatile.Read(ref _lastMapping);
        if (records.Count == 0 || mapping is null || _completed)
        {
            return null;
        }

        var schema = SchemaOf(records[0]);
        if (!ReferenceEquals(schema, mapping.Schema) && !SameColumns(schema, mapping.Schema))
        {
            return null;
        }

        // Classified here too when the batch before was: the write is then left with sending rows and committing.
        var prepared = Prepare(mapping, records, firstRecordNumber, throwOnProblem: false);
        if (prepared is null)
        {
            return null;
        }

        var classified = ClassifyAhead(mapping, previous, firstRecordNumber, prepared.Winners, prepared.KeyHashes, prepared.RowHashes, out var before);
        var release = owned is not null && classified is not null && MayRelease(mapping, prepared, classified) ? new RecordRelease(owned) : null;
        prepared = prepared with { Classified = classified, Release = release };

        // Rows new to a keyed table, or changed there and not written by the batch before: copied (and merged) now on
        // the other connection (PostgresSinkWriter.CopyAhead.cs), which first encodes and releases records it may release.
        if (classified is not null && MayCopyAhead(mapping, prepared, classified, before) && StartCopyAhead(mapping, prepared, firstRecordNumber, classified) is not null)
        {
            return prepared;
        }

        if (release is not null)
        {
            try
            {
                EncodeAndRelease(mapping, prepared, classified!.Fresh, release, CancellationToken.None);
            }
#pragma warning disable CA1031 // never throws for bad data: the records stay, and the write (encoding them again) reports it
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }

        return prepared;
    }

    /// <summary>
    /// Whether a batch's records, given over by the runner, may be released once encoded: a first load's batch (a Merge
    /// committing batch by batch into the table the sink made, whose key is not built yet), every row new by the key
    /// index and already in key order. Every row its write may then send is among those encoded, and nothing it does
    /// needs the records but an error's key (<see cref="RecordRelease"/>).
    /// </summary>
    private bool MayRelease(TableMapping<TRecord> mapping, PreparedRows prepared, Classification classified) =>
        IsFirstLoadInto(mapping) && prepared.Sorted
        && classified.Uncertain.Count == 0 && classified.Fresh.Count == prepared.Winners.Count;

    /// <summary>
    /// Encodes <paramref name="rows"/> of the batch as its copies send them (the row hash when the table has the column)
    /// and releases its records. The buffer is rented a little larger than the batch before took.
    /// </summary>
    private void EncodeAndRelease(TableMapping<TRecord> mapping, PreparedRows prepared, List<int> rows, RecordRelease release, CancellationToken cancellationToken) =>
        Release(release, EncodedRows<TRecord>.Encode(mapping.Fields, mapping.HasHash ? prepared.RowHashes : null, prepared.Records!, rows, EncodedCapacity, cancellationToken));

    /// <summary>The bytes to rent for a batch encoded whole: a little more than the batch before took.</summary>
    private int EncodedCapacity => Volatile.Read(ref _encodedLength) * 9 / 8;

    /// <summary>Releases a batch's records for its rows <paramref name="encoded"/>, and notes their size for the next batch.</summary>
    private void Release(RecordRelease release, EncodedRows<TRecord> encoded)
    {
        Volatile.Write(ref _encodedLength, encoded.Length);
        release.Release(encoded);
    }

    /// <summary>
    /// The database-free part of writing a batch: checks every value (bad ones become rejected records), hashes keys
    /// and rows, and keeps the last record of each key. Touches no mutable state of the writer, so it may run on the
    /// runner's reading thread while the previous batch is written. A problem that must fail the batch (mixed schemas,
    /// a 64-bit key-hash collision) throws when <paramref name="throwOnProblem"/> is set, else gives null.
    /// </summary>
    private PreparedRows? Prepare(TableMapping<TRecord> mapping, IReadOnlyList<TRecord> records, long firstRecordNumber, bool throwOnProblem)
    {
        string PositionOf(int index) => RecordPosition(firstRecordNumber + index);
        var rejected = new List<RejectedRecord>();
        var valid = new bool[records.Count];
        var keyHashes = new ulong[records.Count];
        var rowHashes = new ulong[records.Count];

        // Records are checked and hashed each on its own. Once batches send few of their rows (a re-run of unchanged
        // rows), the write is short and leaves a core idle, so two threads share this part.
        int mismatch;
        if (!_sendsMost && records.Count >= ParallelPrepareMinRecords && Environment.ProcessorCount > 1)
        {
            var half = records.Count / 2;
            var secondRejected = new List<RejectedRecord>();
            int first = -1, second = -1;
            Parallel.Invoke(
                () => first = CheckAndHash(mapping, records, 0, half, firstRecordNumber, valid, keyHashes, rowHashes, rejected),
                () => second = CheckAndHash(mapping, records, half, records.Count, firstRecordNumber, valid, keyHashes, rowHashes, secondRejected));
            rejected.AddRange(secondRejected);
            mismatch = first >= 0 ? first : second;
        }
        else
        {
            mismatch = CheckAndHash(mapping, records, 0, records.Count, firstRecordNumber, valid, keyHashes, rowHashes, rejected);
        }

        if (mismatch >= 0)
        {
            return throwOnProblem
                ? throw new IngestionException($"Source '{Source}': {PositionOf(mismatch)} has a different schema than the first record of its batch; records of one batch must share a schema.") { SourceName = Source, Position = PositionOf(mismatch) }
                : null;
        }

        var winners = new List<int>(records.Count);
        long duplicates = 0;

        // One key map serves every batch (at 10,000 rows it is a 240 KB large-object allocation, which would
        // otherwise be made and dropped per batch); a concurrent Prepare (rare: a schema change while the next
        // batch is prepared) takes a fresh one.
        var lastOfKey = Interlocked.Exchange(ref _keyScratch, null) ?? new Dictionary<ulong, int>(records.Count);
        lastOfKey.Clear();
        try
        {
            for (var i = 0; i < records.Count; i++)
            {
                if (!valid[i])
                {
                    continue;
                }

                if (lastOfKey.TryGetValue(keyHashes[i], out var previous))
                {
                    if (!SameKey(mapping, records[previous], records[i]))
                    {
                        return throwOnProblem
                            ? throw new IngestionException($"Source '{Source}': {PositionOf(previous)} and {PositionOf(i)} have different keys with the same 64-bit key hash; split the batch differently (BatchSize) to write them.") { SourceName = Source, Position = PositionOf(i) }
                            : null;
                    }

                    valid[previous] = false;
                    duplicates++;
                }

                lastOfKey[keyHashes[i]] = i;
            }

            for (var i = 0; i < records.Count; i++)
            {
                if (valid[i])
                {
                    winners.Add(i);
                }
            }

            // Sorted here, ahead of the write, while batches send most of their rows (a first load); once a batch sent
            // few (a re-run of unchanged rows), the write sorts only the rows it sends.
            var sorted = _sendsMost && SortInKeyOrder(mapping, records, winners);
            return new PreparedRows(mapping, records, rejected, keyHashes, rowHashes, winners, duplicates, sorted);
        }
        finally
        {
            lastOfKey.Clear();
            _keyScratch = lastOfKey;
        }
    }

    /// <summary>
    /// Whether two records have equal key values. A loop, not a lambda: a lambda capturing the loop's variables would
    /// cost every record of a batch a closure object, duplicate or not (about 30 bytes a row, 30 MB per million).
    /// </summary>
    private static bool SameKey(TableMapping<TRecord> mapping, TRecord a, TRecord b)
    {
        foreach (var f in mapping.KeyFields)
        {
            if (!f.ValueEquals(a, b))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Checks and hashes records <paramref name="from"/> to <paramref name="to"/> (exclusive) into the arrays, adding
    /// the rejected ones to <paramref name="rejected"/> in order; returns the index of the first record whose schema
    /// is not the mapping's (where it stopped), or -1. Touches only those records and slots, so ranges may run at once.
    /// </summary>
    private int CheckAndHash(TableMapping<TRecord> mapping, IReadOnlyList<TRecord> records, int from, int to, long firstRecordNumber, bool[] valid, ulong[] keyHashes, ulong[] rowHashes, List<RejectedRecord> rejected)
    {
        for (var i = from; i < to; i++)
        {
            var record = records[i];
            if (!ReferenceEquals(SchemaOf(record), mapping.Schema) && !SameColumns(SchemaOf(record), mapping.Schema))
            {
                return i;
            }

            if (Check(mapping, record, firstRecordNumber + i) is { } reject)
            {
                rejected.Add(reject);
                continue;
            }

            valid[i] = true;
            var kh = new RowHasher(KeySeed);
            foreach (var f in mapping.KeyFields)
            {
                f.HashValue(record, ref kh);
            }

            keyHashes[i] = KeyHashIndex.NonZero(kh.Finish());
            if (mapping.HasHash)
            {
                var rh = new RowHasher(RowSeed);
                foreach (var f in mapping.ValueFields)
                {
                    f.Hash(record, ref rh);
                }

                rowHashes[i] = KeyHashIndex.NonZero(rh.Finish());
            }
        }

        return -1;
    }

    /// <summary>
    /// Orders <paramref name="rows"/> by key when <see cref="PostgresSinkOptions.SendRowsInKeyOrder"/> asks for it (rows of
    /// a batch have distinct keys, so the order changes no result); returns whether they are now in key order.
    /// </summary>
    private bool SortInKeyOrder(TableMapping<TRecord> mapping, IReadOnlyList<TRecord> records, List<int> rows)
    {
        if (!_options.SendRowsInKeyOrder || Mode == WriteMode.Append || mapping.KeyFields.Length == 0)
        {
            return false;
        }

        if (rows.Count > 1)
        {
            mapping.KeyFields[0].SortRows(records, CollectionsMarshal.AsSpan(rows), mapping.KeyFields, 1);
        }

        return true;
    }

    /// <summary>The position of the record numbered <paramref name="recordNumber"/> in the run (as <see cref="Ingestion.Sinks.SinkBatch{TRecord}.PositionOf(int)"/> writes it).</summary>
    private static string RecordPosition(long recordNumber) => $"record {recordNumber}";

    /// <summary>Checks every value of a record; the position is written only for a record that is rejected.</summary>
    private RejectedRecord? Check(TableMapping<TRecord> mapping, TRecord record, long recordNumber)
    {
        foreach (var f in mapping.Fields)
        {
            if (f.IsNull(record))
            {
                if (mapping.KeyFields.Contains(f))
                {
                    return new RejectedRecord(RecordPosition(recordNumber), f.Column.Name, $"Key column '{f.Column.Name}' is null.");
                }

                if (f.Column.NotNull)
                {
                    return new RejectedRecord(RecordPosition(recordNumber), f.Column.Name, $"Column '{f.Column.Name}' is null, but it is NOT NULL in table {mapping.DisplayName}.");
                }

                continue;
            }

            if (f.Validate(record, out var raw) is { } reason)
            {
                return new RejectedRecord(RecordPosition(recordNumber), f.Column.Name, reason, raw);
            }
        }

        return null;
    }

    private RecordSchema SchemaOf(TRecord record) => _run.Schema ?? ((DynamicRecord)(object)record).Schema;

    private static bool SameColumns(RecordSchema a, RecordSchema b) =>
        a.Columns.Count == b.Columns.Count
        && a.Columns.Zip(b.Columns).All(p => p.First.Name == p.Second.Name && p.First.Type == p.Second.Type && p.First.IsKey == p.Second.IsKey && p.First.IsSourceName == p.Second.IsSourceName);

    /// <summary>
    /// The records of a batch the writer owns (<see cref="PrepareReleasableBatch"/>) and, once a copy ahead has encoded
    /// every row the batch may send, those rows as bytes (<see cref="Encoded"/>) in their stead: the records are then
    /// released (all but the first, by which the write finds the batch's mapping), so the collector reclaims them while
    /// the batch waits for its commit instead of copying them from generation to generation. Every later use of the
    /// batch's rows by the write (the copy taken or written again, a merge, a batch rewritten without a refused record)
    /// is served by those bytes; an error about a released record names its position and column, not its key.
    /// </summary>
    private sealed class RecordRelease(TRecord[] records) : IDisposable
    {
        private EncodedRows<TRecord>? _encoded;

        /// <summary>The rows as bytes once the records are released, else null (the records are all there).</summary>
        public EncodedRows<TRecord>? Encoded => Volatile.Read(ref _encoded);

        /// <summary>Keeps <paramref name="encoded"/> (which must hold every row the batch may send) and releases the records.</summary>
        public void Release(EncodedRows<TRecord> encoded)
        {
            Volatile.Write(ref _encoded, encoded);
            Array.Clear(records, 1, records.Length - 1);
        }

        /// <summary>Gives the bytes' buffer back, once the batch's write is over.</summary>
        public void Dispose() => Volatile.Read(ref _encoded)?.Dispose();
    }

    /// <summary>A batch checked, hashed and deduplicated for one mapping, and maybe classified (<see cref="Classified"/>).</summary>
    private sealed record PreparedRows(TableMapping<TRecord>? Mapping, IReadOnlyList<TRecord>? Records, List<RejectedRecord> Rejected, ulong[] KeyHashes, ulong[] RowHashes, List<int> Winners, long Duplicates, bool Sorted)
    {
        /// <summary>The rows' classification made ahead of the write, if it could be.</summary>
        public Classification? Classified { get; init; }

        /// <summary>The records' array when the runner gave it over (they may then be released once encoded), else null.</summary>
        public RecordRelease? Release { get; init; }

        public static PreparedRows Empty { get; } = new(null, null, [], [], [], [], 0, false);
    }
}
