namespace Ingestion.Postgres.Sinks;

/// <summary>
/// Which rows of a batch the table already holds unchanged, which are new, and which must be looked up: the batch's
/// keys against the key index, which remembers each row sent in the same search. Done on the runner's reading thread
/// ahead of the write when the batch before it was classified against the same index; else by the write.
/// </summary>
/// <remarks>
/// The index is remembered ahead of the commit: a batch that rolls back takes the whole index with it
/// (<see cref="RollbackQuietlyAsync"/>), and every batch classified against that index is classified again against the
/// one reloaded from the table. Classifications against one index run one at a time (<see cref="_indexGate"/>), in the
/// order of the batches.
/// </remarks>
internal sealed partial class PostgresSinkWriter<TRecord>
{
    private const long NoBatch = long.MinValue;

    /// <summary>Guards <see cref="_index"/>, <see cref="_indexComplete"/>, <see cref="_indexedMapping"/> and <see cref="_classifiedThrough"/>, and the index's contents while a batch is classified.</summary>
    private readonly Lock _indexGate = new();

    /// <summary>The first record number of the last batch classified against <see cref="_index"/>, or <see cref="NoBatch"/>.</summary>
    private long _classifiedThrough = NoBatch;

    /// <summary>The last batch classified against <see cref="_index"/> (its write may still be running), or null.</summary>
    private Classification? _lastClassified;

    /// <summary>The batch classified against <see cref="_index"/> before <see cref="_lastClassified"/> (its write may still be running too), or null.</summary>
    private Classification? _beforeLastClassified;

    /// <summary>The first record number of the last batch whose write succeeded (it holds no lock any more), or <see cref="NoBatch"/>.</summary>
    private long _writtenThrough = NoBatch;

    /// <summary>
    /// 2 while the last batch classified sent mostly new rows and none changed, into a table whose batches may be copied
    /// ahead (a first load): the runner then hands the next batch over behind the one being written, and its copy starts
    /// on a third connection while the two before it are written. Else 1.
    /// </summary>
    public int BatchesPreparedAhead =>
        _mayCopyTwoAhead && Volatile.Read(ref _lastClassified) is { Uncertain.Count: 0 } last
        && last.Fresh.Count * 2 >= last.Winners.Count && MayCopyAheadInto(last.Mapping) ? 2 : 1;

    /// <summary>Whether the connection pool can give the writer a third connection (<see cref="BatchesPreparedAhead"/> stays 1 otherwise).</summary>
    private readonly bool _mayCopyTwoAhead;

    /// <summary>The first record number of the batch <see cref="PrepareBatch"/> was last given (the reading thread's own).</summary>
    private long _lastPrepared = NoBatch;

    /// <summary>Notes that <see cref="PrepareBatch"/> was given the batch starting at <paramref name="firstRecordNumber"/>; returns the one it was given before.</summary>
    private long NotePrepared(long firstRecordNumber)
    {
        var previous = _lastPrepared;
        _lastPrepared = firstRecordNumber;
        return previous;
    }

    /// <summary>
    /// Classifies a prepared batch ahead of its write, on the reading thread, when that keeps the batches' order: the
    /// batch before it (the one <see cref="PrepareBatch"/> saw last) is the last one classified against the current
    /// index, of this mapping. Gives null otherwise, and the write classifies.
    /// </summary>
    /// <remarks><paramref name="before"/> are the classifications of the two batches before (whose writes may still be running).</remarks>
    private Classification? ClassifyAhead(TableMapping<TRecord> mapping, long previous, long firstRecordNumber, List<int> winners, ulong[] keyHashes, ulong[] rowHashes, out ClassifiedBefore before)
    {
        before = default;
        if (Mode != WriteMode.Merge || _run.Verify || _deferred || winners.Count == 0)
        {
            return null;
        }

        lock (_indexGate)
        {
            if (_index is null || !ReferenceEquals(_indexedMapping, mapping) || _classifiedThrough != previous || previous == NoBatch)
            {
                return null;
            }

            before = new ClassifiedBefore(_lastClassified, _beforeLastClassified);
            return ClassifyLocked(mapping, firstRecordNumber, winners, keyHashes, rowHashes);
        }
    }

