using System.Globalization;

namespace Ingestion.Sources.Ics;

/// <summary>A DATE or DATE-TIME value as written: wall-clock time, and whether it is a date, UTC, or in a zone.</summary>
/// <param name="Local">The wall-clock value (kind unspecified; for UTC values, the UTC time).</param>
/// <param name="IsDate">A DATE (all-day) value.</param>
/// <param name="IsUtc">A UTC (<c>Z</c>) DATE-TIME.</param>
/// <param name="TzId">The <c>TZID</c> parameter, when given and not UTC.</param>
internal readonly record struct IcsDateTime(DateTime Local, bool IsDate, bool IsUtc, string? TzId)
{
    public bool IsFloating => !IsDate && !IsUtc && TzId is null;
}

/// <summary>A DURATION: nominal days (weeks count as 7 days) plus an exact time.</summary>
/// <param name="Days">Nominal days, in the event's local time.</param>
/// <param name="Time">Exact hours, minutes and seconds.</param>
internal readonly record struct IcsDuration(int Days, TimeSpan Time);

internal static class IcsValues
{
    public static bool TryParseDateTime(string value, bool valueIsDate, string? tzid, out IcsDateTime result)
    {
        result = default;
        var v = value.Trim();
        if (v.Length == 8 || valueIsDate)
        {
            if (v.Length >= 8 && DateTime.TryParseExact(v[..8], "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date) && (v.Length == 8 || !valueIsDate))
            {
                result = new IcsDateTime(date, true, false, null);
                return true;
            }

            return false;
        }

        var utc = v.EndsWith('Z') || v.EndsWith('z');
        if (utc)
        {
            v = v[..^1];
        }

        if (v.Length != 15 || !DateTime.TryParseExact(v, "yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var dt))
        {
            // Seconds 60 (leap second) is allowed by RFC 5545: read it as :59.
            if (v.Length == 15 && v.EndsWith("60", StringComparison.Ordinal)
                && DateTime.TryParseExact(v[..13] + "59", "yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture, DateTimeStyles.None, out dt))
            {
                result = new IcsDateTime(dt, false, utc, utc ? null : Normalize(tzid));
                return true;
            }

            return false;
        }

        result = new IcsDateTime(dt, false, utc, utc ? null : Normalize(tzid));
        return true;
    }

    public static bool TryParseDateTime(IcsProperty property, out IcsDateTime result) =>
        TryParseDateTime(property.Value, string.Equals(property.Param("VALUE"), "DATE", StringComparison.OrdinalIgnoreCase), property.Param("TZID"), out result);

    /// <summary>Parses a comma-separated list of DATE/DATE-TIME values (EXDATE, RDATE); PERIOD values keep their start.</summary>
    public static bool TryParseList(IcsProperty property, out List<IcsDateTime> values)
    {
        values = [];
        var isDate = string.Equals(property.Param("VALUE"), "DATE", StringComparison.OrdinalIgnoreCase);
        foreach (var part in property.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var start = part.Split('/')[0];
            if (!TryParseDateTime(start, isDate, property.Param("TZID"), out var v))
            {
                return false;
            }

            values.Add(v);
        }

        return true;
    }

    public static bool TryParseDuration(string value, out IcsDuration result)
    {
        result = default;
        var v = value.Trim().ToUpperInvariant();
        var sign = 1;
        if (v.StartsWith('+') || v.StartsWith('-'))
        {
            sign = v[0] == '-' ? -1 : 1;
            v = v[1..];
        }

        if (!v.StartsWith('P') || v.Length < 3)
        {
            return false;
        }

        var days = 0;
        var time = TimeSpan.Zero;
        var inTime = false;
        var number = 0;
        var digits = 0;
        for (var i = 1; i < v.Length; i++)
        {
            var c = v[i];
            if (char.IsAsciiDigit(c))
            {
                if (digits > 6)
                {
                    return false;
                }

                number = (number * 10) + (c - '0');
                digits++;
                continue;
            }

            if (c == 'T' && !inTime && digits == 0)
            {
                inTime = true;
                continue;
            }

            if (digits == 0)
            {
                return false;
            }

            switch (c)
            {
                case 'W' when !inTime:
                    days += number * 7;
                    break;
                case 'D' when !inTime:
                    days += number;
                    break;
                case 'H' when inTime:
                    time += TimeSpan.FromHours(number);
                    break;
                case 'M' when inTime:
                    time += TimeSpan.FromMinutes(number);
                    break;
                case 'S' when inTime:
                    time += TimeSpan.FromSeconds(number);
                    break;
                default:
                    return false;
            }

            number = 0;
            digits = 0;
        }

        if (digits != 0)
        {
            return false;
        }

        result = new IcsDuration(sign * days, sign * time);
        return true;
    }

    /// <summary>Parses a UTC offset: <c>+hhmm</c>, <c>-hhmm</c> or <c>+hhmmss</c>.</summary>
    public static bool TryParseOffset(string value, out TimeSpan offset)
    {
        offset = default;
        var v = value.Trim();
        if (v.Length is not (5 or 7) || v[0] is not ('+' or '-') || !v[1..].All(char.IsAsciiDigit))
        {
            return false;
        }

        var h = int.Parse(v[1..3], CultureInfo.InvariantCulture);
        var m = int.Parse(v[3..5], CultureInfo.InvariantCulture);
        var s = v.Length == 7 ? int.Parse(v[5..7], CultureInfo.InvariantCulture) : 0;
        if (h > 23 || m > 59 || s > 59)
        {
            return false;
        }

        offset = new TimeSpan(h, m, s);
        if (v[0] == '-')
        {
            offset = -offset;
        }

        return true;
    }

    private static string? Normalize(string? tzid)
    {
        if (tzid is null)
        {
            return null;
        }

        var t = tzid.Trim().Trim('"');
        return t.Length == 0 ? null : t;
    }
}
