namespace Ingestion.Dedup;

/// <summary>
/// Trigram similarity computed the way PostgreSQL's <c>pg_trgm</c> <c>similarity()</c> does: each word
/// is padded with two spaces in front and one behind, its three-character windows form a set, and the
/// similarity is the number of shared trigrams over the number of distinct trigrams of both texts
/// (0 to 1). Used on normalized keys, so the score in .NET and the candidate search in the database agree.
/// </summary>
public static class TrigramSimilarity
{
    /// <summary>The similarity of two texts (words separated by spaces).</summary>
    /// <param name="a">The first text.</param>
    /// <param name="b">The second text.</param>
    /// <returns>0 when either text is empty or they share nothing; 1 when their trigram sets are equal.</returns>
    public static double Compute(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Length == 0 || b.Length == 0)
        {
            return 0;
        }

        if (string.Equals(a, b, StringComparison.Ordinal))
        {
            return 1;
        }

        return Compute(Trigrams(a), Trigrams(b));
    }

    /// <summary>The similarity of two trigram sets.</summary>
    /// <param name="a">The first set.</param>
    /// <param name="b">The second set.</param>
    /// <returns>Shared over distinct trigrams, 0 to 1.</returns>
    public static double Compute(IReadOnlySet<string> a, IReadOnlySet<string> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count == 0 || b.Count == 0)
        {
            return 0;
        }

        var (small, large) = a.Count <= b.Count ? (a, b) : (b, a);
        var shared = 0;
        foreach (var t in small)
        {
            if (large.Contains(t))
            {
                shared++;
            }
        }

        return (double)shared / (a.Count + b.Count - shared);
    }

    /// <summary>The trigram set of a text of space-separated words.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The distinct trigrams.</returns>
    public static HashSet<string> Trigrams(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var padded = "  " + word + " ";
            for (var i = 0; i + 3 <= padded.Length; i++)
            {
                set.Add(padded.Substring(i, 3));
            }
        }

        return set;
    }
}
