namespace Ingestion.Dedup;

/// <summary>
/// The matching view of one record: its source and identifier, and the values of the matcher's
/// fields (raw, in field order) with their normalized forms computed once. Built by
/// <see cref="RecordMatcher.Profile(string, string, IReadOnlyList{object?})"/>; immutable.
/// </summary>
public sealed class MatchProfile
{
    internal MatchProfile(string source, string sourceId, object?[] values, string?[] keys, HashSet<string>?[] trigrams)
    {
        Source = source;
        SourceId = sourceId;
        Values = values;
        Keys = keys;
        TrigramSets = trigrams;
    }

    /// <summary>The source the record came from.</summary>
    public string Source { get; }

    /// <summary>The record's identifier within its source.</summary>
    public string SourceId { get; }

    /// <summary>The raw field values in field order: <see cref="string"/>, <see cref="DateTimeOffset"/>, <see cref="GeoPoint"/> or <see langword="null"/>.</summary>
    public IReadOnlyList<object?> Values { get; }

    /// <summary>The normalized key of each text and exact field (<see langword="null"/> for other kinds or no value).</summary>
    public IReadOnlyList<string?> Keys { get; }

    internal HashSet<string>?[] TrigramSets { get; }

    /// <inheritdoc />
    public override string ToString() => $"{Source}:{SourceId}";
}
