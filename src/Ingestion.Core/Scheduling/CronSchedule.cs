using System.Globalization;
using Cronos;

namespace Ingestion.Scheduling;

/// <summary>
/// A cron expression in an IANA time zone: 5 fields (<c>minute hour day-of-month month day-of-week</c>, Unix cron)
/// or 6 fields (the same with seconds first). Day-of-week uses Unix numbering (0 or 7 = Sunday, 1 = Monday) or names
/// (<c>MON-FRI</c>); when both day-of-month and day-of-week are restricted a day matches either (Unix semantics).
/// Parsing and matching are Cronos's <see cref="CronExpression"/>; time zones are handled here, on wall-clock time:
/// a slot whose local time falls in a spring-forward gap runs once at the first valid instant after the gap, and a slot
/// whose local time occurs twice at fall-back runs once, at its first occurrence.
/// </summary>
public sealed partial class CronSchedule
{
    private static readonly string[] DayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    private static readonly (string Name, int Min, int Max)[] Ranges = [("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12)];

    // Cronos evaluates the wall clock as if it were UTC: its own DST handling (which runs interval expressions twice in a
    // repeated hour) never applies; ToInstant maps wall times to instants by the documented rules.
    private readonly CronExpression[] _wallClock;

    private CronSchedule(string expression, TimeZoneInfo timeZone, CronExpression[] wallClock)
    {
        Expression = expression;
        TimeZone = timeZone;
        _wallClock = wallClock;
    }

    /// <summary>The expression as written.</summary>
    public string Expression { get; }

    /// <summary>The time zone the expression is read in.</summary>
    public TimeZoneInfo TimeZone { get; }

    /// <summary>Parses an expression in a time zone.</summary>
    /// <param name="expression">The 5- or 6-field cron expression.</param>
    /// <param name="timeZoneId">An IANA (or Windows) time zone id, e.g. <c>America/Toronto</c>; <see langword="null"/> or empty for UTC.</param>
    /// <returns>The schedule.</returns>
    /// <exception cref="FormatException">The expression or the time zone is invalid; the message says why.</exception>
    public static CronSchedule Parse(string expression, string? timeZoneId = null) =>
        TryParse(expression, timeZoneId, out var schedule, out var error) ? schedule : throw new FormatException(error);

    /// <summary>Parses an expression in a time zone without throwing.</summary>
    /// <param name="expression">The 5- or 6-field cron expression.</param>
    /// <param name="timeZoneId">An IANA time zone id, or <see langword="null"/> for UTC.</param>
    /// <param name="schedule">The schedule when valid.</param>
    /// <param name="error">Why it is invalid.</param>
    /// <returns>Whether it parsed.</returns>
    public static bool TryParse(string? expression, string? timeZoneId, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CronSchedule? schedule, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        schedule = null;
        if (!TryFindTimeZone(timeZoneId, out var zone, out error))
        {
            return false;
        }

        if (string.IsNullOrWhiteSpace(expression))
        {
            error = "the cron expression is empty";
            return false;
        }

        var fields = expression.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length is not (5 or 6))
        {
            error = $"cron expression '{expression}' has {fields.Length} field(s); expected 5 (minute hour day-of-month month day-of-week) or 6 (second minute hour day-of-month month day-of-week)";
            return false;
        }

        if (fields.Length == 5)
        {
            fields = ["0", .. fields];
        }

        // Check the ranges first, so the error names the field and its bounds.
        for (var f = 0; f < 5; f++)
        {
            var (name, min, max) = Ranges[f];
            foreach (System.Text.RegularExpressions.Match m in NumberPattern().Matches(fields[f]))
            {
                if (!int.TryParse(m.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
                {
                    error = $"cron expression '{expression}' is invalid: {name} value {m.Value} is outside {min}-{max}";
                    return false;
                }
            }
        }

        if (!TryTranslateDayOfWeek(fields[5], out var dow, out error))
        {
            error = $"cron expression '{expression}': day-of-week '{fields[5]}' is invalid: {error}";
            return false;
        }

        // Unix cron: when both day fields are restricted a day matches either; Cronos matches both, so such an
        // expression becomes two (one per day field) whose next occurrences are merged.
        var domAny = fields[3] is "*" or "?";
        var dowAny = dow is "*" or "?";
        string[][] variants = domAny || dowAny
            ? [[.. fields[..5], dow]]
            : [[.. fields[..3], fields[3], fields[4], "*"], [.. fields[..3], "*", fields[4], dow]];

        var compiled = new CronExpression[variants.Length];
        for (var i = 0; i < variants.Length; i++)
        {
            try
            {
                compiled[i] = CronExpression.Parse(string.Join(' ', variants[i]).ToUpperInvariant(), CronFormat.IncludeSeconds);
            }
            catch (CronFormatException e)
            {
                error = $"cron expression '{expression}' is invalid: {e.Message}";
                return false;
            }
            catch (MissingSeedException)
            {
                error = $"cron expression '{expression}' is invalid: hashed values ('H') are not supported";
                return false;
            }
        }

        schedule = new CronSchedule(expression, zone, compiled);
        if (schedule.GetNextOccurrence(new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero)) is null)
        {
            schedule = null;
            error = $"cron expression '{expression}' never fires";
            return false;
        }

        return true;
    }

    /// <summary>Finds a time zone by IANA (or Windows) id.</summary>
    /// <param name="timeZoneId">The id; <see langword="null"/> or empty for UTC.</param>
    /// <param name="zone">The zone when found.</param>
    /// <param name="error">Why it was not found.</param>
    /// <returns>Whether it was found.</returns>
    public static bool TryFindTimeZone(string? timeZoneId, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out TimeZoneInfo? zone, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(timeZoneId) || timeZoneId is "UTC" or "Etc/UTC")
        {
            zone = TimeZoneInfo.Utc;
            return true;
        }

        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(timeZoneId);
            return true;
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            zone = null;
            error = $"time zone '{timeZoneId}' is unknown (use an IANA id such as 'America/Toronto')";
            return false;
        }
    }

