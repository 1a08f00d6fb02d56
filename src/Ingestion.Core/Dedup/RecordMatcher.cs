using System.Globalization;

namespace Ingestion.Dedup;

/// <summary>
/// Decides whether two records of one record type are the same thing seen by two sources: a
/// declared list of fields (text, exact, date/time with a tolerance, geo distance) with weights, and
/// two thresholds (link, review). Scores are explainable field by field. Build one with
/// <see cref="For{TRecord}(string)"/>; pure and thread-safe.
/// </summary>
public class RecordMatcher
{
    private const double EarthRadiusMeters = 6_371_008.8;

    internal RecordMatcher(string recordType, IReadOnlyList<MatchField> fields, double linkThreshold, double reviewThreshold, MatchKeyNormalizer normalizer, MatchBlockingOptions blocking)
    {
        RecordType = recordType;
        Fields = fields;
        LinkThreshold = linkThreshold;
        ReviewThreshold = reviewThreshold;
        Normalizer = normalizer;
        BlockTextField = fields.FirstOrDefault(f => f.Kind == MatchFieldKind.Text && f.Required)
            ?? fields.FirstOrDefault(f => f.Kind == MatchFieldKind.Text);
        BlockTimeField = fields.FirstOrDefault(f => f.Kind == MatchFieldKind.DateTime && f.Required);
        Blocking = new MatchBlocking(this, blocking);
    }

    /// <summary>The record type (e.g. <c>events</c>): links are kept per record type.</summary>
    public string RecordType { get; }

    /// <summary>The fields, in order.</summary>
    public IReadOnlyList<MatchField> Fields { get; }

    /// <summary>The score from which a pair is linked automatically.</summary>
    public double LinkThreshold { get; }

    /// <summary>The score from which a pair is left for review (below <see cref="LinkThreshold"/>).</summary>
    public double ReviewThreshold { get; }

    /// <summary>The normalizer of text and exact fields.</summary>
    public MatchKeyNormalizer Normalizer { get; }

    /// <summary>The text field candidates are searched by (the first required text field, else the first text field), or <see langword="null"/>.</summary>
    public MatchField? BlockTextField { get; }

    /// <summary>The required date/time field that narrows the candidate search to its tolerance, or <see langword="null"/>.</summary>
    public MatchField? BlockTimeField { get; }

    /// <summary>The blocking keys: which records are compared with which (every compared field can narrow them).</summary>
    public MatchBlocking Blocking { get; }

    /// <summary>Starts declaring a matcher for a record class.</summary>
    /// <typeparam name="TRecord">The record class.</typeparam>
    /// <param name="recordType">The record type name (letters, digits, <c>_</c>, <c>-</c>, <c>.</c>).</param>
    /// <returns>The builder.</returns>
    public static RecordMatcherBuilder<TRecord> For<TRecord>(string recordType)
        where TRecord : class => new(recordType);

