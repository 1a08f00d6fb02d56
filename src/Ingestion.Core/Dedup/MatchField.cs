namespace Ingestion.Dedup;

/// <summary>How a field of a matcher compares two records.</summary>
public enum MatchFieldKind
{
    /// <summary>Free text (a title, a place name): normalized, then compared by trigram similarity.</summary>
    Text,
    /// <summary>A code compared after normalization: 1 when equal, 0 otherwise.</summary>
    Exact,
    /// <summary>A date and time: 1 when equal, falling to 0.5 at the tolerance, 0 beyond.</summary>
    DateTime,
    /// <summary>A WGS 84 point: 1 at the same place, falling to 0.5 at the maximum distance, 0 beyond.</summary>
    Geo,
    /// <summary>Not scored: carried along for merges and for the canonical record (a URL, a price).</summary>
    Carried,
}

/// <summary>One field of a <see cref="RecordMatcher"/>: what it compares and how much it weighs.</summary>
public sealed class MatchField
{
    internal MatchField(string name, MatchFieldKind kind, double weight)
    {
        Name = name;
        Kind = kind;
        Weight = weight;
    }

    /// <summary>The field name, used in explanations and merges.</summary>
    public string Name { get; }

    /// <summary>How the field compares.</summary>
    public MatchFieldKind Kind { get; }

    /// <summary>The weight of the field in the total score (relative to the other compared fields).</summary>
    public double Weight { get; }

    /// <summary>Whether a record without this field (null, or text that normalizes to nothing) cannot be matched at all.</summary>
    public bool Required { get; internal init; }

    /// <summary>A similarity below this vetoes the pair whatever the other fields say (0: no veto).</summary>
    public double MinSimilarity { get; internal init; }

    /// <summary>For <see cref="MatchFieldKind.DateTime"/>: the largest difference still considered the same time.</summary>
    public TimeSpan Tolerance { get; internal init; }

    /// <summary>For <see cref="MatchFieldKind.Geo"/>: the largest distance, in metres, still considered the same place.</summary>
    public double MaxDistanceMeters { get; internal init; }

    /// <summary>The position of the field in a <see cref="MatchProfile"/>.</summary>
    public int Ordinal { get; internal set; }

    internal Func<object, object?> Getter { get; init; } = _ => null;
}