    /// <summary>
    /// The classification of a batch about to be written: the one made ahead when it was made against the current
    /// index, else made now (the index is loaded).
    /// </summary>
    private Classification Classify(TableMapping<TRecord> mapping, long firstRecordNumber, List<int> winners, ulong[] keyHashes, ulong[] rowHashes, Classification? ahead)
    {
        lock (_indexGate)
        {
            return ahead is not null && ReferenceEquals(ahead.Index, _index) && ReferenceEquals(ahead.Mapping, mapping) && ReferenceEquals(ahead.Winners, winners)
                ? ahead
                : ClassifyLocked(mapping, firstRecordNumber, winners, keyHashes, rowHashes);
        }
    }

    private Classification ClassifyLocked(TableMapping<TRecord> mapping, long firstRecordNumber, List<int> winners, ulong[] keyHashes, ulong[] rowHashes)
    {
        var index = _index!;
        // Sized for all the batch's rows while batches send most of theirs (a first load): a list grown by doubling
        // leaves about its final size behind as garbage, in every batch.
        var fresh = new List<int>(_sendsMost ? winners.Count : 0);
        var uncertain = new List<int>();
        long unchanged = 0;

        // Full before this batch: a key new to the index may be one an earlier batch copied unremembered. (Filling up
        // during this batch cannot hide one of its own keys: they were all looked up while earlier keys were held.)
        var wasFull = index.Overflowed;
        for (var w = 0; w < winners.Count; w++)
        {
            if (w + KeyHashIndex.PrefetchDistance < winners.Count)
            {
                index.Prefetch(keyHashes[winners[w + KeyHashIndex.PrefetchDistance]]);
            }

            var i = winners[w];
            switch (index.Remember(keyHashes[i], rowHashes[i], out var stored))
            {
                // A table without the hash column (one the library did not create) keeps no row hash: its stored
                // rows are compared value by value on the server.
                case Remembered.Held when mapping.HasHash && stored == rowHashes[i]:
                    unchanged++;
                    break;
                case Remembered.Held:
                    uncertain.Add(i);
                    break;
                case var _ when _indexComplete:
                    // Not remembered, so new: certainly while nothing was forgotten, else presumably: the table's key
                    // catches a mistake (the write), and a table still without its key keeps the newest row of a key
                    // copied twice when the key is built (PendingKey.ResolveRepeatsAsync).
                    fresh.Add(i);
                    break;
                default:
                    uncertain.Add(i);
                    break;
            }
        }

        _classifiedThrough = firstRecordNumber;

        // Sorted ahead (and prepared on one thread) only while batches send most of their rows: the next batch learns which it is.
        _sendsMost = (fresh.Count + uncertain.Count) * 2 >= winners.Count;
        var classified = new Classification(firstRecordNumber, index, mapping, winners, keyHashes, fresh, uncertain, unchanged, FreshPastCapacity: wasFull && fresh.Count > 0, IndexComplete: _indexComplete);
        _beforeLastClassified = _lastClassified;
        _lastClassified = classified;
        return classified;
    }

    /// <summary>Puts the key index of <paramref name="mapping"/> in place (null: none; the next batch reloads it), which no batch is classified against yet.</summary>
    private void SetIndex(KeyHashIndex? index, TableMapping<TRecord>? mapping, bool complete)
    {
        lock (_indexGate)
        {
            _index = index;
            _indexedMapping = mapping;
            _indexComplete = complete;
            _classifiedThrough = NoBatch;
            _lastClassified = null;
            _beforeLastClassified = null;
        }
    }

    /// <summary>The classifications of the two batches before the one being classified, the latest first (either may be null).</summary>
    private readonly record struct ClassifiedBefore(Classification? Last, Classification? BeforeLast);

    /// <summary>
    /// A batch's rows by what the key index said of them. <see cref="Fresh"/> and <see cref="Uncertain"/> are remembered
    /// in <see cref="Index"/> with their new row hashes; <see cref="FreshPastCapacity"/>: a new key came once the index
    /// was full, so it may be one an earlier batch copied; <see cref="IndexComplete"/>: the index held every stored key,
    /// so each uncertain row is a stored key whose row changed. <see cref="KeyHashes"/> are the batch's, by record;
    /// <see cref="FirstRecordNumber"/> is its first record's number.
    /// </summary>
    private sealed record Classification(long FirstRecordNumber, KeyHashIndex Index, TableMapping<TRecord> Mapping, List<int> Winners, ulong[] KeyHashes, List<int> Fresh, List<int> Uncertain, long Unchanged, bool FreshPastCapacity, bool IndexComplete);
}
