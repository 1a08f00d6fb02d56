using System.Globalization;
using System.Text;

namespace Ingestion.Dedup;

/// <summary>Settings of a <see cref="MatchKeyNormalizer"/>.</summary>
public sealed class MatchKeyNormalizerOptions
{
    /// <summary>The languages whose stop words are removed (keys of <see cref="MatchKeyNormalizer.DefaultStopWords"/>); French and English by default. Empty: keep every word.</summary>
    public IList<string> StopWordLanguages { get; } = new List<string> { "fr", "en" };

    /// <summary>More words to remove, in any case and with or without accents.</summary>
    public IList<string> ExtraStopWords { get; } = new List<string>();
}

/// <summary>
/// Turns free text (titles, place names) into matching keys: case folding, accent folding
/// (<c>é</c> to <c>e</c>, <c>ç</c> to <c>c</c>, ligatures <c>œ</c> to <c>oe</c>, <c>æ</c> to <c>ae</c>, <c>ß</c> to <c>ss</c>),
/// punctuation and whitespace collapsed to single spaces, and stop words removed per language.
/// Numbers (years, ordinals such as <c>2026</c>, <c>1er</c>, <c>21st</c>) are kept.
/// Pure and thread-safe once built.
/// </summary>
/// <remarks>
/// When every word of a text is a stop word (<c>"The The"</c>), the words are kept rather than
/// producing an empty key. A text with no letter or digit at all normalizes to the empty string:
/// callers treat it as "no value", never as a match.
/// </remarks>
public sealed class MatchKeyNormalizer
{
    private readonly HashSet<string> _stopWords;

    /// <summary>Creates a normalizer with French and English stop words.</summary>
    public MatchKeyNormalizer()
        : this(new MatchKeyNormalizerOptions())
    {
    }

    /// <summary>Creates a normalizer.</summary>
    /// <param name="options">The settings.</param>
    /// <exception cref="ArgumentException">A stop-word language is unknown.</exception>
    public MatchKeyNormalizer(MatchKeyNormalizerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _stopWords = new HashSet<string>(StringComparer.Ordinal);
        foreach (var language in options.StopWordLanguages)
        {
            if (!DefaultStopWords.TryGetValue(language, out var words))
            {
                throw new ArgumentException($"No stop words are known for language '{language}'; known: {string.Join(", ", DefaultStopWords.Keys)}. Add the words with ExtraStopWords instead.", nameof(options));
            }

            _stopWords.UnionWith(words);
        }

        foreach (var word in options.ExtraStopWords)
        {
            foreach (var token in Tokenize(word))
            {
                _stopWords.Add(token);
            }
        }
    }

    /// <summary>The stop words removed by this normalizer (folded), in ordinal order.</summary>
    public IReadOnlyList<string> StopWords => _stopWords.Order(StringComparer.Ordinal).ToList();

    /// <summary>The built-in stop words by language code (<c>fr</c>, <c>en</c>), already folded.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> DefaultStopWords { get; } = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase)
    {
        ["fr"] = ["le", "la", "les", "l", "de", "du", "des", "d", "un", "une", "et", "a", "au", "aux", "en", "sur", "pour", "par", "avec"],
        ["en"] = ["the", "of", "a", "an", "and", "at", "in", "on", "for", "to", "by", "with"],
    };

    /// <summary>The normalized key: the kept words joined by single spaces; empty when the text has no letter or digit.</summary>
    /// <param name="text">The text, or <see langword="null"/>.</param>
    /// <returns>The key, e.g. <c>theatre nouveau monde</c> for <c>Théâtre du Nouveau-Monde</c>.</returns>
    public string Normalize(string? text) => string.Join(' ', Tokens(text));

    /// <summary>The kept words of a text, in order.</summary>
    /// <param name="text">The text, or <see langword="null"/>.</param>
    /// <returns>The folded words without stop words (all words when every one is a stop word).</returns>
    public IReadOnlyList<string> Tokens(string? text)
    {
        var all = Tokenize(text);
        if (all.Count == 0 || _stopWords.Count == 0)
        {
            return all;
        }

        var kept = all.Where(t => !_stopWords.Contains(t)).ToList();
        return kept.Count > 0 ? kept : all;
    }

    /// <summary>Folds case, accents and ligatures of a text and splits it into words of letters and digits (no stop-word removal).</summary>
    /// <param name="text">The text, or <see langword="null"/>.</param>
    /// <returns>The folded words.</returns>
    public static IReadOnlyList<string> Tokenize(string? text)
    {
        var tokens = new List<string>();
        if (string.IsNullOrEmpty(text))
        {
            return tokens;
        }

        var decomposed = text.Normalize(NormalizationForm.FormD);
        var word = new StringBuilder(16);
        foreach (var c in decomposed)
        {
            var category = CharUnicodeInfo.GetUnicodeCategory(c);
            if (category is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format)
            {
                continue;
            }

            if (Ligature(c) is { } expanded)
            {
                word.Append(expanded);
            }
            else if (char.IsLetterOrDigit(c))
            {
                word.Append(char.ToLowerInvariant(c));
            }
            else if (word.Length > 0)
            {
                tokens.Add(word.ToString());
                word.Clear();
            }
        }

        if (word.Length > 0)
        {
            tokens.Add(word.ToString());
        }

        return tokens;
    }

    private static string? Ligature(char c) => c switch
    {
        'œ' or 'Œ' => "oe",
        'æ' or 'Æ' => "ae",
        'ß' or 'ẞ' => "ss",
        'ĳ' or 'Ĳ' => "ij",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ø' or 'Ø' => "o",
        'đ' or 'Đ' => "d",
        'ł' or 'Ł' => "l",
        _ => null,
    };
}
