using System.Globalization;

namespace Ingestion.Sources.Feeds;

/// <summary>
/// Lenient parsing of the dates found in feeds: RFC 822/1123 (<c>Sat, 07 Sep 2002 09:42:31 GMT</c>,
/// with or without the day name or seconds, two- or four-digit years, named US zones, <c>+hhmm</c>
/// or <c>+hh:mm</c> offsets) and RFC 3339 / ISO 8601 (<c>2002-10-02T10:00:00-05:00</c>, fractions,
/// <c>Z</c>, a space for the <c>T</c>, a bare date). A value without a zone is taken as UTC.
/// </summary>
public static class FeedDates
{
    private static readonly string[] Months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    private static readonly string[] Days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

    /// <summary>Parses a feed date.</summary>
    /// <param name="value">The text of the date element.</param>
    /// <param name="result">The instant, when the text could be read.</param>
    /// <returns>Whether the text is a date in one of the accepted forms.</returns>
    public static bool TryParse(string? value, out DateTimeOffset result)
    {
        result = default;
        if (string.IsNullOrWhiteSpace(value))
        {
            return false;
        }

        var text = value.Trim();
        if (text.Length >= 10 && char.IsAsciiDigit(text[0]) && text[4] == '-')
        {
            return TryParseIso(text, out result);
        }

        return TryParseRfc822(text, out result);
    }

    private static bool TryParseIso(string text, out DateTimeOffset result)
    {
        var normalized = text.Replace(' ', 'T');
        if (normalized.EndsWith('z'))
        {
            normalized = normalized[..^1] + "Z";
        }

        normalized = normalized.Replace('t', 'T');
        return DateTimeOffset.TryParse(normalized, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out result);
    }

    private static bool TryParseRfc822(string text, out DateTimeOffset result)
    {
        result = default;

        // Drop comments such as "(EST)" and split on blanks and commas.
        var open = text.IndexOf('(', StringComparison.Ordinal);
        if (open > 0)
        {
            text = text[..open];
        }

        var tokens = text.Split([' ', ',', '\t'], StringSplitOptions.RemoveEmptyEntries);
        var i = 0;
        if (i < tokens.Length && IsDayName(tokens[i]))
        {
            i++;
        }

        if (tokens.Length - i < 3)
        {
            return false;
        }

        int day, month, year;
        if (int.TryParse(tokens[i], NumberStyles.None, CultureInfo.InvariantCulture, out day) && TryMonth(tokens[i + 1], out month))
        {
            i += 2;
        }
        else if (TryMonth(tokens[i], out month) && int.TryParse(tokens[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out day))
        {
            i += 2;
        }
        else
        {
            return false;
        }

        if (!int.TryParse(tokens[i], NumberStyles.None, CultureInfo.InvariantCulture, out year))
        {
            return false;
        }

        if (tokens[i].Length <= 2)
        {
            year += year < 50 ? 2000 : 1900;
        }

        i++;
        var time = TimeSpan.Zero;
        if (i < tokens.Length && tokens[i].Contains(':', StringComparison.Ordinal))
        {
            var parts = tokens[i].Split(':');
            if (parts.Length is < 2 or > 3
                || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var h)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var m))
            {
                return false;
            }

            var s = 0;
            if (parts.Length == 3 && !int.TryParse(parts[2].Split('.')[0], NumberStyles.None, CultureInfo.InvariantCulture, out s))
            {
                return false;
            }

            if (h > 23 || m > 59 || s > 60)
            {
                return false;
            }

            time = new TimeSpan(h, m, Math.Min(s, 59));
            i++;
        }

        var offset = TimeSpan.Zero;
        if (i < tokens.Length)
        {
            if (!TryZone(tokens[i], out offset))
            {
                return false;
            }

            i++;
        }

        if (i < tokens.Length)
        {
            // Anything after the zone (other than a comment, dropped above) is not a date.
            return false;
        }

        if (month < 1 || year < 1 || year > 9999 || day < 1 || day > DateTime.DaysInMonth(year, month))
        {
            return false;
        }

        result = new DateTimeOffset(new DateTime(year, month, day, 0, 0, 0, DateTimeKind.Unspecified) + time, offset).ToUniversalTime();
        return true;
    }

    private static bool IsDayName(string token)
    {
        if (token.Length < 3 || !char.IsAsciiLetter(token[0]))
        {
            return false;
        }

        var prefix = token[..3].ToLowerInvariant();
        return Array.IndexOf(Days, prefix) >= 0;
    }

    private static bool TryMonth(string token, out int month)
    {
        month = 0;
        if (token.Length < 3)
        {
            return false;
        }

        var index = Array.IndexOf(Months, token[..3].ToLowerInvariant());
        month = index + 1;
        return index >= 0;
    }

    private static bool TryZone(string token, out TimeSpan offset)
    {
        offset = TimeSpan.Zero;
        if (token[0] is '+' or '-')
        {
            var digits = token[1..].Replace(":", string.Empty, StringComparison.Ordinal);
            if (digits.Length is not (2 or 4) || !int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                return false;
            }

            var hours = digits.Length == 2 ? n : n / 100;
            var minutes = digits.Length == 2 ? 0 : n % 100;
            if (hours > 14 || minutes > 59)
            {
                return false;
            }

            offset = new TimeSpan(hours, minutes, 0);
            if (token[0] == '-')
            {
                offset = -offset;
            }

            return true;
        }

        switch (token.ToUpperInvariant())
        {
            case "GMT" or "UT" or "UTC" or "Z":
                return true;
            case "EDT":
                offset = TimeSpan.FromHours(-4);
                return true;
            case "EST" or "CDT":
                offset = TimeSpan.FromHours(-5);
                return true;
            case "CST" or "MDT":
                offset = TimeSpan.FromHours(-6);
                return true;
            case "MST" or "PDT":
                offset = TimeSpan.FromHours(-7);
                return true;
            case "PST":
                offset = TimeSpan.FromHours(-8);
                return true;
            default:
                return false;
        }
    }
}
