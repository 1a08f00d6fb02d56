using System.Globalization;

namespace Ingestion.Sources.Ics;

/// <summary>The FREQ of a recurrence rule.</summary>
internal enum RecurrenceFrequency
{
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// <summary>
/// A parsed RRULE (RFC 5545 3.3.10): FREQ (DAILY, WEEKLY, MONTHLY, YEARLY), INTERVAL, COUNT, UNTIL,
/// BYDAY (with ordinals in MONTHLY/YEARLY), BYMONTHDAY, BYMONTH, BYSETPOS and WKST. Rule parts this
/// expander does not implement (BYHOUR, BYMINUTE, BYSECOND, BYWEEKNO, BYYEARDAY, sub-daily FREQ) are
/// refused with a reason rather than expanded wrongly.
/// </summary>
internal sealed class RecurrenceRule
{
    private static readonly Dictionary<string, DayOfWeek> DayNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["MO"] = DayOfWeek.Monday,
        ["TU"] = DayOfWeek.Tuesday,
        ["WE"] = DayOfWeek.Wednesday,
        ["TH"] = DayOfWeek.Thursday,
        ["FR"] = DayOfWeek.Friday,
        ["SA"] = DayOfWeek.Saturday,
        ["SU"] = DayOfWeek.Sunday,
    };

    public RecurrenceFrequency Frequency { get; private set; }

    public int Interval { get; private set; } = 1;

    public int? Count { get; private set; }

    public IcsDateTime? Until { get; private set; }

    public List<(int Ordinal, DayOfWeek Day)> ByDay { get; } = [];

    public List<int> ByMonthDay { get; } = [];

    public List<int> ByMonth { get; } = [];

    public List<int> BySetPos { get; } = [];

    public DayOfWeek WeekStart { get; private set; } = DayOfWeek.Monday;

    public static bool TryParse(string text, out RecurrenceRule rule, out string reason)
    {
        rule = new RecurrenceRule();
        reason = string.Empty;
        var sawFreq = false;
        foreach (var part in text.Trim().Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                reason = $"the rule part '{part}' has no '='";
                return false;
            }

            var name = part[..eq].Trim().ToUpperInvariant();
            var value = part[(eq + 1)..].Trim();
            switch (name)
            {
                case "FREQ":
                    sawFreq = true;
                    switch (value.ToUpperInvariant())
                    {
                        case "DAILY":
                            rule.Frequency = RecurrenceFrequency.Daily;
                            break;
                        case "WEEKLY":
                            rule.Frequency = RecurrenceFrequency.Weekly;
                            break;
                        case "MONTHLY":
                            rule.Frequency = RecurrenceFrequency.Monthly;
                            break;
                        case "YEARLY":
                            rule.Frequency = RecurrenceFrequency.Yearly;
                            break;
                        case "HOURLY" or "MINUTELY" or "SECONDLY":
                            reason = $"FREQ={value} is not supported (DAILY, WEEKLY, MONTHLY and YEARLY are)";
                            return false;
                        default:
                            reason = $"FREQ={value} is not a frequency";
                            return false;
                    }

                    break;
                case "INTERVAL":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var interval) || interval < 1)
                    {
                        reason = $"INTERVAL={value} is not a positive integer";
                        return false;
                    }

