using System.Globalization;

namespace Ingestion.Dedup;

/// <summary>Settings of a matcher's blocking (how candidates are narrowed before they are scored).</summary>
public sealed class MatchBlockingOptions
{
    /// <summary>How many leading characters of each normalized word form its text block (default 4: <c>montreal</c> and <c>montrael</c> share <c>mont</c>).</summary>
    public int TokenPrefixLength { get; set; } = 4;

    /// <summary>How many words of the search text block (the longest ones, default 6): long titles do not multiply the lookups.</summary>
    public int MaxTokens { get; set; } = 6;

    /// <summary>
    /// The width of a grid cell, in multiples of twice the geo field's maximum distance (default 4: 40 km cells for a
    /// 5 km distance). Wider cells mean fewer cells probed per word (1 to 4, 1.6 on average at 4) but more records per
    /// block; the exact distance is checked on each block entry before a candidate is read, so the width changes the
    /// speed, never the result.
    /// </summary>
    public int GeoCellScale { get; set; } = 4;

    /// <summary>
    /// When the matcher also blocks on a geo field: the length of a time bucket, in multiples of twice the date field's
    /// tolerance (default 16: 64 h buckets for a 2 h tolerance, so a record mostly probes one bucket). Without a geo field
    /// the bucket is twice the tolerance. The exact time difference is checked on each block entry, as the distance is.
    /// </summary>
    public int TimeBucketScale { get; set; } = 16;
}

/// <summary>A blocking key of a record.</summary>
/// <param name="Key">The 64-bit key.</param>
/// <param name="Placed">Whether the key combines a word with the record's cell, bucket or codes (its entries are checked
/// on the exact distance and time); false for the keys of the whole name, which meet whatever the other fields.</param>
public readonly record struct BlockEntry(long Key, bool Placed);

/// <summary>
/// The blocking keys of a matcher: two records are compared only when they share a key, so a batch's candidates are
/// found by looking its keys up in an index, never by comparing every pair. Every kind of field can narrow the blocks:
/// <list type="bullet">
/// <item>the search text (<see cref="RecordMatcher.BlockTextField"/>): each of its longest normalized words, cut to
/// <see cref="MatchBlockingOptions.TokenPrefixLength"/> characters (abbreviations are already expanded, accents folded);</item>
/// <item>the first <see cref="MatchFieldKind.Geo"/> field: a grid cell <see cref="MatchBlockingOptions.GeoCellScale"/>
/// times twice the field's maximum distance wide (rows of equal latitude height, columns as wide in metres at the row's
/// poleward edge); a record is filed in its cell and looks in every cell its maximum distance reaches (1 to 4), so two
/// points within the distance always meet;</item>
/// <item>the first <see cref="MatchFieldKind.DateTime"/> field: a time bucket twice the tolerance long (times
/// <see cref="MatchBlockingOptions.TimeBucketScale"/> when a geo field blocks too); a record looks in its bucket and in
/// each neighbour its tolerance reaches, so two times within the tolerance always meet;</item>
/// <item>every <see cref="MatchFieldKind.Exact"/> field declared <c>mustMatch</c>: its normalized value.</item>
/// </list>
/// A record's text keys combine one word with its cell, bucket and exact values. A record that lacks a value of a
/// blocking field (no point, no date) cannot be placed in a cell: it is filed and looked up by its whole normalized text
/// instead, and meets the records with the same text whatever their other fields. Consequence: a pair farther apart than
/// the geo field's maximum distance is not compared (its geo similarity would be 0): a store checks the exact distance
/// and time difference of the entries of a placed key (<see cref="BlockEntry.Placed"/>) before it reads a candidate. Keys carry the record type and the
/// source, so a source's records never block with its own. Keys are 64-bit FNV-1a hashes, stable across processes.
/// </summary>
public sealed class MatchBlocking
{
    private const double MetersPerDegree = 6_371_008.8 * Math.PI / 180;
    private const char Separator = '\u001f';
    private const string SeparatorText = "\u001f";
    private readonly RecordMatcher _matcher;
    private readonly int _prefix;
    private readonly int _maxTokens;
    private readonly double _cellDegrees;
    private readonly long _bucketTicks;
    private readonly long _toleranceTicks;

    internal MatchBlocking(RecordMatcher matcher, MatchBlockingOptions options)
    {
        _matcher = matcher;
        _prefix = options.TokenPrefixLength;
        _maxTokens = options.MaxTokens;
        GeoField = matcher.Fields.FirstOrDefault(f => f.Kind == MatchFieldKind.Geo);
        TimeField = matcher.Fields.FirstOrDefault(f => f.Kind == MatchFieldKind.DateTime);
        ExactFields = matcher.Fields.Where(f => f.Kind == MatchFieldKind.Exact && f.MinSimilarity >= 1).ToArray();
        _cellDegrees = GeoField is { } g ? Math.Min(180, options.GeoCellScale * 2 * g.MaxDistanceMeters / MetersPerDegree) : 0;
        _toleranceTicks = TimeField?.Tolerance.Ticks ?? 0;
        _bucketTicks = TimeField is { } t ? Math.Max(2 * t.Tolerance.Ticks * (GeoField is null ? 1 : options.TimeBucketScale), TimeSpan.FromMinutes(1).Ticks) : 0;
    }

