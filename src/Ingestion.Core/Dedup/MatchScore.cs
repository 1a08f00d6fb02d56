using System.Globalization;
using System.Text;

namespace Ingestion.Dedup;

/// <summary>What a score means for a pair of records.</summary>
public enum MatchDecision
{
    /// <summary>Not the same record.</summary>
    None,
    /// <summary>Maybe the same: left for a person to confirm or reject.</summary>
    Review,
    /// <summary>The same record: linked automatically.</summary>
    Link,
}

/// <summary>How one field compared in a pair.</summary>
public enum FieldMatchStatus
{
    /// <summary>The values are the same (similarity 1).</summary>
    Matched,
    /// <summary>The values are close (similarity between 0 and 1).</summary>
    Partial,
    /// <summary>The values differ (similarity 0).</summary>
    Differs,
    /// <summary>One record or both have no value: the field is left out of the score.</summary>
    Missing,
    /// <summary>The similarity is below the field's minimum: the pair cannot match.</summary>
    Vetoed,
}

/// <summary>The comparison of one field of a pair: part of a score's explanation.</summary>
/// <param name="Field">The field name.</param>
/// <param name="Status">How it compared.</param>
/// <param name="Similarity">0 to 1.</param>
/// <param name="Weight">The field's weight.</param>
/// <param name="Detail">The facts behind the similarity (e.g. <c>12 min apart, tolerance 2 h</c>).</param>
public sealed record FieldScore(string Field, FieldMatchStatus Status, double Similarity, double Weight, string Detail);

/// <summary>The explainable score of a pair of records: the total, the decision, and each field's part.</summary>
/// <param name="Total">The weighted mean similarity of the compared fields (0 when vetoed).</param>
/// <param name="Decision">Link, review or none, from the matcher's thresholds.</param>
/// <param name="Fields">Each field's comparison.</param>
public sealed record MatchScore(double Total, MatchDecision Decision, IReadOnlyList<FieldScore> Fields)
{
    /// <summary>Whether a field vetoed the pair.</summary>
    public bool Vetoed => Fields.Any(f => f.Status == FieldMatchStatus.Vetoed);

    /// <summary>A one-line explanation, e.g. <c>link 0.93: title 0.88 x0.6 (partial), starts_at 1.00 x0.3 (same time)</c>.</summary>
    /// <returns>The explanation.</returns>
    public string Explain()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{Decision.ToString().ToLowerInvariant()} {Total:0.00}:");
        var first = true;
        foreach (var f in Fields)
        {
            sb.Append(first ? " " : ", ");
            first = false;
            sb.Append(CultureInfo.InvariantCulture, $"{f.Field} {f.Similarity:0.00} x{f.Weight:0.##} ({f.Status.ToString().ToLowerInvariant()}");
            if (f.Detail.Length > 0)
            {
                sb.Append("; ").Append(f.Detail);
            }

            sb.Append(')');
        }

        return sb.ToString();
    }

    /// <inheritdoc />
    public override string ToString() => Explain();
}
