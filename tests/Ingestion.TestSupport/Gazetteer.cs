using System.Globalization;
using System.Text;

namespace Ingestion.TestSupport;

/// <summary>A named place of a generated gazetteer.</summary>
/// <param name="Id">The identifier in its source.</param>
/// <param name="Name">The name as the source writes it.</param>
/// <param name="Latitude">WGS 84 latitude.</param>
/// <param name="Longitude">WGS 84 longitude.</param>
/// <param name="TwinOf">For a respelled place of the second source, the id of the place of the first source it is; otherwise null.</param>
/// <param name="When">A date of the place (an event's day), for matchers with a date field.</param>
public sealed record GazetteerPlace(string Id, string Name, double Latitude, double Longitude, string? TwinOf, DateTimeOffset When);

/// <summary>
/// Two generated gazetteers of the shape of a real one (issue 19): source A with French, Spanish and English names
/// (accents, hyphens, Saint/Sainte/Mont prefixes, and many places sharing a common name such as San Miguel), and
/// source B, most of whose places are A's places respelled the way another provider writes them (accents dropped,
/// case changed, Saint written St or St-, Sainte Ste, Mont Mt, hyphens as spaces, the point moved up to about 1 km),
/// the rest new places. Deterministic for a seed.
/// </summary>
public static class Gazetteer
{
    private static readonly string[] Syllables = ["ber", "vil", "lé", "cham", "plain", "gé", "ro", "què", "tou", "lou", "mar", "bel", "ca", "ste", "nan", "dor", "ré", "va", "lin", "mon", "sai", "fo", "rê", "po", "cy", "gno", "bra", "ta", "ço", "ni", "hu", "gar", "dé", "pi", "es", "ul", "ko", "mé", "ri", "zan"];
    private static readonly string[] Common = ["San Miguel", "Santa Rosa", "San José", "Springfield", "Saint-Joseph", "Sainte-Marie", "Lac-Vert", "Rivière-du-Loup", "Mont-Royal", "Georgetown", "Fairview", "Saint-Louis", "La Esperanza", "Santa Cruz", "Riverside"];

    /// <summary>Generates both sources.</summary>
    /// <param name="aCount">Places of source A.</param>
    /// <param name="bCount">Places of source B.</param>
    /// <param name="twinShare">The share of B's places that are respelled places of A.</param>
    /// <param name="seed">The random seed.</param>
    /// <returns>A's places and B's places.</returns>
    public static (List<GazetteerPlace> A, List<GazetteerPlace> B) Generate(int aCount, int bCount, double twinShare, int seed)
    {
        var random = new Random(seed);
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var a = new List<GazetteerPlace>(aCount);
        for (var i = 0; i < aCount; i++)
        {
            var name = random.NextDouble() < 0.15 ? Common[random.Next(Common.Length)] : NewName(random);
            a.Add(new GazetteerPlace(
                "a" + i.ToString(CultureInfo.InvariantCulture),
                name,
                -50 + (random.NextDouble() * 110),
                -170 + (random.NextDouble() * 340),
                null,
                start.AddMinutes(random.Next(0, 365 * 24 * 60))));
        }

        var b = new List<GazetteerPlace>(bCount);
        var twins = (int)(bCount * twinShare);
        for (var i = 0; i < bCount; i++)
        {
            var id = "b" + i.ToString(CultureInfo.InvariantCulture);
            if (i < twins)
            {
                var of = a[random.Next(a.Count)];
                var (lat, lon) = Move(of.Latitude, of.Longitude, random.NextDouble() * 1_000, random.NextDouble() * 2 * Math.PI);
                b.Add(new GazetteerPlace(id, Respell(of.Name, random), lat, lon, of.Id, of.When.AddMinutes(random.Next(-30, 31))));
            }
            else
            {
                b.Add(new GazetteerPlace(id, "Nouveau " + NewName(random), -50 + (random.NextDouble() * 110), -170 + (random.NextDouble() * 340), null, start.AddMinutes(random.Next(0, 365 * 24 * 60))));
            }
        }

        return (a, b);
    }

