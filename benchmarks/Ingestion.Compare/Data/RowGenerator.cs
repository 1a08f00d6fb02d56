using System.Globalization;

namespace Ingestion.Benchmarks.Data;

/// <summary>Which rows a case sends, relative to a table already holding rows 0..n-1 at version 0.</summary>
public enum RowPlan
{
    /// <summary>Rows 0..n-1 at version 0: a first load, or an unchanged re-run of it.</summary>
    Initial,

    /// <summary>Rows 0..n-1 at version 1: every row exists and every row changed.</summary>
    AllChanged,

    /// <summary>A third new keys (n+i), a third existing rows changed (version 1), a third existing rows unchanged.</summary>
    Mixed,
}

/// <summary>
/// Generates deterministic rows: row <c>id</c> at <c>version</c> always has the same values (a hash of the
/// id, no random state), so a later run can send the same, changed or new rows on purpose.
/// </summary>
public static class RowGenerator
{
    private static readonly DateTime Epoch = new(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private static readonly string[] Regions = Enumerable.Range(0, 50).Select(i => $"region-{i:D2}").ToArray();

    private static readonly string[] Words =
    [
        "north", "south", "river", "bridge", "station", "market", "harbour", "valley", "avenue", "square",
        "school", "library", "garden", "tower", "museum", "park", "street", "church", "airport", "lake",
        "forest", "mill", "hill", "court", "plaza", "canal", "field", "gate", "dock", "yard", "mount", "bay",
    ];

    /// <summary>Makes row <paramref name="id"/> at <paramref name="version"/>.</summary>
    /// <param name="id">The row id (its key is derived from it).</param>
    /// <param name="version">0 for the original content; another value changes some columns.</param>
    /// <returns>The row.</returns>
    public static BenchRow Create(long id, int version)
    {
        var h = Mix((ulong)id);
        var w = Words.Length;
        var description = string.Concat(
            Words[(int)(h % (ulong)w)], " ", Words[(int)((h >> 5) % (ulong)w)],
            (h >> 40) % 8 == 0 ? ", " : " ",
            Words[(int)((h >> 10) % (ulong)w)], " ",
            ((h >> 15) % 1_000_000).ToString("D6", CultureInfo.InvariantCulture), " rev ",
            version.ToString(CultureInfo.InvariantCulture), " ", Words[(int)((h >> 20) % (ulong)w)]);
        return new BenchRow
        {
            Region = Regions[(int)((ulong)id % (ulong)Regions.Length)],
            Code = "C" + id.ToString("D9", CultureInfo.InvariantCulture),
            ObservedAt = Epoch.AddSeconds((double)(h % 150_000_000UL)).AddDays(version),
            Name = string.Concat(Words[(int)((h >> 25) % (ulong)w)], " ", ((h >> 30) % 10_000).ToString(CultureInfo.InvariantCulture)),
            Category = (short)((h >> 44) % 30),
            Quantity = (int)((h >> 32) % 100_000) + (version * 7),
            Latitude = 45.0 + (((h >> 8) % 1_000_000) / 1e6),
            Longitude = -74.0 + (((h >> 28) % 1_000_000) / 1e6),
            Description = description,
            Active = (h & 1) == 0,
        };
    }

    /// <summary>The (id, version) of the <paramref name="index"/>-th row of a plan over <paramref name="count"/> rows.</summary>
    /// <param name="plan">The plan.</param>
    /// <param name="index">0-based position in the sent rows.</param>
    /// <param name="count">How many rows the table holds (and the plan sends).</param>
    /// <returns>The id and version.</returns>
    public static (long Id, int Version) Map(RowPlan plan, long index, long count) => plan switch
    {
        RowPlan.Initial => (index, 0),
        RowPlan.AllChanged => (index, 1),
        RowPlan.Mixed => (index % 3) switch
        {
            0 => (count + index, 0),
            1 => (index, 1),
            _ => (index, 0),
        },
        _ => throw new ArgumentOutOfRangeException(nameof(plan), plan, "Unknown row plan."),
    };

    /// <summary>The rows of a plan, generated lazily (never held in memory).</summary>
    /// <param name="plan">The plan.</param>
    /// <param name="count">How many rows.</param>
    /// <returns>The rows.</returns>
    public static IEnumerable<BenchRow> Rows(RowPlan plan, long count)
    {
        for (long i = 0; i < count; i++)
        {
            var (id, version) = Map(plan, i, count);
            yield return Create(id, version);
        }
    }

    /// <summary>The exact outcome a correct merge reports for a plan applied to a table holding the initial rows.</summary>
    /// <param name="plan">The plan.</param>
    /// <param name="count">The row count.</param>
    /// <param name="tableIsEmpty">Whether the table starts empty (a first load).</param>
    /// <returns>Created, updated and unchanged counts.</returns>
    public static (long Created, long Updated, long Unchanged) ExpectedCounts(RowPlan plan, long count, bool tableIsEmpty)
    {
        if (tableIsEmpty)
        {
            return (count, 0, 0);
        }

        return plan switch
        {
            RowPlan.Initial => (0, 0, count),
            RowPlan.AllChanged => (0, count, 0),
            RowPlan.Mixed => ((count + 2) / 3, (count + 1) / 3, count / 3),
            _ => throw new ArgumentOutOfRangeException(nameof(plan), plan, "Unknown row plan."),
        };
    }

    // SplitMix64 finalizer: a fixed, well-spread hash of the id.
    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
