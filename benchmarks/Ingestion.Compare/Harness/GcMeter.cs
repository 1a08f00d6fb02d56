using System.Globalization;

namespace Ingestion.Compare.Harness;

/// <summary>
/// What the garbage collector cost the client during a timed run: bytes allocated, time with managed threads paused,
/// and collections by generation. A case whose rows live across collections (batches in flight) pays for copying them
/// at each one; a streaming case does not.
/// </summary>
internal sealed class GcMeter
{
    private readonly long _allocated = GC.GetTotalAllocatedBytes(precise: true);
    private readonly TimeSpan _paused = GC.GetTotalPauseDuration();
    private readonly int[] _collections = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];

    private GcMeter()
    {
    }

    /// <summary>Starts an interval.</summary>
    /// <returns>The meter.</returns>
    public static GcMeter Start() => new();

    /// <summary>Ends the interval: "allocated 505 MB, gc paused 441 ms (collections 37/36/12)".</summary>
    /// <returns>The summary.</returns>
    public string Stop()
    {
        var allocated = (GC.GetTotalAllocatedBytes(precise: true) - _allocated) / (1024.0 * 1024.0);
        var paused = (GC.GetTotalPauseDuration() - _paused).TotalMilliseconds;
        var counts = string.Join('/', Enumerable.Range(0, 3).Select(g => GC.CollectionCount(g) - _collections[g]));
        return string.Create(CultureInfo.InvariantCulture, $"allocated {allocated:0} MB, gc paused {paused:0} ms (collections of gen 0/1/2: {counts})");
    }
}