    /// <summary>Recall and precision of the links found: <paramref name="linked"/> maps a B id to the A id it was linked to.</summary>
    /// <param name="b">B's places.</param>
    /// <param name="linked">The links found.</param>
    /// <returns>Recall (twins linked to their place over twins) and precision (right links over links).</returns>
    public static (double Recall, double Precision, int Right, int Twins, int Links) Score(IReadOnlyList<GazetteerPlace> b, IReadOnlyDictionary<string, string> linked)
    {
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(linked);
        var twins = b.Count(p => p.TwinOf is not null);
        var right = b.Count(p => p.TwinOf is { } of && linked.TryGetValue(p.Id, out var to) && to == of);
        return (twins == 0 ? 1 : (double)right / twins, linked.Count == 0 ? 1 : (double)right / linked.Count, right, twins, linked.Count);
    }

    /// <summary>The common names many places share (San Miguel, Saint-Joseph...).</summary>
    public static IReadOnlyList<string> CommonNames => Common;

    /// <summary>A new place name (syllables with accents, Saint-/Sainte-/Mont- prefixes, hyphenated compounds).</summary>
    /// <param name="random">The random source.</param>
    /// <returns>The name.</returns>
    public static string NewName(Random random)
    {
        var word = Word(random);
        return random.Next(10) switch
        {
            0 or 1 => "Saint-" + word,
            2 => "Sainte-" + word,
            3 => "Mont-" + word,
            4 => word + "-sur-" + Word(random),
            5 or 6 => word + " " + Word(random),
            _ => word,
        };
    }

    private static string Word(Random random)
    {
        var sb = new StringBuilder();
        var n = random.Next(2, 4);
        for (var i = 0; i < n; i++)
        {
            sb.Append(Syllables[random.Next(Syllables.Length)]);
        }

        return char.ToUpperInvariant(sb[0]) + sb.ToString(1, sb.Length - 1);
    }

    /// <summary>Respells a name the way another provider writes it: Saint as St or St-, Sainte as Ste, Mont as Mt, hyphens as spaces, accents dropped, case changed (each at random).</summary>
    /// <param name="name">The name.</param>
    /// <param name="random">The random source.</param>
    /// <returns>The respelled name.</returns>
    public static string Respell(string name, Random random)
    {
        var s = name;
        if (random.Next(2) == 0)
        {
            s = s.Replace("Sainte-", random.Next(2) == 0 ? "Ste-" : "Ste ", StringComparison.Ordinal)
                 .Replace("Saint-", random.Next(2) == 0 ? "St-" : "St ", StringComparison.Ordinal)
                 .Replace("Mont-", "Mt ", StringComparison.Ordinal);
        }

        if (random.Next(2) == 0)
        {
            s = s.Replace('-', ' ');
        }

        if (random.Next(2) == 0)
        {
            s = RemoveAccents(s);
        }

        return random.Next(3) switch
        {
            0 => s.ToUpperInvariant(),
            1 => s.ToLowerInvariant(),
            _ => s,
        };
    }

    private static string RemoveAccents(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var c in s.Normalize(NormalizationForm.FormD))
        {
            if (CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark)
            {
                sb.Append(c);
            }
        }

        return sb.ToString().Normalize(NormalizationForm.FormC);
    }

    /// <summary>A point moved by a distance along a bearing (a flat approximation, good to a few kilometres).</summary>
    /// <param name="lat">Latitude.</param>
    /// <param name="lon">Longitude.</param>
    /// <param name="meters">The distance.</param>
    /// <param name="bearing">The bearing in radians.</param>
    /// <returns>The moved point.</returns>
    public static (double Lat, double Lon) Move(double lat, double lon, double meters, double bearing)
    {
        const double MetersPerDegree = 6_371_008.8 * Math.PI / 180;
        var dLat = meters * Math.Cos(bearing) / MetersPerDegree;
        var dLon = meters * Math.Sin(bearing) / (MetersPerDegree * Math.Cos(lat * Math.PI / 180));
        return (lat + dLat, lon + dLon);
    }
}
