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

    /// <summary>
    /// The languages whose abbreviations are expanded (keys of <see cref="MatchKeyNormalizer.DefaultAbbreviations"/>);
    /// French and English by default. Empty: expand nothing.
    /// </summary>
    public IList<string> AbbreviationLanguages { get; } = new List<string> { "fr", "en" };

    /// <summary>More abbreviations to expand (added after the languages' own, replacing an entry with the same short form).</summary>
    public IList<Abbreviation> ExtraAbbreviations { get; } = new List<Abbreviation>();
}

/// <summary>
/// One entry of the normalizer's abbreviation table: a word written short (<c>st</c>, <c>blvd</c>) and the word it
/// stands for, matched on folded words (case and accents do not matter, a trailing dot is punctuation).
/// </summary>
/// <param name="Short">The short form, e.g. <c>blvd</c>.</param>
/// <param name="Long">The word it is replaced with, e.g. <c>boulevard</c>.</param>
/// <param name="LongAtEnd">
/// For an ambiguous short form, the word it stands for when it is the last word of a text of two or more words
/// (<c>st</c>: <c>saint</c> in <c>St-Jean</c> or <c>Rue St Denis</c>, <c>street</c> in <c>Main St</c>); <see langword="null"/>: always <paramref name="Long"/>.
/// </param>
public sealed record Abbreviation(string Short, string Long, string? LongAtEnd = null);

/// <summary>
/// Turns free text (titles, place names) into matching keys: case folding, accent folding
/// (<c>é</c> to <c>e</c>, <c>ç</c> to <c>c</c>, ligatures <c>œ</c> to <c>oe</c>, <c>æ</c> to <c>ae</c>, <c>ß</c> to <c>ss</c>),
/// punctuation and whitespace collapsed to single spaces, abbreviations expanded in place from a table per language
/// (<c>St-Jean</c> and <c>Saint Jean</c> give <c>saint jean</c>, <c>Blvd</c> gives <c>boulevard</c>; see
/// <see cref="DefaultAbbreviations"/>), and stop words removed per language.
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
    private readonly Dictionary<string, Abbreviation> _abbreviations = new(StringComparer.Ordinal);

    /// <summary>Creates a normalizer with French and English stop words.</summary>
    public MatchKeyNormalizer()
        : this(new MatchKeyNormalizerOptions())
    {
    }

    /// <summary>Creates a normalizer.</summary>
    /// <param name="options">The settings.</param>
    /// <exception cref="ArgumentException">A stop-word or abbreviation language is unknown, or an abbreviation is not one word.</exception>
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

        foreach (var language in options.AbbreviationLanguages)
        {
            if (!DefaultAbbreviations.TryGetValue(language, out var entries))
            {
                throw new ArgumentException($"No abbreviations are known for language '{language}'; known: {string.Join(", ", DefaultAbbreviations.Keys)}. Add them with ExtraAbbreviations instead.", nameof(options));
            }

            foreach (var entry in entries)
            {
                AddAbbreviation(entry);
            }
        }

        foreach (var entry in options.ExtraAbbreviations)
        {
            ArgumentNullException.ThrowIfNull(entry);
            AddAbbreviation(entry);
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

    /// <summary>The abbreviations expanded by this normalizer (folded), by short form in ordinal order.</summary>
    public IReadOnlyList<Abbreviation> Abbreviations => _abbreviations.Values.OrderBy(a => a.Short, StringComparer.Ordinal).ToList();

    /// <summary>
    /// The built-in abbreviations of place and event names by language code (<c>fr</c>, <c>en</c>), already folded.
    /// <c>st</c> is ambiguous (Saint, Street): it reads <c>saint</c> except as the last word of a name (<c>Main St</c>),
    /// where it reads <c>street</c>; <c>mount</c> and <c>mt</c> both read <c>mont</c>, so that French and English
    /// spellings of a mountain agree. Extend the table with <see cref="MatchKeyNormalizerOptions.ExtraAbbreviations"/>.
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<Abbreviation>> DefaultAbbreviations { get; } = new Dictionary<string, IReadOnlyList<Abbreviation>>(StringComparer.OrdinalIgnoreCase)
    {
        ["fr"] =
        [
            new("st", "saint", "street"), new("ste", "sainte"), new("sts", "saints"), new("stes", "saintes"),
            new("mt", "mont"), new("mts", "monts"),
            new("boul", "boulevard"), new("bd", "boulevard"), new("blvd", "boulevard"),
            new("av", "avenue"), new("ave", "avenue"),
            new("ch", "chemin"), new("rte", "route"), new("pl", "place"), new("cte", "cote"), new("fg", "faubourg"),
            new("prom", "promenade"), new("imp", "impasse"),
        ],
        ["en"] =
        [
            new("st", "saint", "street"), new("mt", "mont"), new("mount", "mont"), new("mtn", "mountain"),
            new("ft", "fort"), new("rd", "road"), new("hwy", "highway"),
            new("blvd", "boulevard"), new("ave", "avenue"), new("av", "avenue"), new("ln", "lane"), new("sq", "square"),
            new("ctr", "center"), new("centre", "center"), new("univ", "university"), new("intl", "international"),
        ],
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
        var all = Split(text);
        if (_abbreviations.Count > 0)
        {
            for (var i = 0; i < all.Count; i++)
            {
                if (_abbreviations.TryGetValue(all[i], out var a))
                {
                    all[i] = a.LongAtEnd is { } end && i == all.Count - 1 && i > 0 ? end : a.Long;
                }
            }
        }

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
    public static IReadOnlyList<string> Tokenize(string? text) => Split(text);

    private static List<string> Split(string? text)
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

    private void AddAbbreviation(Abbreviation entry)
    {
        var shortForm = Tokenize(entry.Short);
        var longForm = Tokenize(entry.Long);
        var atEnd = entry.LongAtEnd is null ? null : Tokenize(entry.LongAtEnd);
        if (shortForm.Count != 1 || longForm.Count != 1 || atEnd is { Count: not 1 })
        {
            throw new ArgumentException($"Abbreviation '{entry.Short}' -> '{entry.Long}': the short and the long form must each be one word of letters or digits.", nameof(entry));
        }

        _abbreviations[shortForm[0]] = new Abbreviation(shortForm[0], longForm[0], atEnd?[0]);
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
