using System.Globalization;

namespace Ingestion.Sync;

/// <summary>What a source's incremental cursor is.</summary>
public enum CursorKind
{
    /// <summary>A modification time: saved as ISO 8601 UTC (<c>2026-05-01T10:00:00.0000000+00:00</c>).</summary>
    Timestamp,
    /// <summary>An increasing integer id (a sequence, a change number).</summary>
    Id,
    /// <summary>A token the remote side hands out (a page token, a sync token): compared by nothing, saved as given.</summary>
    Opaque,
}

/// <summary>A typed cursor value: a timestamp, an id or an opaque token, with its invariant text form.</summary>
public readonly record struct CursorValue : IComparable<CursorValue>
{
    private CursorValue(CursorKind kind, DateTimeOffset timestamp, long id, string? token)
    {
        Kind = kind;
        Timestamp = timestamp;
        Id = id;
        Token = token;
    }

    /// <summary>The kind of value.</summary>
    public CursorKind Kind { get; }

    /// <summary>The timestamp (UTC) when <see cref="Kind"/> is <see cref="CursorKind.Timestamp"/>.</summary>
    public DateTimeOffset Timestamp { get; }

    /// <summary>The id when <see cref="Kind"/> is <see cref="CursorKind.Id"/>.</summary>
    public long Id { get; }

    /// <summary>The token when <see cref="Kind"/> is <see cref="CursorKind.Opaque"/>.</summary>
    public string? Token { get; }

    /// <summary>A timestamp cursor (normalized to UTC).</summary>
    /// <param name="value">The time.</param>
    /// <returns>The cursor value.</returns>
    public static CursorValue FromTimestamp(DateTimeOffset value) => new(CursorKind.Timestamp, value.ToUniversalTime(), 0, null);

    /// <summary>An id cursor.</summary>
    /// <param name="value">The id.</param>
    /// <returns>The cursor value.</returns>
    public static CursorValue FromId(long value) => new(CursorKind.Id, default, value, null);

    /// <summary>An opaque token cursor.</summary>
    /// <param name="value">The token (not empty).</param>
    /// <returns>The cursor value.</returns>
    public static CursorValue FromToken(string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(value);
        return new(CursorKind.Opaque, default, 0, value);
    }

    /// <summary>Parses a saved cursor or a parameter of the given kind.</summary>
    /// <param name="kind">The expected kind.</param>
    /// <param name="text">The text.</param>
    /// <param name="value">The value, when it parses.</param>
    /// <returns>Whether the text is a cursor of that kind.</returns>
    public static bool TryParse(CursorKind kind, string? text, out CursorValue value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        switch (kind)
        {
            case CursorKind.Timestamp:
                if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
                {
                    value = FromTimestamp(t);
                    return true;
                }

                return false;
            case CursorKind.Id:
                if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var id))
                {
                    value = FromId(id);
                    return true;
                }

                return false;
            default:
                value = FromToken(text);
                return true;
        }
    }

    /// <summary>Converts a field value read from a record (a <see cref="DateTimeOffset"/>, <see cref="DateTime"/>, integer or text) to a cursor of the given kind.</summary>
    /// <param name="kind">The expected kind.</param>
    /// <param name="raw">The raw value (not null).</param>
    /// <param name="value">The value, when it converts.</param>
    /// <returns>Whether it is a cursor of that kind.</returns>
    public static bool TryConvert(CursorKind kind, object raw, out CursorValue value)
    {
        ArgumentNullException.ThrowIfNull(raw);
        value = default;
        switch (kind, raw)
        {
            case (CursorKind.Timestamp, DateTimeOffset d):
                value = FromTimestamp(d);
                return true;
            case (CursorKind.Timestamp, DateTime d):
                value = FromTimestamp(d.Kind == DateTimeKind.Unspecified ? new DateTimeOffset(d, TimeSpan.Zero) : new DateTimeOffset(d));
                return true;
            case (CursorKind.Id, long or int or short or uint or ushort or byte or sbyte):
                value = FromId(Convert.ToInt64(raw, CultureInfo.InvariantCulture));
                return true;
            case (_, string s):
                return TryParse(kind, s, out value);
            case (CursorKind.Opaque, _):
                return TryParse(kind, Convert.ToString(raw, CultureInfo.InvariantCulture), out value);
            default:
                return false;
        }
    }

    /// <summary>Compares two values of the same kind (opaque tokens compare as equal: they have no order).</summary>
    /// <param name="other">The other value.</param>
    /// <returns>Negative, zero or positive.</returns>
    /// <exception cref="InvalidOperationException">The kinds differ.</exception>
    public int CompareTo(CursorValue other)
    {
        if (other.Kind != Kind)
        {
            throw new InvalidOperationException($"Cannot compare a {Kind} cursor with a {other.Kind} cursor.");
        }

        return Kind switch
        {
            CursorKind.Timestamp => Timestamp.CompareTo(other.Timestamp),
            CursorKind.Id => Id.CompareTo(other.Id),
            _ => 0,
        };
    }

    /// <summary>Whether this value is before another of the same kind.</summary>
    /// <param name="left">One value.</param>
    /// <param name="right">The other.</param>
    /// <returns>The comparison.</returns>
    public static bool operator <(CursorValue left, CursorValue right) => left.CompareTo(right) < 0;

    /// <summary>Whether this value is after another of the same kind.</summary>
    /// <param name="left">One value.</param>
    /// <param name="right">The other.</param>
    /// <returns>The comparison.</returns>
    public static bool operator >(CursorValue left, CursorValue right) => left.CompareTo(right) > 0;

    /// <summary>Whether this value is at or before another of the same kind.</summary>
    /// <param name="left">One value.</param>
    /// <param name="right">The other.</param>
    /// <returns>The comparison.</returns>
    public static bool operator <=(CursorValue left, CursorValue right) => left.CompareTo(right) <= 0;

    /// <summary>Whether this value is at or after another of the same kind.</summary>
    /// <param name="left">One value.</param>
    /// <param name="right">The other.</param>
    /// <returns>The comparison.</returns>
    public static bool operator >=(CursorValue left, CursorValue right) => left.CompareTo(right) >= 0;

    /// <summary>The invariant text form, as saved in the source state.</summary>
    /// <returns>The text.</returns>
    public override string ToString() => Kind switch
    {
        CursorKind.Timestamp => Timestamp.ToString("O", CultureInfo.InvariantCulture),
        CursorKind.Id => Id.ToString(CultureInfo.InvariantCulture),
        _ => Token ?? string.Empty,
    };
}