                    rule.Interval = interval;
                    break;
                case "COUNT":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count < 1)
                    {
                        reason = $"COUNT={value} is not a positive integer";
                        return false;
                    }

                    rule.Count = count;
                    break;
                case "UNTIL":
                    if (!IcsValues.TryParseDateTime(value, false, null, out var until))
                    {
                        reason = $"UNTIL={value} is not a DATE or DATE-TIME";
                        return false;
                    }

                    rule.Until = until;
                    break;
                case "BYDAY":
                    foreach (var item in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        if (item.Length < 2 || !DayNames.TryGetValue(item[^2..], out var day))
                        {
                            reason = $"BYDAY value '{item}' is not a weekday (MO..SU with an optional ordinal)";
                            return false;
                        }

                        var ordinal = 0;
                        if (item.Length > 2 && (!int.TryParse(item[..^2], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out ordinal) || ordinal == 0 || Math.Abs(ordinal) > 53))
                        {
                            reason = $"BYDAY value '{item}' has an invalid ordinal";
                            return false;
                        }

                        rule.ByDay.Add((ordinal, day));
                    }

                    break;
                case "BYMONTHDAY":
                    if (!TryInts(value, 1, 31, rule.ByMonthDay))
                    {
                        reason = $"BYMONTHDAY={value} must list days 1..31 or -31..-1";
                        return false;
                    }

                    break;
                case "BYMONTH":
                    if (!TryInts(value, 1, 12, rule.ByMonth) || rule.ByMonth.Any(m => m < 0))
                    {
                        reason = $"BYMONTH={value} must list months 1..12";
                        return false;
                    }

                    break;
                case "BYSETPOS":
                    if (!TryInts(value, 1, 366, rule.BySetPos))
                    {
                        reason = $"BYSETPOS={value} must list positions 1..366 or -366..-1";
                        return false;
                    }

                    break;
                case "WKST":
                    if (!DayNames.TryGetValue(value, out var weekStart))
                    {
                        reason = $"WKST={value} is not a weekday";
                        return false;
                    }

                    rule.WeekStart = weekStart;
                    break;
                case "BYHOUR" or "BYMINUTE" or "BYSECOND" or "BYWEEKNO" or "BYYEARDAY":
                    reason = $"the rule part {name} is not supported by this expander";
                    return false;
                default:
                    if (name.StartsWith("X-", StringComparison.Ordinal))
                    {
                        break;
                    }

                    reason = $"'{name}' is not a rule part";
                    return false;
            }
        }

        if (!sawFreq)
        {
            reason = "the rule has no FREQ";
            return false;
        }

        if (rule.Count is not null && rule.Until is not null)
        {
            reason = "the rule has both COUNT and UNTIL, which RFC 5545 forbids";
            return false;
        }

        if (rule.Frequency is RecurrenceFrequency.Daily or RecurrenceFrequency.Weekly && rule.ByDay.Any(d => d.Ordinal != 0))
        {
            reason = "BYDAY ordinals (e.g. 2MO) are only allowed with FREQ=MONTHLY or YEARLY";
            return false;
        }

        if (rule.Frequency == RecurrenceFrequency.Weekly && rule.ByMonthDay.Count > 0)
        {
            reason = "BYMONTHDAY is not allowed with FREQ=WEEKLY";
            return false;
        }

        return true;
    }

    private static bool TryInts(string value, int min, int max, List<int> into)
    {
        foreach (var item in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(item, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) || n == 0 || Math.Abs(n) < min || Math.Abs(n) > max)
            {
                return false;
            }

            into.Add(n);
        }

        return into.Count > 0;
    }
}

/// <summary>
/// Expands a recurrence rule in wall-clock time: each period (day, week, month, year, stepped by
/// INTERVAL) yields its candidate dates (BYxxx expand or limit as RFC 5545's table says), BYSETPOS
/// picks among them, and occurrences come out in order from DTSTART (always the first instance)
/// until COUNT, UNTIL or the caller's horizon. Converting to UTC is left to the caller, so an event at
/// 09:00 local stays at 09:00 local across DST transitions.
/// </summary>
internal static class RecurrenceExpander
{
    private const int MaxPeriods = 2_000_000;

