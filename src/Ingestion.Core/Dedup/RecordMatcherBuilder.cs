using System.Text.RegularExpressions;

namespace Ingestion.Dedup;

/// <summary>
/// Declares a <see cref="RecordMatcher{TRecord}"/>: its fields, their weights and the thresholds.
/// Every problem is reported by <see cref="Build"/>, naming the field.
/// </summary>
/// <typeparam name="TRecord">The record class.</typeparam>
public sealed partial class RecordMatcherBuilder<TRecord>
    where TRecord : class
{
    private readonly string _recordType;
    private readonly List<MatchField> _fields = [];
    private readonly List<string> _problems = [];
    private double _link = 0.8;
    private double _review = 0.6;
    private MatchKeyNormalizer _normalizer = new();
    private readonly MatchBlockingOptions _blocking = new();

    internal RecordMatcherBuilder(string recordType)
    {
        ArgumentNullException.ThrowIfNull(recordType);
        _recordType = recordType;
    }

    /// <summary>Adds a free-text field compared by trigram similarity of its normalized key.</summary>
    /// <param name="name">The field name.</param>
    /// <param name="selector">Reads the value.</param>
    /// <param name="weight">Its weight (positive).</param>
    /// <param name="required">Whether a record without it cannot be matched (the first required text field is the one candidates are searched by).</param>
    /// <param name="minSimilarity">A similarity below this vetoes the pair (0: no veto).</param>
    /// <returns>This builder.</returns>
    public RecordMatcherBuilder<TRecord> Text(string name, Func<TRecord, string?> selector, double weight, bool required = false, double minSimilarity = 0)
    {
        ArgumentNullException.ThrowIfNull(selector);
        CheckSimilarity(name, minSimilarity);
        return Add(new MatchField(name, MatchFieldKind.Text, weight) { Required = required, MinSimilarity = minSimilarity, Getter = r => selector((TRecord)r) });
    }

    /// <summary>Adds a code compared for equality after normalization (a postal code, a venue id).</summary>
    /// <param name="name">The field name.</param>
    /// <param name="selector">Reads the value.</param>
    /// <param name="weight">Its weight (positive).</param>
    /// <param name="required">Whether a record without it cannot be matched.</param>
    /// <param name="mustMatch">Whether different values veto the pair.</param>
    /// <returns>This builder.</returns>
    public RecordMatcherBuilder<TRecord> Exact(string name, Func<TRecord, string?> selector, double weight, bool required = false, bool mustMatch = false)
    {
        ArgumentNullException.ThrowIfNull(selector);
        return Add(new MatchField(name, MatchFieldKind.Exact, weight) { Required = required, MinSimilarity = mustMatch ? 1 : 0, Getter = r => selector((TRecord)r) });
    }

    /// <summary>Adds a date and time compared within a tolerance; a difference beyond it vetoes the pair.</summary>
    /// <param name="name">The field name.</param>
    /// <param name="selector">Reads the value.</param>
    /// <param name="tolerance">The largest difference still considered the same time (zero: exact).</param>
    /// <param name="weight">Its weight (positive).</param>
    /// <param name="required">Whether a record without it cannot be matched (the first required date/time narrows the candidate search).</param>
    /// <returns>This builder.</returns>
    public RecordMatcherBuilder<TRecord> DateTime(string name, Func<TRecord, DateTimeOffset?> selector, TimeSpan tolerance, double weight, bool required = false)
    {
        ArgumentNullException.ThrowIfNull(selector);
        if (tolerance < TimeSpan.Zero)
        {
            _problems.Add($"field '{name}': the tolerance must not be negative (was {tolerance}).");
        }

        return Add(new MatchField(name, MatchFieldKind.DateTime, weight) { Required = required, Tolerance = tolerance, MinSimilarity = double.Epsilon, Getter = r => selector((TRecord)r) });
    }

    /// <summary>Adds a point compared by distance; a distance beyond the maximum scores 0 (and vetoes when <paramref name="mustBeNear"/>).</summary>
    /// <param name="name">The field name.</param>
    /// <param name="selector">Reads the value.</param>
    /// <param name="maxDistanceMeters">The largest distance still considered the same place.</param>
    /// <param name="weight">Its weight (positive).</param>
    /// <param name="mustBeNear">Whether a distance beyond the maximum vetoes the pair.</param>
    /// <returns>This builder.</returns>
    public RecordMatcherBuilder<TRecord> Geo(string name, Func<TRecord, GeoPoint?> selector, double maxDistanceMeters, double weight, bool mustBeNear = false)
    {
        ArgumentNullException.ThrowIfNull(selector);
        if (!(maxDistanceMeters > 0) || !double.IsFinite(maxDistanceMeters))
        {
            _problems.Add($"field '{name}': the maximum distance must be a positive number of metres (was {maxDistanceMeters}).");
        }

        return Add(new MatchField(name, MatchFieldKind.Geo, weight) { MaxDistanceMeters = maxDistanceMeters, MinSimilarity = mustBeNear ? double.Epsilon : 0, Getter = r => selector((TRecord)r) });
    }

    /// <summary>Adds a field that is not scored but carried into merges and the canonical record.</summary>
    /// <param name="name">The field name.</param>
    /// <param name="selector">Reads the value (formatted with the invariant culture).</param>
    /// <returns>This builder.</returns>
    public RecordMatcherBuilder<TRecord> Carry(string name, Func<TRecord, object?> selector)
    {
        ArgumentNullException.ThrowIfNull(selector);
        return Add(new MatchField(name, MatchFieldKind.Carried, 0) { Getter = r => selector((TRecord)r) }, weightless: true);
    }

    /// <summary>Sets the thresholds: from <paramref name="link"/> a pair is linked, from <paramref name="review"/> it is left for review.</summary>
    /// <param name="link">The link threshold, 0 to 1 (default 0.8).</param>
    /// <param name="review">The review threshold, 0 to <paramref name="link"/> (default 0.6).</param>
    /// <returns>This builder.</returns>
    public RecordMatcherBuilder<TRecord> Thresholds(double link, double review)
    {
        _link = link;
        _review = review;
        return this;
    }

    /// <summary>Uses another normalizer (other stop words) for text and exact fields.</summary>
    /// <param name="normalizer">The normalizer.</param>
    /// <returns>This builder.</returns>
    public RecordMatcherBuilder<TRecord> Normalizer(MatchKeyNormalizer normalizer)
    {
        ArgumentNullException.ThrowIfNull(normalizer);
        _normalizer = normalizer;
        return this;
    }

    /// <summary>Tunes the blocking keys (see <see cref="MatchBlocking"/>).</summary>
    /// <param name="configure">Changes the settings.</param>
    /// <returns>This builder.</returns>
    public RecordMatcherBuilder<TRecord> Blocking(Action<MatchBlockingOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        configure(_blocking);
        return this;
    }

    /// <summary>Checks the declaration and builds the matcher.</summary>
    /// <returns>The matcher.</returns>
    /// <exception cref="ArgumentException">The declaration has problems; the message lists them all.</exception>
    public RecordMatcher<TRecord> Build()
    {
        var problems = new List<string>(_problems);
        if (!RecordTypePattern().IsMatch(_recordType))
        {
            problems.Add($"the record type '{_recordType}' is invalid: use 1-63 letters, digits, '_', '-' or '.'.");
        }

        if (!_fields.Any(f => f.Kind != MatchFieldKind.Carried))
        {
            problems.Add("no field is compared: declare at least one Text, Exact, DateTime or Geo field.");
        }

        if (!_fields.Any(f => f.Kind == MatchFieldKind.Text))
        {
            problems.Add("no Text field: candidates are searched by a text field (a title, a name).");
        }

        if (!(_link is > 0 and <= 1))
        {
            problems.Add($"the link threshold must be in (0, 1] (was {_link}).");
        }

        if (!(_review > 0 && _review <= _link))
        {
            problems.Add($"the review threshold must be in (0, link threshold] (was {_review}).");
        }

        if (_blocking.TokenPrefixLength < 1 || _blocking.MaxTokens < 1)
        {
            problems.Add($"blocking: the word prefix length and the word count must be at least 1 (were {_blocking.TokenPrefixLength} and {_blocking.MaxTokens}).");
        }

        if (_blocking.GeoCellScale < 1 || _blocking.TimeBucketScale < 1)
        {
            problems.Add($"blocking: the cell and bucket scales must be at least 1 (were {_blocking.GeoCellScale} and {_blocking.TimeBucketScale}).");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException($"Matcher '{_recordType}' is invalid: {string.Join(" ", problems)}");
        }

        for (var i = 0; i < _fields.Count; i++)
        {
            _fields[i].Ordinal = i;
        }

        var blocking = new MatchBlockingOptions { TokenPrefixLength = _blocking.TokenPrefixLength, MaxTokens = _blocking.MaxTokens, GeoCellScale = _blocking.GeoCellScale, TimeBucketScale = _blocking.TimeBucketScale };
        return new RecordMatcher<TRecord>(_recordType, _fields.ToArray(), _link, _review, _normalizer, blocking);
    }

    private RecordMatcherBuilder<TRecord> Add(MatchField field, bool weightless = false)
    {
        if (string.IsNullOrWhiteSpace(field.Name))
        {
            _problems.Add("a field has no name.");
        }
        else if (_fields.Any(f => f.Name == field.Name))
        {
            _problems.Add($"field '{field.Name}' is declared twice.");
        }

        if (!weightless && !(field.Weight > 0 && double.IsFinite(field.Weight)))
        {
            _problems.Add($"field '{field.Name}': the weight must be positive (was {field.Weight}).");
        }

        _fields.Add(field);
        return this;
    }

    private void CheckSimilarity(string name, double value)
    {
        if (!(value is >= 0 and <= 1))
        {
            _problems.Add($"field '{name}': the minimum similarity must be in [0, 1] (was {value}).");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,63}$")]
    private static partial Regex RecordTypePattern();
}