    /// <summary>The first slot strictly after an instant.</summary>
    /// <param name="after">The instant.</param>
    /// <returns>The slot's instant (UTC), or <see langword="null"/> when the expression never fires again.</returns>
    public DateTimeOffset? GetNextOccurrence(DateTimeOffset after)
    {
        var afterUtc = after.ToUniversalTime();
        var cursor = DateTime.SpecifyKind(TimeZoneInfo.ConvertTime(afterUtc, TimeZone).DateTime, DateTimeKind.Utc);
        for (var guard = 0; guard < 100_000; guard++)
        {
            DateTime? wall = null;
            foreach (var e in _wallClock)
            {
                if (e.GetNextOccurrence(cursor) is { } t && (wall is null || t < wall))
                {
                    wall = t;
                }
            }

            if (wall is null)
            {
                return null;
            }

            var instant = ToInstant(wall.Value);
            if (instant > afterUtc)
            {
                return instant;
            }

            // A repeated (fall-back) wall time whose first occurrence is already past: it ran then.
            cursor = wall.Value;
        }

        return null;
    }

    /// <summary>The slots in (<paramref name="after"/>, <paramref name="until"/>], at most <paramref name="max"/>.</summary>
    /// <param name="after">The exclusive start.</param>
    /// <param name="until">The inclusive end.</param>
    /// <param name="max">The most slots returned.</param>
    /// <returns>The slots, in order.</returns>
    public IReadOnlyList<DateTimeOffset> GetOccurrences(DateTimeOffset after, DateTimeOffset until, int max = int.MaxValue)
    {
        var list = new List<DateTimeOffset>();
        var cursor = after;
        while (list.Count < max && GetNextOccurrence(cursor) is { } next && next <= until)
        {
            list.Add(next);
            cursor = next;
        }

        return list;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Expression} ({TimeZone.Id})";