    /// <summary>Expands the rule.</summary>
    /// <param name="rule">The rule.</param>
    /// <param name="start">DTSTART as wall-clock time (midnight for a DATE).</param>
    /// <param name="toUtc">Converts a wall-clock occurrence to UTC (for a UTC UNTIL).</param>
    /// <param name="horizon">Stop after this wall-clock time.</param>
    /// <returns>The occurrences, in order, DTSTART first.</returns>
    public static IEnumerable<DateTime> Expand(RecurrenceRule rule, DateTime start, Func<DateTime, DateTime> toUtc, DateTime horizon)
    {
        yield return start;
        var emitted = 1;
        if (rule.Count == 1)
        {
            yield break;
        }

        var time = start.TimeOfDay;
        var candidates = new List<DateTime>();
        for (var k = 0; k < MaxPeriods; k++)
        {
            if (!TryPeriodStart(rule, start, k, out var period) || period > horizon)
            {
                yield break;
            }

            candidates.Clear();
            AddCandidates(rule, period, start, candidates);
            candidates.Sort();
            var picked = rule.BySetPos.Count > 0 ? SetPositions(rule.BySetPos, candidates) : candidates;
            DateTime? last = null;
            foreach (var date in picked)
            {
                var occurrence = date + time;
                if (occurrence <= start || occurrence == last)
                {
                    continue;
                }

                last = occurrence;
                if (occurrence > horizon || !BeforeUntil(rule, occurrence, toUtc))
                {
                    yield break;
                }

                yield return occurrence;
                if (++emitted >= rule.Count)
                {
                    yield break;
                }
            }
        }
    }

    private static bool BeforeUntil(RecurrenceRule rule, DateTime occurrence, Func<DateTime, DateTime> toUtc)
    {
        if (rule.Until is not { } until)
        {
            return true;
        }

        if (until.IsDate)
        {
            return occurrence.Date <= until.Local.Date;
        }

        return until.IsUtc ? toUtc(occurrence) <= until.Local : occurrence <= until.Local;
    }

    private static bool TryPeriodStart(RecurrenceRule rule, DateTime start, long k, out DateTime period)
    {
        period = default;
        long step = k * rule.Interval;
        switch (rule.Frequency)
        {
            case RecurrenceFrequency.Daily:
                if (step > (DateTime.MaxValue.Date - start.Date).TotalDays - 1)
                {
                    return false;
                }

                period = start.Date.AddDays(step);
                return true;
            case RecurrenceFrequency.Weekly:
                var weekStart = start.Date.AddDays(-((7 + (int)start.DayOfWeek - (int)rule.WeekStart) % 7));
                if ((step * 7) > (DateTime.MaxValue.Date - weekStart).TotalDays - 7)
                {
                    return false;
                }

                period = weekStart.AddDays(step * 7);
                return true;
            case RecurrenceFrequency.Monthly:
                var months = ((start.Year * 12L) + start.Month - 1) + step;
                if (months / 12 > 9999)
                {
                    return false;
                }

                period = new DateTime((int)(months / 12), (int)(months % 12) + 1, 1, 0, 0, 0, DateTimeKind.Unspecified);
                return true;
            default:
                var year = start.Year + step;
                if (year > 9999)
                {
                    return false;
                }

                period = new DateTime((int)year, 1, 1, 0, 0, 0, DateTimeKind.Unspecified);
                return true;
        }
    }

    private static void AddCandidates(RecurrenceRule rule, DateTime period, DateTime start, List<DateTime> into)
    {
        switch (rule.Frequency)
        {
            case RecurrenceFrequency.Daily:
                if (MonthAllowed(rule, period.Month) && MonthDayMatches(rule, period) && WeekdayMatches(rule, period))
                {
                    into.Add(period);
                }

                break;
            case RecurrenceFrequency.Weekly:
                for (var i = 0; i < 7; i++)
                {
                    var day = period.AddDays(i);
                    var wanted = rule.ByDay.Count > 0 ? rule.ByDay.Any(d => d.Day == day.DayOfWeek) : day.DayOfWeek == start.DayOfWeek;
                    if (wanted && MonthAllowed(rule, day.Month))
                    {
                        into.Add(day);
                    }
                }

                break;
            case RecurrenceFrequency.Monthly:
                if (MonthAllowed(rule, period.Month))
                {
                    AddMonth(rule, period.Year, period.Month, start, into);
                }

                break;
            default:
                if (rule.ByMonth.Count > 0)
                {
                    foreach (var month in rule.ByMonth.Distinct())
                    {
                        AddMonth(rule, period.Year, month, start, into);
                    }
                }
                else if (rule.ByMonthDay.Count > 0)
                {
                    for (var month = 1; month <= 12; month++)
                    {
                        AddMonth(rule, period.Year, month, start, into);
                    }
                }
                else if (rule.ByDay.Count > 0)
                {
                    foreach (var (ordinal, dayOfWeek) in rule.ByDay)
                    {
                        AddWeekdays(new DateTime(period.Year, 1, 1, 0, 0, 0, DateTimeKind.Unspecified), new DateTime(period.Year, 12, 31, 0, 0, 0, DateTimeKind.Unspecified), ordinal, dayOfWeek, into);
                    }
                }
                else if (start.Day <= DateTime.DaysInMonth(period.Year, start.Month))
                {
                    into.Add(new DateTime(period.Year, start.Month, start.Day, 0, 0, 0, DateTimeKind.Unspecified));
                }

                break;
        }
    }

