namespace Ingestion.Dedup;

/// <summary>What happens to the duplicates found among a set of sources.</summary>
public enum DedupPolicyKind
{
    /// <summary>Keep every source row and record its link to one canonical record (score and reason) in <c>record_links</c>.</summary>
    Link,
    /// <summary>Link as above, and keep one merged canonical row per group, each field taken from the first source in precedence order that has it.</summary>
    Merge,
    /// <summary>Record the pairs found for review only: nothing is linked automatically.</summary>
    ReportOnly,
}

/// <summary>How duplicates across a set of sources are handled.</summary>
public sealed class DedupPolicy
{
    /// <summary>Link duplicates.</summary>
    public static DedupPolicy Link { get; } = new(DedupPolicyKind.Link, []);

    /// <summary>Report pairs only.</summary>
    public static DedupPolicy ReportOnly { get; } = new(DedupPolicyKind.ReportOnly, []);

    private DedupPolicy(DedupPolicyKind kind, IReadOnlyList<string> precedence)
    {
        Kind = kind;
        SourcePrecedence = precedence;
    }

    /// <summary>The kind of policy.</summary>
    public DedupPolicyKind Kind { get; }

    /// <summary>For merges: the sources in precedence order (first wins); other sources come after, by name.</summary>
    public IReadOnlyList<string> SourcePrecedence { get; }

    /// <summary>Merge duplicates with field precedence by source.</summary>
    /// <param name="sourcePrecedence">The sources, most trusted first.</param>
    /// <returns>The policy.</returns>
    /// <exception cref="ArgumentException">No source is given, or one appears twice.</exception>
    public static DedupPolicy Merge(params string[] sourcePrecedence)
    {
        ArgumentNullException.ThrowIfNull(sourcePrecedence);
        if (sourcePrecedence.Length == 0)
        {
            throw new ArgumentException("A merge policy needs the source precedence (most trusted first).", nameof(sourcePrecedence));
        }

        if (sourcePrecedence.GroupBy(s => s, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } dup)
        {
            throw new ArgumentException($"Source '{dup.Key}' appears twice in the merge precedence.", nameof(sourcePrecedence));
        }

        return new DedupPolicy(DedupPolicyKind.Merge, sourcePrecedence.ToArray());
    }

    /// <inheritdoc />
    public override string ToString() =>
        Kind == DedupPolicyKind.Merge ? $"merge ({string.Join(" > ", SourcePrecedence)})" : Kind.ToString().ToLowerInvariant();
}
