using Ingestion.Dedup;

namespace Ingestion.Core.Tests.Dedup;

public class MatchKeyNormalizerTests
{
    private readonly MatchKeyNormalizer _n = new();

    [Theory]
    [InlineData("Théâtre du Nouveau Monde", "Theatre du Nouveau-Monde")]
    [InlineData("L'Œuvre de Sœur Thérèse", "l oeuvre soeur therese")]
    [InlineData("Café   Ça-Va!!  (Montréal)", "cafe ca va montreal")]
    [InlineData("THE MUSEUM OF FINE ARTS", "Museum Fine Arts")]
    [InlineData("Straße der Ærøskøbing", "strasse der aeroskobing")]
    public void Equivalent_texts_normalize_to_the_same_key(string a, string b) =>
        Assert.Equal(_n.Normalize(a), _n.Normalize(b));

    [Fact]
    public void Folds_case_accents_ligatures_and_punctuation()
    {
        Assert.Equal("theatre nouveau monde", _n.Normalize("Théâtre du Nouveau-Monde"));
        Assert.Equal("festival international jazz montreal", _n.Normalize("Festival International de Jazz de Montréal"));
        Assert.Equal("festival international jazz montreal 2026", _n.Normalize("FESTIVAL INTERNATIONAL DE JAZZ DE MONTREAL - 2026"));
        Assert.Equal("oeuvre", _n.Normalize("l’œuvre"));
        Assert.Equal("garcon", _n.Normalize("GARÇON"));
    }

    [Fact]
    public void Years_and_ordinals_are_kept()
    {
        Assert.Equal("1er festival 2026", _n.Normalize("Le 1er festival - 2026"));
        Assert.Equal("21st century fox", _n.Normalize("The 21st Century Fox"));
        Assert.NotEqual(_n.Normalize("Fête 2025"), _n.Normalize("Fête 2026"));
    }

    [Fact]
    public void A_text_of_only_stop_words_keeps_its_words()
    {
        Assert.Equal("the the", _n.Normalize("The The"));
        Assert.Equal("de la", _n.Normalize("De La"));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("--- !!! ...")]
    [InlineData("\u0301\u0301")]
    public void Texts_without_letters_or_digits_normalize_to_empty(string? text)
    {
        Assert.Equal("", _n.Normalize(text));
        Assert.Empty(_n.Tokens(text));
    }

    [Fact]
    public void Stop_words_are_configurable()
    {
        var noStop = new MatchKeyNormalizerOptions();
        noStop.StopWordLanguages.Clear();
        Assert.Equal("theatre du nouveau monde", new MatchKeyNormalizer(noStop).Normalize("Théâtre du Nouveau-Monde"));
        var extra = new MatchKeyNormalizerOptions();
        extra.ExtraStopWords.Add("Théâtre");
        Assert.Equal("nouveau monde", new MatchKeyNormalizer(extra).Normalize("Theatre du Nouveau-Monde"));
        var bad = new MatchKeyNormalizerOptions();
        bad.StopWordLanguages.Add("xx");
        Assert.Contains("'xx'", Assert.Throws<ArgumentException>(() => new MatchKeyNormalizer(bad)).Message);
    }

    [Theory]
    [InlineData("festival international jazz montreal", "festival international jazz montreal", 1.0)]
    [InlineData("abc", "xyz", 0.0)]
    [InlineData("", "abc", 0.0)]
    public void Trigram_similarity_bounds(string a, string b, double expected) =>
        Assert.Equal(expected, TrigramSimilarity.Compute(a, b), 6);

    [Fact]
    public void Trigram_similarity_agrees_with_pg_trgm_on_known_values()
    {
        // pg_trgm: similarity('word', 'words') = 0.571429: 4 shared of 7 distinct trigrams.
        Assert.Equal(4.0 / 7.0, TrigramSimilarity.Compute("word", "words"), 6);
        var withYear = TrigramSimilarity.Compute("festival international jazz montreal", "festival international jazz montreal 2026");
        Assert.InRange(withYear, 0.85, 0.95);
    }
}

public class MatchKeyNormalizerAbbreviationTests
{
    private readonly MatchKeyNormalizer _n = new();

    [Theory]
    [InlineData("Saint-Jean-sur-Richelieu", "ST JEAN SUR RICHELIEU")]
    [InlineData("Saint-Jean-sur-Richelieu", "St-Jean-sur-Richelieu")]
    [InlineData("Sainte-Anne-de-Bellevue", "Ste Anne de Bellevue")]
    [InlineData("Boulevard Saint-Laurent", "Blvd St-Laurent")]
    [InlineData("Boulevard Saint-Laurent", "boul. St Laurent")]
    [InlineData("Mont-Royal", "Mt Royal")]
    [InlineData("Mont Royal", "Mount Royal")]
    [InlineData("Avenue du Parc", "Av. du Parc")]
    [InlineData("Chemin de la Côte-des-Neiges", "Ch. Cote des Neiges")]
    public void Abbreviations_of_place_names_are_expanded_in_place(string a, string b) =>
        Assert.Equal(_n.Normalize(a), _n.Normalize(b));

    [Fact]
    public void St_reads_saint_except_as_the_last_word_of_a_name()
    {
        Assert.Equal("saint denis", _n.Normalize("St-Denis"));
        Assert.Equal("rue saint denis", _n.Normalize("Rue St Denis"));
        Assert.Equal("main street", _n.Normalize("Main St."));
        Assert.Equal("saint", _n.Normalize("St"));
    }

    [Fact]
    public void The_table_is_configurable_and_checked()
    {
        var none = new MatchKeyNormalizerOptions();
        none.AbbreviationLanguages.Clear();
        Assert.Equal("st jean", new MatchKeyNormalizer(none).Normalize("St-Jean"));

        var extra = new MatchKeyNormalizerOptions();
        extra.ExtraAbbreviations.Add(new Abbreviation("Cie", "Compagnie"));
        Assert.Equal("compagnie theatre", new MatchKeyNormalizer(extra).Normalize("Cie de Théâtre"));
        Assert.Contains(new MatchKeyNormalizer(extra).Abbreviations, a => a is { Short: "cie", Long: "compagnie" });

        var bad = new MatchKeyNormalizerOptions();
        bad.ExtraAbbreviations.Add(new Abbreviation("St", "Saint Patron"));
        Assert.Contains("one word", Assert.Throws<ArgumentException>(() => new MatchKeyNormalizer(bad)).Message);
        var unknown = new MatchKeyNormalizerOptions();
        unknown.AbbreviationLanguages.Add("xx");
        Assert.Contains("No abbreviations are known for language 'xx'", Assert.Throws<ArgumentException>(() => new MatchKeyNormalizer(unknown)).Message);
    }
}