    /// <summary>The instant of a local wall-clock time: the first valid instant after a gap, the first occurrence of a repeated time.</summary>
    private DateTimeOffset ToInstant(DateTime wall)
    {
        wall = DateTime.SpecifyKind(wall, DateTimeKind.Unspecified);
        if (TimeZone.IsInvalidTime(wall))
        {
            // Find the transition: the first instant whose local time is at or after the wall time.
            var lo = new DateTimeOffset(wall, TimeSpan.Zero).AddHours(-15).ToUnixTimeSeconds();
            var hi = new DateTimeOffset(wall, TimeSpan.Zero).AddHours(15).ToUnixTimeSeconds();
            while (lo < hi)
            {
                var mid = lo + ((hi - lo) / 2);
                var local = TimeZoneInfo.ConvertTime(DateTimeOffset.FromUnixTimeSeconds(mid), TimeZone).DateTime;
                if (local >= wall)
                {
                    hi = mid;
                }
                else
                {
                    lo = mid + 1;
                }
            }

            return DateTimeOffset.FromUnixTimeSeconds(lo);
        }

        if (TimeZone.IsAmbiguousTime(wall))
        {
            var offset = TimeZone.GetAmbiguousTimeOffsets(wall).Max();
            return new DateTimeOffset(wall - offset, TimeSpan.Zero);
        }

        return new DateTimeOffset(wall - TimeZone.GetUtcOffset(wall), TimeSpan.Zero);
    }

    private static bool TryTranslateDayOfWeek(string field, out string translated, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        translated = field;
        error = null;
        if (field is "*" or "?")
        {
            return true;
        }

        var days = new SortedSet<int>();
        var special = new List<string>();
        foreach (var item in field.Split(','))
        {
            // Extensions: 5L (last Friday), 5#3 (third Friday); numbers are Unix ones.
            var hash = item.IndexOf('#', StringComparison.Ordinal);
            if (hash > 0 || (item.Length > 1 && item.EndsWith('L')))
            {
                var dayPart = hash > 0 ? item[..hash] : item[..^1];
                var rest = hash > 0 ? item[hash..] : "L";
                if (!TryDay(dayPart, out var d))
                {
                    error = $"'{dayPart}' is not a day (0-7 or SUN-SAT)";
                    return false;
                }

                special.Add(d.ToString(CultureInfo.InvariantCulture) + rest);
                continue;
            }

            var step = 1;
            var range = item;
            var slash = item.IndexOf('/', StringComparison.Ordinal);
            if (slash >= 0)
            {
                if (!int.TryParse(item[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out step) || step < 1)
                {
                    error = $"step '{item[(slash + 1)..]}' is not a positive number";
                    return false;
                }

                range = item[..slash];
            }

            int from, to;
            if (range == "*")
            {
                (from, to) = (0, 6);
            }
            else if (range.IndexOf('-', StringComparison.Ordinal) is var dash and > 0)
            {
                if (!TryDayNumber(range[..dash], out from) || !TryDayNumber(range[(dash + 1)..], out to))
                {
                    error = $"'{range}' is not a range of days (0-7 or SUN-SAT)";
                    return false;
                }

                if (to < from)
                {
                    error = $"range '{range}' runs backwards";
                    return false;
                }
            }
            else
            {
                if (!TryDayNumber(range, out from))
                {
                    error = $"'{range}' is not a day (0-7 or SUN-SAT)";
                    return false;
                }

                to = slash >= 0 ? 6 : from;
            }

            for (var d = from; d <= to; d += step)
            {
                days.Add(d % 7);
            }
        }

        translated = string.Join(',', days.Select(d => d.ToString(CultureInfo.InvariantCulture)).Concat(special));
        return true;
    }

    private static bool TryDay(string text, out int day)
    {
        if (TryDayNumber(text, out day))
        {
            day %= 7;
            return true;
        }

        return false;
    }

    private static bool TryDayNumber(string text, out int day)
    {
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out day))
        {
            return day is >= 0 and <= 7;
        }

        day = Array.FindIndex(DayNames, n => string.Equals(n, text, StringComparison.OrdinalIgnoreCase));
        return day >= 0;
    }

    // Values, not steps (after '/') nor offsets from the last day ('L-3').
    [System.Text.RegularExpressions.GeneratedRegex(@"(?<![/\d])(?<!L-)\d+")]
    private static partial System.Text.RegularExpressions.Regex NumberPattern();
}
