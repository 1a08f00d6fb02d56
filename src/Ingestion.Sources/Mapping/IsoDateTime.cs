namespace Ingestion.Sources.Mapping;

/// <summary>
/// Reads the ISO 8601 shapes open data files write most (<c>2024-05-01</c>, <c>2024-05-01T08:30:00Z</c>,
/// <c>2024-05-01 08:30:00.125+02:00</c>) without the culture-aware general parser, which costs about a tenth of the
/// reading thread on a CSV file of timestamps. Anything else (other layouts, names of months, whitespace, a 24th hour,
/// a leap second, more than seven digits of fraction, a year at either end of the range) is left to the general
/// parser, so a value is accepted or refused exactly as before; the tests compare both on the shapes read here.
/// </summary>
internal static class IsoDateTime
{
    /// <summary>
    /// Parses <c>yyyy-MM-dd</c>, optionally followed by <c>T</c> or a space, <c>HH:mm</c>, optional <c>:ss</c> with
    /// an optional <c>.</c> and one to seven digits of fraction, and an optional <c>Z</c> or <c>±HH</c>,
    /// <c>±HH:mm</c> or <c>±HHmm</c> offset.
    /// </summary>
    /// <param name="s">The text.</param>
    /// <param name="dateTime">The date and time as written (kind unspecified).</param>
    /// <param name="offset">The offset written, or <see langword="null"/> when none is.</param>
    /// <param name="hasTime">Whether a time was written after the date.</param>
    /// <returns>Whether the text has one of these shapes and names a real date and time.</returns>
    public static bool TryParse(ReadOnlySpan<char> s, out DateTime dateTime, out TimeSpan? offset, out bool hasTime)
    {
        dateTime = default;
        offset = null;
        hasTime = false;
        if (s.Length < 10 || s[4] != '-' || s[7] != '-'
            || !Digits(s, 0, 4, out var year) || !Digits(s, 5, 2, out var month) || !Digits(s, 8, 2, out var day)
            || year is < 2 or > 9998 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month))
        {
            return false;
        }

        long ticks = 0;
        var at = 10;
        if (s.Length > at)
        {
            if (s[at] is not ('T' or ' ') || s.Length < at + 6 || s[at + 3] != ':'
                || !Digits(s, at + 1, 2, out var hour) || !Digits(s, at + 4, 2, out var minute) || hour > 23 || minute > 59)
            {
                return false;
            }

            hasTime = true;
            ticks = (hour * TimeSpan.TicksPerHour) + (minute * TimeSpan.TicksPerMinute);
            at += 6;
            if (s.Length > at && s[at] == ':')
            {
                if (!Digits(s, at + 1, 2, out var second) || second > 59)
                {
                    return false;
                }

                ticks += second * TimeSpan.TicksPerSecond;
                at += 3;
                if (s.Length > at && s[at] == '.')
                {
                    var start = ++at;
                    long fraction = 0;
                    while (at < s.Length && char.IsAsciiDigit(s[at]) && at - start < 7)
                    {
                        fraction = (fraction * 10) + (s[at] - '0');
                        at++;
                    }

                    var count = at - start;
                    if (count == 0 || (at < s.Length && char.IsAsciiDigit(s[at])))
                    {
                        return false;
                    }

                    for (; count < 7; count++)
                    {
                        fraction *= 10;
                    }

                    ticks += fraction;
                }
            }

            if (at < s.Length && !TryOffset(s[at..], out offset))
            {
                return false;
            }
        }

        dateTime = new DateTime(year, month, day, 0, 0, 0, DateTimeKind.Unspecified).AddTicks(ticks);
        return true;
    }

    private static bool TryOffset(ReadOnlySpan<char> s, out TimeSpan? offset)
    {
        offset = null;
        if (s is "Z")
        {
            offset = TimeSpan.Zero;
            return true;
        }

        if (s.Length < 3 || s[0] is not ('+' or '-') || !Digits(s, 1, 2, out var hours))
        {
            return false;
        }

        var minutes = 0;
        var ok = s.Length switch
        {
            3 => true,
            5 => Digits(s, 3, 2, out minutes),
            6 => s[3] == ':' && Digits(s, 4, 2, out minutes),
            _ => false,
        };
        if (!ok || minutes > 59 || (hours * 60) + minutes > 14 * 60)
        {
            return false;
        }

        var span = new TimeSpan(hours, minutes, 0);
        offset = s[0] == '-' ? -span : span;
        return true;
    }

    private static bool Digits(ReadOnlySpan<char> s, int start, int count, out int value)
    {
        value = 0;
        if (start + count > s.Length)
        {
            return false;
        }

        for (var i = start; i < start + count; i++)
        {
            var c = s[i];
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            value = (value * 10) + (c - '0');
        }

        return true;
    }
}