    /// <summary>The geo field whose grid cell blocks, or <see langword="null"/>.</summary>
    public MatchField? GeoField { get; }

    /// <summary>The date/time field whose bucket blocks, or <see langword="null"/>.</summary>
    public MatchField? TimeField { get; }

    /// <summary>The exact fields (declared <c>mustMatch</c>) whose values block.</summary>
    public IReadOnlyList<MatchField> ExactFields { get; }

    private bool HasDimensions => GeoField is not null || TimeField is not null || ExactFields.Count > 0;

    /// <summary>The keys a record is filed under (in its own source).</summary>
    /// <param name="profile">The record; it must be matchable (a search text).</param>
    /// <returns>The distinct keys.</returns>
    public IReadOnlyList<long> FileKeys(MatchProfile profile) => [.. FileEntries(profile).Select(e => e.Key)];

    /// <summary>The keys a record is filed under (in its own source), each with whether it is placed.</summary>
    /// <param name="profile">The record; it must be matchable (a search text).</param>
    /// <returns>The distinct keys.</returns>
    public IReadOnlyList<BlockEntry> FileEntries(MatchProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var keys = new HashSet<BlockEntry>();
        if (_matcher.BlockText(profile) is not { } text)
        {
            return [];
        }

        var dims = Dimensions(profile, probe: false);
        if (dims is not null)
        {
            AddTextKeys(keys, profile.Source, Prefixes(text), dims);
        }

        if (HasDimensions)
        {
            keys.Add(new BlockEntry(Hash("n", profile.Source, text), false));
            if (dims is null)
            {
                keys.Add(new BlockEntry(Hash("n?", profile.Source, text), false));
            }
        }

        return keys.ToArray();
    }

    /// <summary>The keys to look a record's candidates up by, in each of the other sources.</summary>
    /// <param name="profile">The record; it must be matchable (a search text).</param>
    /// <param name="otherSources">The sources whose records may be its duplicates.</param>
    /// <returns>The distinct keys.</returns>
    public IReadOnlyList<long> ProbeKeys(MatchProfile profile, IEnumerable<string> otherSources) => [.. ProbeEntries(profile, otherSources).Select(e => e.Key)];

    /// <summary>The keys to look a record's candidates up by, in each of the other sources, each with whether it is placed.</summary>
    /// <param name="profile">The record; it must be matchable (a search text).</param>
    /// <param name="otherSources">The sources whose records may be its duplicates.</param>
    /// <returns>The distinct keys.</returns>
    public IReadOnlyList<BlockEntry> ProbeEntries(MatchProfile profile, IEnumerable<string> otherSources)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(otherSources);
        var keys = new HashSet<BlockEntry>();
        if (_matcher.BlockText(profile) is not { } text)
        {
            return [];
        }

        var dims = Dimensions(profile, probe: true);
        var prefixes = dims is null ? [] : Prefixes(text);
        foreach (var source in otherSources)
        {
            if (string.Equals(source, profile.Source, StringComparison.Ordinal))
            {
                continue;
            }

            if (dims is not null)
            {
                AddTextKeys(keys, source, prefixes, dims);
                if (HasDimensions)
                {
                    keys.Add(new BlockEntry(Hash("n?", source, text), false));
                }
            }
            else
            {
                keys.Add(new BlockEntry(Hash("n", source, text), false));
            }
        }