    private static void AddMonth(RecurrenceRule rule, int year, int month, DateTime start, List<DateTime> into)
    {
        var days = DateTime.DaysInMonth(year, month);
        if (rule.ByMonthDay.Count > 0)
        {
            foreach (var n in rule.ByMonthDay)
            {
                var day = n > 0 ? n : days + 1 + n;
                if (day < 1 || day > days)
                {
                    continue;
                }

                var date = new DateTime(year, month, day, 0, 0, 0, DateTimeKind.Unspecified);
                if (WeekdayMatches(rule, date))
                {
                    into.Add(date);
                }
            }
        }
        else if (rule.ByDay.Count > 0)
        {
            var first = new DateTime(year, month, 1, 0, 0, 0, DateTimeKind.Unspecified);
            foreach (var (ordinal, dayOfWeek) in rule.ByDay)
            {
                AddWeekdays(first, first.AddDays(days - 1), ordinal, dayOfWeek, into);
            }
        }
        else if (start.Day <= days)
        {
            into.Add(new DateTime(year, month, start.Day, 0, 0, 0, DateTimeKind.Unspecified));
        }
    }

    private static void AddWeekdays(DateTime first, DateTime last, int ordinal, DayOfWeek dayOfWeek, List<DateTime> into)
    {
        var firstMatch = first.AddDays(((int)dayOfWeek - (int)first.DayOfWeek + 7) % 7);
        if (firstMatch > last)
        {
            return;
        }

        var count = ((last - firstMatch).Days / 7) + 1;
        if (ordinal == 0)
        {
            for (var i = 0; i < count; i++)
            {
                into.Add(firstMatch.AddDays(7 * i));
            }
        }
        else
        {
            var index = ordinal > 0 ? ordinal - 1 : count + ordinal;
            if (index >= 0 && index < count)
            {
                into.Add(firstMatch.AddDays(7 * index));
            }
        }
    }

    private static bool MonthAllowed(RecurrenceRule rule, int month) => rule.ByMonth.Count == 0 || rule.ByMonth.Contains(month);

    private static bool WeekdayMatches(RecurrenceRule rule, DateTime date) => rule.ByDay.Count == 0 || rule.ByDay.Any(d => d.Day == date.DayOfWeek);

    private static bool MonthDayMatches(RecurrenceRule rule, DateTime date)
    {
        if (rule.ByMonthDay.Count == 0)
        {
            return true;
        }

        var days = DateTime.DaysInMonth(date.Year, date.Month);
        return rule.ByMonthDay.Any(n => (n > 0 ? n : days + 1 + n) == date.Day);
    }

    private static List<DateTime> SetPositions(List<int> positions, List<DateTime> candidates)
    {
        var distinct = candidates.Distinct().ToList();
        var picked = new List<DateTime>();
        foreach (var p in positions)
        {
            var index = p > 0 ? p - 1 : distinct.Count + p;
            if (index >= 0 && index < distinct.Count)
            {
                picked.Add(distinct[index]);
            }
        }

        picked.Sort();
        return picked;
    }
}
