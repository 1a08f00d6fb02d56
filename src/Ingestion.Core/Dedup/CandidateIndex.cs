namespace Ingestion.Dedup;

/// <summary>A scored candidate pair: a record, another record it may duplicate, and why.</summary>
/// <param name="Record">The record looked up.</param>
/// <param name="Candidate">The existing record it was compared with.</param>
/// <param name="Score">The explainable score.</param>
public sealed record MatchCandidate(MatchProfile Record, MatchProfile Candidate, MatchScore Score);

/// <summary>
/// Finds duplicate candidates in memory without comparing every pair: records are filed under
/// blocking keys (each word of the normalized search text, combined with the time bucket of the
/// search time when the matcher has one), and only records sharing a key are scored. Records of the
/// same source are never candidates of each other (a source's own key already identifies them).
/// Not thread-safe for writes; for a database of records use the PostgreSQL candidate search.
/// </summary>
public sealed class CandidateIndex
{
    private readonly RecordMatcher _matcher;
    private readonly int _maxBlockSize;
    private readonly Dictionary<string, List<MatchProfile>> _blocks = new(StringComparer.Ordinal);
    private readonly long _bucketTicks;

    /// <summary>Creates an empty index.</summary>
    /// <param name="matcher">The matcher whose search text and time define the blocks.</param>
    /// <param name="maxBlockSize">Blocks larger than this (a word in most titles) are skipped when a record has smaller ones.</param>
    public CandidateIndex(RecordMatcher matcher, int maxBlockSize = 2_000)
    {
        ArgumentNullException.ThrowIfNull(matcher);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBlockSize, 1);
        _matcher = matcher;
        _maxBlockSize = maxBlockSize;
        var tolerance = matcher.BlockTimeField?.Tolerance ?? TimeSpan.Zero;
        _bucketTicks = Math.Max(tolerance.Ticks, TimeSpan.FromMinutes(1).Ticks);
    }

    /// <summary>How many records were added.</summary>
    public int Count { get; private set; }

    /// <summary>Files a record under its blocking keys. Unmatchable records are not added.</summary>
    /// <param name="profile">The record.</param>
    /// <returns>Whether it was added.</returns>
    public bool Add(MatchProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (_matcher.Unmatchable(profile) is not null || _matcher.BlockText(profile) is not { } text)
        {
            return false;
        }

        var bucket = Bucket(profile);
        foreach (var word in Words(text))
        {
            var key = BlockKey(bucket, word);
            if (!_blocks.TryGetValue(key, out var list))
            {
                _blocks[key] = list = [];
            }

            list.Add(profile);
        }

        Count++;
        return true;
    }

    /// <summary>The records of other sources that share a blocking key with a record (each once).</summary>
    /// <param name="profile">The record.</param>
    /// <returns>The candidates, unscored.</returns>
    public IReadOnlyList<MatchProfile> Candidates(MatchProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (_matcher.Unmatchable(profile) is not null || _matcher.BlockText(profile) is not { } text)
        {
            return [];
        }

        var bucket = Bucket(profile);
        var blocks = new List<List<MatchProfile>>();
        foreach (var word in Words(text))
        {
            for (var b = bucket - 1; b <= bucket + 1; b++)
            {
                if (bucket == long.MinValue && b != bucket)
                {
                    continue;
                }

                if (_blocks.TryGetValue(BlockKey(b, word), out var list))
                {
                    blocks.Add(list);
                }
            }
        }

        var usable = blocks.Where(l => l.Count <= _maxBlockSize).ToList();
        if (usable.Count == 0 && blocks.Count > 0)
        {
            usable.Add(blocks.MinBy(l => l.Count)!);
        }

        var seen = new HashSet<MatchProfile>(ReferenceEqualityComparer.Instance);
        var result = new List<MatchProfile>();
        foreach (var list in usable)
        {
            foreach (var p in list)
            {
                if (!string.Equals(p.Source, profile.Source, StringComparison.Ordinal) && seen.Add(p))
                {
                    result.Add(p);
                }
            }
        }

        return result;
    }

    /// <summary>Scores a record against its candidates.</summary>
    /// <param name="profile">The record.</param>
    /// <returns>The candidates scored at least the review threshold, best first.</returns>
    public IReadOnlyList<MatchCandidate> Match(MatchProfile profile) =>
        Candidates(profile)
            .Select(c => new MatchCandidate(profile, c, _matcher.Score(profile, c)))
            .Where(c => c.Score.Decision != MatchDecision.None)
            .OrderByDescending(c => c.Score.Total)
            .ThenBy(c => c.Candidate.Source, StringComparer.Ordinal)
            .ThenBy(c => c.Candidate.SourceId, StringComparer.Ordinal)
            .ToList();

    private long Bucket(MatchProfile profile) =>
        _matcher.BlockTime(profile) is { } t ? t.UtcTicks / _bucketTicks : long.MinValue;

    private static string BlockKey(long bucket, string word) =>
        bucket == long.MinValue ? word : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bucket}|{word}");

    private static IEnumerable<string> Words(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal);
}
