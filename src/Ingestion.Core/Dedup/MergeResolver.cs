using System.Globalization;

namespace Ingestion.Dedup;

/// <summary>A field on which the members of a duplicate group disagree, and which value won.</summary>
/// <param name="Field">The field name.</param>
/// <param name="WinningSource">The source whose value was kept.</param>
/// <param name="Values">Each member's value (<c>source:source_id</c> to value), in precedence order.</param>
public sealed record FieldConflict(string Field, string WinningSource, IReadOnlyList<KeyValuePair<string, string?>> Values);

/// <summary>The merged canonical record of a duplicate group.</summary>
/// <param name="Values">The merged value of each matcher field, in field order.</param>
/// <param name="FieldSources">The member (<c>source:source_id</c>) each value came from, or <see langword="null"/> when no member has it.</param>
/// <param name="Conflicts">The fields on which members disagree.</param>
public sealed record MergedRecord(IReadOnlyList<object?> Values, IReadOnlyList<string?> FieldSources, IReadOnlyList<FieldConflict> Conflicts);

/// <summary>
/// Merges the members of a duplicate group into one canonical record: for each field, the value of the
/// first member in source-precedence order that has one; two members with different values (text
/// compared by normalized key, times and points exactly) are reported as a conflict naming the winner.
/// </summary>
public static class MergeResolver
{
    /// <summary>Merges a group.</summary>
    /// <param name="matcher">The matcher that defines the fields.</param>
    /// <param name="members">The group's members (at least one).</param>
    /// <param name="sourcePrecedence">Sources, most trusted first; unlisted sources come after, by name, then by identifier.</param>
    /// <returns>The merged record.</returns>
    /// <exception cref="ArgumentException">The group is empty.</exception>
    public static MergedRecord Merge(RecordMatcher matcher, IReadOnlyList<MatchProfile> members, IReadOnlyList<string> sourcePrecedence)
    {
        ArgumentNullException.ThrowIfNull(matcher);
        ArgumentNullException.ThrowIfNull(members);
        ArgumentNullException.ThrowIfNull(sourcePrecedence);
        if (members.Count == 0)
        {
            throw new ArgumentException("A duplicate group has at least one member.", nameof(members));
        }

        var rank = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < sourcePrecedence.Count; i++)
        {
            rank.TryAdd(sourcePrecedence[i], i);
        }

        var ordered = members
            .OrderBy(m => rank.TryGetValue(m.Source, out var r) ? r : int.MaxValue)
            .ThenBy(m => m.Source, StringComparer.Ordinal)
            .ThenBy(m => m.SourceId, StringComparer.Ordinal)
            .ToList();
        var values = new object?[matcher.Fields.Count];
        var from = new string?[matcher.Fields.Count];
        var conflicts = new List<FieldConflict>();
        foreach (var f in matcher.Fields)
        {
            var i = f.Ordinal;
            MatchProfile? winner = null;
            var distinct = new HashSet<string>(StringComparer.Ordinal);
            foreach (var m in ordered)
            {
                if (m.Values[i] is null || ((f.Kind is MatchFieldKind.Text or MatchFieldKind.Exact) && m.Keys[i] is null))
                {
                    continue;
                }

                winner ??= m;
                distinct.Add(Comparable(f, m));
            }

            if (winner is null)
            {
                continue;
            }

            values[i] = winner.Values[i];
            from[i] = winner.ToString();
            if (distinct.Count > 1)
            {
                conflicts.Add(new FieldConflict(
                    f.Name,
                    winner.Source,
                    ordered.Where(m => m.Values[i] is not null).Select(m => new KeyValuePair<string, string?>(m.ToString(), Display(m.Values[i]))).ToList()));
            }
        }

        return new MergedRecord(values, from, conflicts);
    }

    private static string Comparable(MatchField f, MatchProfile m) => f.Kind switch
    {
        MatchFieldKind.Text or MatchFieldKind.Exact => m.Keys[f.Ordinal]!,
        _ => Display(m.Values[f.Ordinal]) ?? string.Empty,
    };

    private static string? Display(object? value) => value switch
    {
        null => null,
        DateTimeOffset d => d.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
        GeoPoint p => string.Create(CultureInfo.InvariantCulture, $"{p.Longitude:R} {p.Latitude:R}"),
        var o => Convert.ToString(o, CultureInfo.InvariantCulture),
    };
}