    /// <summary>Builds the profile of a record from raw field values in field order.</summary>
    /// <param name="source">The source name.</param>
    /// <param name="sourceId">The record's identifier in its source.</param>
    /// <param name="values">One value per field: text as <see cref="string"/>, times as <see cref="DateTimeOffset"/> (or <see cref="DateTime"/>), points as <see cref="GeoPoint"/>.</param>
    /// <returns>The profile.</returns>
    /// <exception cref="ArgumentException">A value has the wrong type for its field; the message names the field.</exception>
    public MatchProfile Profile(string source, string sourceId, IReadOnlyList<object?> values)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(sourceId);
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count != Fields.Count)
        {
            throw new ArgumentException($"Matcher '{RecordType}' has {Fields.Count} fields; {values.Count} values were given.", nameof(values));
        }

        var raw = new object?[Fields.Count];
        var keys = new string?[Fields.Count];
        var trigrams = new HashSet<string>?[Fields.Count];
        for (var i = 0; i < Fields.Count; i++)
        {
            var f = Fields[i];
            var v = values[i];
            switch (f.Kind)
            {
                case MatchFieldKind.Text or MatchFieldKind.Exact:
                    if (v is not null and not string)
                    {
                        throw WrongType(f, v, "text");
                    }

                    raw[i] = v;
                    var key = Normalizer.Normalize((string?)v);
                    keys[i] = key.Length == 0 ? null : key;
                    if (f.Kind == MatchFieldKind.Text && keys[i] is { } k)
                    {
                        trigrams[i] = TrigramSimilarity.Trigrams(k);
                    }

                    break;
                case MatchFieldKind.DateTime:
                    raw[i] = v switch
                    {
                        null => null,
                        DateTimeOffset d => d,
                        DateTime d => d.Kind == DateTimeKind.Unspecified ? new DateTimeOffset(d, TimeSpan.Zero) : new DateTimeOffset(d),
                        _ => throw WrongType(f, v, "a date and time"),
                    };
                    break;
                case MatchFieldKind.Geo:
                    raw[i] = v switch
                    {
                        null => null,
                        GeoPoint p when p.IsValid => p,
                        GeoPoint p => throw new ArgumentException($"Matcher '{RecordType}', field '{f.Name}' of {source}:{sourceId}: ({p.Longitude}, {p.Latitude}) is not a valid WGS 84 point.", nameof(values)),
                        _ => throw WrongType(f, v, "a GeoPoint"),
                    };
                    break;
                default:
                    raw[i] = v is null or string ? v : Convert.ToString(v, CultureInfo.InvariantCulture);
                    break;
            }
        }

        return new MatchProfile(source, sourceId, raw, keys, trigrams);

        ArgumentException WrongType(MatchField f, object v, string expected) =>
            new($"Matcher '{RecordType}', field '{f.Name}' of {source}:{sourceId}: expected {expected}, got {v.GetType().Name}.", nameof(values));
    }

    /// <summary>Why a record cannot be matched (a required field has no value), or <see langword="null"/> when it can.</summary>
    /// <param name="profile">The record's profile.</param>
    /// <returns>The reason, naming the field.</returns>
    public string? Unmatchable(MatchProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        foreach (var f in Fields)
        {
            if (f.Required && !HasValue(profile, f))
            {
                return profile.Values[f.Ordinal] is string s && s.Length > 0
                    ? $"required field '{f.Name}' normalizes to nothing ('{Truncate(s)}')"
                    : $"required field '{f.Name}' is empty";
            }
        }

        return null;
    }

    /// <summary>The normalized key candidates are searched by, or <see langword="null"/>.</summary>
    /// <param name="profile">The profile.</param>
    /// <returns>The key of <see cref="BlockTextField"/>.</returns>
    public string? BlockText(MatchProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        return BlockTextField is { } f ? profile.Keys[f.Ordinal] : null;
    }

    /// <summary>The time candidates must be within the tolerance of, or <see langword="null"/>.</summary>
    /// <param name="profile">The profile.</param>
    /// <returns>The value of <see cref="BlockTimeField"/>.</returns>
    public DateTimeOffset? BlockTime(MatchProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        return BlockTimeField is { } f ? (DateTimeOffset?)profile.Values[f.Ordinal] : null;
    }

    /// <summary>Scores a pair of records and explains the score.</summary>
    /// <param name="a">One record.</param>
    /// <param name="b">The other.</param>
    /// <returns>The score with each field's part.</returns>
    public MatchScore Score(MatchProfile a, MatchProfile b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var parts = new List<FieldScore>(Fields.Count);
        double sum = 0, weights = 0;
        var vetoed = false;
        foreach (var f in Fields)
        {
            if (f.Kind == MatchFieldKind.Carried)
            {
                continue;
            }

            if (!HasValue(a, f) || !HasValue(b, f))
            {
                var missing = HasValue(a, f) || HasValue(b, f) ? "one record has no value" : "no value";
                if (f.Required)
                {
                    vetoed = true;
                    parts.Add(new FieldScore(f.Name, FieldMatchStatus.Vetoed, 0, f.Weight, missing + "; the field is required"));
                }
                else
                {
                    parts.Add(new FieldScore(f.Name, FieldMatchStatus.Missing, 0, f.Weight, missing));
                }

                continue;
            }

            var (similarity, detail) = Compare(f, a, b);
            var status = similarity < f.MinSimilarity ? FieldMatchStatus.Vetoed
                : similarity >= 1 ? FieldMatchStatus.Matched
                : similarity <= 0 ? FieldMatchStatus.Differs
                : FieldMatchStatus.Partial;
            if (status == FieldMatchStatus.Vetoed)
            {
                vetoed = true;
                detail = string.Create(CultureInfo.InvariantCulture, $"{detail}; below the minimum {f.MinSimilarity:0.00}");
            }

            parts.Add(new FieldScore(f.Name, status, similarity, f.Weight, detail));
            sum += similarity * f.Weight;
            weights += f.Weight;
        }

        var total = vetoed || weights <= 0 ? 0 : sum / weights;
        var decision = vetoed ? MatchDecision.None
            : total >= LinkThreshold ? MatchDecision.Link
            : total >= ReviewThreshold ? MatchDecision.Review
            : MatchDecision.None;
        return new MatchScore(total, decision, parts);
    }

    /// <summary>Encodes a profile's raw values as invariant text (for storage; times in UTC); <see cref="Decode"/> reverses it.</summary>
    /// <param name="profile">The profile.</param>
    /// <returns>One string per field, <see langword="null"/> for no value.</returns>
    public string?[] Encode(MatchProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        var result = new string?[Fields.Count];
        for (var i = 0; i < Fields.Count; i++)
        {
            result[i] = profile.Values[i] switch
            {
                null => null,
                string s => s,
                DateTimeOffset d => d.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
                GeoPoint p => string.Create(CultureInfo.InvariantCulture, $"{p.Longitude:R} {p.Latitude:R}"),
                var o => Convert.ToString(o, CultureInfo.InvariantCulture),
            };
        }

        return result;
    }

    /// <summary>Rebuilds a profile from <see cref="Encode"/>d values.</summary>
    /// <param name="source">The source name.</param>
    /// <param name="sourceId">The record's identifier.</param>
    /// <param name="encoded">The encoded values.</param>
    /// <returns>The profile.</returns>
    /// <exception cref="FormatException">A value cannot be decoded; the message names the field.</exception>
    public MatchProfile Decode(string source, string sourceId, IReadOnlyList<string?> encoded)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        var values = new object?[Fields.Count];
        for (var i = 0; i < Fields.Count && i < encoded.Count; i++)
        {
            var s = encoded[i];
            if (s is null)
            {
                continue;
            }

            var f = Fields[i];
            values[i] = f.Kind switch
            {
                MatchFieldKind.DateTime => DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var d) ? d
                    : throw new FormatException($"Matcher '{RecordType}', field '{f.Name}' of {source}:{sourceId}: stored value '{Truncate(s)}' is not a date and time."),
                MatchFieldKind.Geo => ParsePoint(s) ?? throw new FormatException($"Matcher '{RecordType}', field '{f.Name}' of {source}:{sourceId}: stored value '{Truncate(s)}' is not a point."),
                _ => s,
            };
        }

        return Profile(source, sourceId, values);
    }

    /// <summary>The great-circle distance between two points, in metres.</summary>
    /// <param name="a">One point.</param>
    /// <param name="b">The other.</param>
    /// <returns>The haversine distance.</returns>
    public static double DistanceMeters(GeoPoint a, GeoPoint b)
    {
        static double Rad(double d) => d * Math.PI / 180;
        var dLat = Rad(b.Latitude - a.Latitude);
        var dLon = Rad(b.Longitude - a.Longitude);
        var h = (Math.Sin(dLat / 2) * Math.Sin(dLat / 2)) + (Math.Cos(Rad(a.Latitude)) * Math.Cos(Rad(b.Latitude)) * Math.Sin(dLon / 2) * Math.Sin(dLon / 2));
        return 2 * EarthRadiusMeters * Math.Asin(Math.Min(1, Math.Sqrt(h)));
    }

    private static bool HasValue(MatchProfile p, MatchField f) =>
        f.Kind is MatchFieldKind.Text or MatchFieldKind.Exact ? p.Keys[f.Ordinal] is not null : p.Values[f.Ordinal] is not null;

    private static (double Similarity, string Detail) Compare(MatchField f, MatchProfile a, MatchProfile b)
    {
        var i = f.Ordinal;
        switch (f.Kind)
        {
            case MatchFieldKind.Text:
                {
                    var ka = a.Keys[i]!;
                    var kb = b.Keys[i]!;
                    if (string.Equals(ka, kb, StringComparison.Ordinal))
                    {
                        return (1, "same normalized text");
                    }

                    var s = TrigramSimilarity.Compute(a.TrigramSets[i]!, b.TrigramSets[i]!);
                    return (s, $"'{Truncate(ka)}' vs '{Truncate(kb)}'");
                }

            case MatchFieldKind.Exact:
                return string.Equals(a.Keys[i], b.Keys[i], StringComparison.Ordinal)
                    ? (1, "equal")
                    : (0, $"'{Truncate(a.Keys[i]!)}' vs '{Truncate(b.Keys[i]!)}'");
            case MatchFieldKind.DateTime:
                {
                    var delta = ((DateTimeOffset)a.Values[i]!- (DateTimeOffset)b.Values[i]!).Duration();
                    if (delta == TimeSpan.Zero)
                    {
                        return (1, "same time");
                    }

                    var detail = $"{Describe(delta)} apart, tolerance {Describe(f.Tolerance)}";
                    return delta <= f.Tolerance ? (1 - (0.5 * delta.TotalSeconds / f.Tolerance.TotalSeconds), detail) : (0, detail);
                }

            case MatchFieldKind.Geo:
                {
                    var d = DistanceMeters((GeoPoint)a.Values[i]!, (GeoPoint)b.Values[i]!);
                    var detail = string.Create(CultureInfo.InvariantCulture, $"{d:0} m apart, at most {f.MaxDistanceMeters:0} m");
                    return d <= f.MaxDistanceMeters ? (1 - (0.5 * d / f.MaxDistanceMeters), detail) : (0, detail);
                }

            default:
                return (0, string.Empty);
        }
    }

    private static GeoPoint? ParsePoint(string s)
    {
        var parts = s.Split(' ');
        return parts.Length == 2
            && double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var lon)
            && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var lat)
            && new GeoPoint(lon, lat) is { IsValid: true } p ? p : null;
    }

    private static string Describe(TimeSpan t) =>
        t.TotalDays >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalDays:0.#} d")
        : t.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalHours:0.#} h")
        : string.Create(CultureInfo.InvariantCulture, $"{t.TotalMinutes:0.#} min");

    private static string Truncate(string s) => s.Length <= 60 ? s : s[..57] + "...";
}

/// <summary>A <see cref="RecordMatcher"/> that reads its field values from records of one class.</summary>
/// <typeparam name="TRecord">The record class.</typeparam>
public sealed class RecordMatcher<TRecord> : RecordMatcher
    where TRecord : class
{
    internal RecordMatcher(string recordType, IReadOnlyList<MatchField> fields, double linkThreshold, double reviewThreshold, MatchKeyNormalizer normalizer, MatchBlockingOptions blocking)
        : base(recordType, fields, linkThreshold, reviewThreshold, normalizer, blocking)
    {
    }

    /// <summary>Builds the profile of a record.</summary>
    /// <param name="source">The source name.</param>
    /// <param name="sourceId">The record's identifier in its source.</param>
    /// <param name="record">The record.</param>
    /// <returns>The profile.</returns>
    public MatchProfile Profile(string source, string sourceId, TRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var values = new object?[Fields.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = Fields[i].Getter(record);
        }

        return Profile(source, sourceId, values);
    }
}