        return keys.ToArray();
    }

    /// <summary>The grid cell a point is filed in, as <c>row:column</c> (for tests and diagnostics).</summary>
    /// <param name="point">The point.</param>
    /// <returns>The cell, or <see langword="null"/> when the matcher has no geo field.</returns>
    public string? CellOf(GeoPoint point) => GeoField is null ? null : Cell(Row(point.Latitude), point.Longitude);

    /// <summary>The cells a point's candidates are looked up in (for tests and diagnostics).</summary>
    /// <param name="point">The point.</param>
    /// <returns>The cells, or none when the matcher has no geo field.</returns>
    public IReadOnlyList<string> ProbeCells(GeoPoint point) => GeoField is null ? [] : NearCells(point);

    private void AddTextKeys(HashSet<BlockEntry> keys, string source, List<string> prefixes, List<string> dims)
    {
        // Hash("t", source, prefix + Separator + dims) computed incrementally: the common head once, each prefix once.
        var head = Head("t", source);
        foreach (var prefix in prefixes)
        {
            var h = Step(Mix(head, prefix), Separator);
            foreach (var d in dims)
            {
                keys.Add(new BlockEntry(unchecked((long)Step(Mix(h, d), Separator)), HasDimensions));
            }
        }
    }

    private List<string> Prefixes(string text)
    {
        // The longest distinct words (ties in ordinal order), at most MaxTokens, each cut to the prefix length.
        var words = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Array.Sort(words, static (a, b) => a.Length != b.Length ? b.Length.CompareTo(a.Length) : string.CompareOrdinal(a, b));
        var result = new List<string>(Math.Min(words.Length, _maxTokens));
        string? previous = null;
        var taken = 0;
        foreach (var w in words)
        {
            if (string.Equals(w, previous, StringComparison.Ordinal))
            {
                continue;
            }

            if (taken++ == _maxTokens)
            {
                break;
            }

            previous = w;
            var prefix = w.Length <= _prefix ? w : w[.._prefix];
            if (!result.Contains(prefix, StringComparer.Ordinal))
            {
                result.Add(prefix);
            }
        }

        return result;
    }

    /// <summary>The combinations of the record's cell, bucket and exact values (one when filing), or null when it lacks one.</summary>
    private List<string>? Dimensions(MatchProfile profile, bool probe)
    {
        // Built with plain loops: this runs twice per record matched (filing and probing).
        var combos = new List<string>(4) { string.Empty };
        if (GeoField is { } g)
        {
            if (profile.Values[g.Ordinal] is not GeoPoint p)
            {
                return null;
            }

            var cells = probe ? NearCells(p) : [Cell(Row(p.Latitude), p.Longitude)];
            combos = Combine(combos, cells, "g");
        }

        if (TimeField is { } t)
        {
            if (profile.Values[t.Ordinal] is not DateTimeOffset time)
            {
                return null;
            }

            var ticks = time.UtcTicks;
            var bucket = Math.DivRem(ticks, _bucketTicks, out var offset);
            var buckets = new List<string>(3) { bucket.ToString(CultureInfo.InvariantCulture) };
            if (probe && offset <= _toleranceTicks)
            {
                buckets.Add((bucket - 1).ToString(CultureInfo.InvariantCulture));
            }

            if (probe && offset >= _bucketTicks - _toleranceTicks)
            {
                buckets.Add((bucket + 1).ToString(CultureInfo.InvariantCulture));
            }

            combos = Combine(combos, buckets, "b");
        }

        foreach (var e in ExactFields)
        {
            if (profile.Keys[e.Ordinal] is not { } value)
            {
                return null;
            }

            combos = Combine(combos, [value], "e");
        }

        return combos;
    }

    /// <summary>Each combination followed by each value with its tag and a separator (the combinations' order, then the values').</summary>
    private static List<string> Combine(List<string> combos, IReadOnlyList<string> values, string tag)
    {
        var result = new List<string>(combos.Count * values.Count);
        foreach (var c in combos)
        {
            foreach (var v in values)
            {
                result.Add(string.Concat(c, tag, v, SeparatorText));
            }
        }

        return result;
    }

    private int Row(double latitude) => (int)Math.Min(Math.Floor((latitude + 90) / _cellDegrees), Math.Ceiling(180 / _cellDegrees) - 1);

    private int Columns(int row)
    {
        var low = -90 + (row * _cellDegrees);
        var poleward = Math.Min(90, Math.Max(Math.Abs(low), Math.Abs(low + _cellDegrees)));
        return Math.Max(1, (int)Math.Floor(360 * Math.Cos(poleward * Math.PI / 180) / _cellDegrees));
    }

    private string Cell(int row, double longitude)
    {
        var columns = Columns(row);
        var column = (int)Math.Floor((longitude + 180) / (360.0 / columns)) % columns;
        return string.Create(CultureInfo.InvariantCulture, $"{row}:{column}");
    }

    private List<string> NearCells(GeoPoint p)
    {
        var reach = GeoField!.MaxDistanceMeters / MetersPerDegree;
        var cells = new List<string>(4);
        var poleward = Math.Min(89.999, Math.Abs(p.Latitude) + reach);
        var lonReach = Math.Min(180, reach / Math.Cos(poleward * Math.PI / 180) * 1.01);
        for (var row = Row(Math.Max(-90, p.Latitude - reach)); row <= Row(Math.Min(90, p.Latitude + reach)); row++)
        {
            var columns = Columns(row);
            var width = 360.0 / columns;
            var first = (int)Math.Floor((p.Longitude - lonReach + 180) / width);
            var last = (int)Math.Floor((p.Longitude + lonReach + 180) / width);
            if (last - first + 1 >= columns)
            {
                (first, last) = (0, columns - 1);
            }

            for (var c = first; c <= last; c++)
            {
                var cell = string.Create(CultureInfo.InvariantCulture, $"{row}:{((c % columns) + columns) % columns}");
                if (!cells.Contains(cell))
                {
                    cells.Add(cell);
                }
            }
        }

        return cells;
    }

    private long Hash(string kind, string source, string value) =>
        // FNV-1a over the UTF-16 code units, each part followed by a separator: stable across processes and platforms (the keys are stored).
        unchecked((long)Step(Mix(Head(kind, source), value), Separator));

    private ulong Head(string kind, string source) =>
        Step(Mix(Step(Mix(Step(Mix(14695981039346656037UL, _matcher.RecordType), Separator), kind), Separator), source), Separator);

    private static ulong Mix(ulong h, string s)
    {
        foreach (var c in s)
        {
            h = Step(h, c);
        }

        return h;
    }

    private static ulong Step(ulong h, char c) => (h ^ c) * 1099511628211UL;
}
