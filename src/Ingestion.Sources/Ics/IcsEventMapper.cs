using System.Globalization;

namespace Ingestion.Sources.Ics;

/// <summary>
/// Turns the VEVENTs of parsed calendars into events: one version per UID (and per overridden instance), instances
/// of recurring events within the window, overrides in place of the instances they name.
/// </summary>
/// <param name="settings">The window, zones and limits.</param>
internal sealed class IcsEventMapper(IcsParseSettings settings)
{
    private readonly IcsZoneResolver _zones = new();
    private readonly IcsZone _floating = new SystemIcsZone(settings.FloatingTimeZone);
    private readonly IcsZone _utc = new SystemIcsZone(TimeZoneInfo.Utc);
    private readonly Dictionary<IcsComponent, IcsParseResult> _unreadable = [];

    public IEnumerable<IcsParseResult> Map(List<IcsComponent> calendars)
    {
        foreach (var zone in calendars.SelectMany(c => c.Children).Where(c => c.Name == "VTIMEZONE"))
        {
            _zones.Define(zone);
        }

        // Group the VEVENTs by UID (first appearance order): versions of the series and of its overridden instances.
        var groups = new Dictionary<string, (List<IcsComponent> Masters, List<IcsComponent> Overrides, bool CancelAll)>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var calendar in calendars)
        {
            var cancelAll = string.Equals(calendar.Property("METHOD")?.Value.Trim(), "CANCEL", StringComparison.OrdinalIgnoreCase);
            foreach (var component in calendar.Children.Where(c => c.Name == "VEVENT"))
            {
                var uid = component.Property("UID")?.Value.Trim();
                var (fatal, dropped) = IcsEventVersions.SortErrors(component);
                if (fatal is var (line, reason, raw))
                {
                    // Still a version of its event: rejected if it is the newest, so an older one never takes its place.
                    _unreadable[component] = Reject(line, null, $"event '{uid ?? "(no UID)"}' (VEVENT of line {component.Line}) has a line that cannot be read: {reason}", raw);
                }

                foreach (var drop in fatal is null ? dropped : [])
                {
                    yield return new IcsParseResult(null, null)
                    {
                        Warning = $"{IcsParser.Describe(settings)}: event '{uid ?? "(no UID)"}' (VEVENT of line {component.Line}): line {drop.Line.ToString(CultureInfo.InvariantCulture)} '{drop.Raw}' cannot be read ({drop.Reason}); it is dropped and the event kept.",
                    };
                }

                if (string.IsNullOrEmpty(uid))
                {
                    uid = IcsEventVersions.ContentKey(component);
                }

                if (!groups.TryGetValue(uid, out var group))
                {
                    group = ([], [], cancelAll);
                    groups[uid] = group;
                    order.Add(uid);
                }

                (component.Property("RECURRENCE-ID") is null ? group.Masters : group.Overrides).Add(component);
            }
        }

        foreach (var uid in order)
        {
            var (masters, overrides, cancelAll) = groups[uid];

            // Several versions of one event: the highest SEQUENCE wins, then the latest DTSTAMP, then LAST-MODIFIED.
            EventData? master = null;
            if (IcsEventVersions.Newest(masters) is { } newest)
            {
                var (data, rejected) = Read(newest, uid, cancelAll, null);
                if (rejected is not null)
                {
                    yield return rejected;
                }

                master = data;
            }

            var overridden = new Dictionary<string, EventData>(StringComparer.Ordinal);
            foreach (var component in overrides)
            {
                var (data, rejected) = Read(component, uid, cancelAll, master);
                if (rejected is not null)
                {
                    yield return rejected;
                    continue;
                }

                if (!overridden.TryGetValue(data!.RecurrenceKey!, out var other) || IcsEventVersions.IsNewer(component, other.Component, overrides))
                {
                    overridden[data.RecurrenceKey!] = data;
                }
            }

            if (master is not null)
            {
                foreach (var result in Instances(master, overridden))
                {
                    yield return result;
                }
            }

            foreach (var data in overridden.Values)
            {
                yield return new IcsParseResult(Build(data, data.Start.Local, data.RecurrenceKey, isRecurring: true), null);
            }
        }
    }

    private IcsParseResult Reject(int line, string? field, string reason, string? raw) =>
        new(null, new RejectedRecord(string.Create(CultureInfo.InvariantCulture, $"line {line}"), field, $"{IcsParser.Describe(settings)}: {reason}.", raw));

    private (EventData? Data, IcsParseResult? Rejected) Read(IcsComponent component, string uid, bool cancelAll, EventData? master)
    {
        if (_unreadable.TryGetValue(component, out var unreadable))
        {
            return (null, unreadable);
        }

        try
        {
            return (ReadCore(component, uid, cancelAll, master), null);
        }
        catch (EventRejectedException e)
        {
            return (null, Reject(e.Line, e.Field, $"event '{uid}' (VEVENT of line {component.Line}): {e.Message}", e.Raw));
        }
    }

    private EventData ReadCore(IcsComponent c, string uid, bool cancelAll, EventData? master)
    {
        IcsEventVersions.RefuseRepeated(c);
        var dtStart = c.Property("DTSTART") ?? throw new EventRejectedException(c.Line, "DTSTART", "it has no DTSTART", null);
        var start = DateValue(dtStart);
        var zone = ZoneOf(start, dtStart);

        IcsDateTime? end = null;
        IcsZone? endZone = null;
        IcsDuration? duration = null;
        if (c.Property("DTEND") is { } dtEnd)
        {
            end = DateValue(dtEnd);
            endZone = ZoneOf(end.Value, dtEnd);
            if (ToUtc(end.Value, endZone) < ToUtc(start, zone))
            {
                throw new EventRejectedException(dtEnd.Line, "DTEND", $"DTEND {dtEnd.Value} is before DTSTART {dtStart.Value}", dtEnd.Value);
            }
        }
        else if (c.Property("DURATION") is { } dur)
        {
            if (!IcsValues.TryParseDuration(dur.Value, out var d) || d.Days < 0 || d.Time < TimeSpan.Zero)
            {
                throw new EventRejectedException(dur.Line, "DURATION", $"'{dur.Value}' is not a non-negative duration (e.g. PT1H30M, P1D)", dur.Value);
            }

            duration = d;
        }

        RecurrenceRule? rule = null;
        string? ruleText = null;
        if (c.Property("RRULE") is { } rrule)
        {
            if (!RecurrenceRule.TryParse(rrule.Value, out rule, out var reason))
            {
                throw new EventRejectedException(rrule.Line, "RRULE", $"the RRULE cannot be expanded: {reason}", rrule.Value);
            }

            ruleText = rrule.Value.Trim();
        }

        string? recurrenceKey = null;
        if (c.Property("RECURRENCE-ID") is { } rid)
        {
            recurrenceKey = RecurrenceKey(DateValue(rid), rid, master);
        }

        var status = c.Property("STATUS")?.Value.Trim().ToUpperInvariant();
        var data = new EventData
        {
            Component = c,
            Uid = uid,
            Start = start,
            Zone = zone,
            End = end,
            EndZone = endZone,
            Duration = duration,
            Rule = rule,
            RuleText = ruleText,
            RecurrenceKey = recurrenceKey,
            Cancelled = cancelAll || status == "CANCELLED",
        };

        foreach (var rdate in c.All("RDATE"))
        {
            foreach (var value in List(rdate))
            {
                if (value.IsDate || value.IsFloating || (!value.IsUtc && string.Equals(value.TzId, start.TzId, StringComparison.OrdinalIgnoreCase)))
                {
                    data.RDates.Add(value.Local);
                }
                else
                {
                    var utc = ToUtc(value, ZoneOf(value, rdate));
                    data.RDates.Add(start.IsUtc ? utc : utc + zone.OffsetAt(utc));
                }
            }
        }

        foreach (var exdate in c.All("EXDATE"))
        {
            foreach (var value in List(exdate))
            {
                data.ExDates.Add(value.IsDate ? Key(true, value.Local, value.Local) : Key(false, ToUtc(value, ZoneOf(value, exdate)), value.Local));
            }
        }

        // Validate the remaining typed properties now, so a bad one rejects the event with its line.
        _ = Build(data, start.Local, null, false);
        return data;
    }

    /// <summary>
    /// The key of the instance a RECURRENCE-ID names, as the series' own instances are keyed: the date for an all-day
    /// series (also when the override gives a DATE-TIME, as Exchange does), else the UTC instant, a floating value
    /// being read in the series' zone and a DATE in a timed series naming the instance on that date.
    /// </summary>
    private string RecurrenceKey(IcsDateTime rid, IcsProperty p, EventData? master)
    {
        if (master is { Start.IsDate: true })
        {
            var local = rid.IsUtc ? rid.Local + master.Zone.OffsetAt(rid.Local) : rid.Local;
            return Key(true, local.Date, local.Date);
        }

        if (master is not null && rid.IsDate)
        {
            var local = rid.Local.Date + master.Start.Local.TimeOfDay;
            return Key(false, master.Start.IsUtc ? local : master.Zone.ToUtc(local), local);
        }

        var zone = rid.IsFloating && master is not null ? master.Zone : ZoneOf(rid, p);
        return Key(rid.IsDate, rid.IsUtc ? rid.Local : zone.ToUtc(rid.Local), rid.Local);
    }

    private IEnumerable<IcsParseResult> Instances(EventData data, Dictionary<string, EventData> overridden)
    {
        if (!data.IsRecurring)
        {
            yield return new IcsParseResult(Build(data, data.Start.Local, null, isRecurring: false), null);
            yield break;
        }

        var windowStart = settings.WindowStart.UtcDateTime;
        var windowEnd = settings.WindowEnd.UtcDateTime;
        var horizon = data.Start.IsUtc ? windowEnd : windowEnd.AddHours(15);
        IEnumerable<DateTime> occurrences = data.Rule is null
            ? [data.Start.Local]
            : RecurrenceExpander.Expand(data.Rule, data.Start.Local, l => data.Zone.ToUtc(l), horizon);
        if (data.RDates.Count > 0)
        {
            occurrences = occurrences.Concat(data.RDates.Where(d => d <= horizon)).Distinct().Order();
        }

        var produced = 0;
        foreach (var local in occurrences)
        {
            var startUtc = data.Start.IsUtc ? local : data.Zone.ToUtc(local);
            if (startUtc >= windowEnd)
            {
                if (data.Rule is null || data.RDates.Count > 0)
                {
                    continue;
                }

                yield break;
            }

            var key = Key(data.Start.IsDate, startUtc, local);
            if (data.ExDates.Contains(key) || data.ExDates.Contains(Key(true, local, local)) || overridden.ContainsKey(key))
            {
                continue;
            }

            var record = Build(data, local, key, isRecurring: true);
            if (record.End.UtcDateTime <= windowStart && !(record.End == record.Start && startUtc >= windowStart))
            {
                continue;
            }

            if (++produced > settings.MaxInstancesPerEvent)
            {
                yield return Reject(data.Component.Line, "RRULE", $"event '{data.Uid}' (VEVENT of line {data.Component.Line}) has more than {settings.MaxInstancesPerEvent} instances in the window; the instances from {key} on were not produced (raise MaxInstancesPerEvent or narrow the window)", data.RuleText);
                yield break;
            }

            yield return new IcsParseResult(record, null);
        }
    }

    private CalendarEvent Build(EventData data, DateTime local, string? key, bool isRecurring)
    {
        var c = data.Component;
        var startUtc = data.Start.IsUtc ? local : data.Zone.ToUtc(local);
        DateTime endUtc;
        if (data.End is { } end)
        {
            var sameClock = end.IsDate == data.Start.IsDate && end.IsUtc == data.Start.IsUtc
                && string.Equals(end.TzId, data.Start.TzId, StringComparison.OrdinalIgnoreCase);
            endUtc = sameClock
                ? (end.IsUtc ? local + (end.Local - data.Start.Local) : data.EndZone!.ToUtc(local + (end.Local - data.Start.Local)))
                : startUtc + (ToUtc(end, data.EndZone!) - ToUtc(data.Start, data.Zone));
        }
        else if (data.Duration is { } duration)
        {
            var endLocal = local.AddDays(duration.Days);
            endUtc = (data.Start.IsUtc ? endLocal : data.Zone.ToUtc(endLocal)) + duration.Time;
        }
        else
        {
            endUtc = data.Start.IsDate ? data.Zone.ToUtc(local.AddDays(1)) : startUtc;
        }

        var status = c.Property("STATUS")?.Value.Trim().ToUpperInvariant();
        return new CalendarEvent
        {
            SourceId = key is null ? data.Uid : $"{data.Uid}/{key}",
            Uid = data.Uid,
            RecurrenceId = key,
            Summary = Text(c, "SUMMARY"),
            Description = Text(c, "DESCRIPTION"),
            Location = Text(c, "LOCATION"),
            Url = c.Property("URL")?.Value.Trim() is { Length: > 0 } url ? url : null,
            Status = status is { Length: > 0 } ? status : null,
            IsCancelled = data.Cancelled,
            Start = new DateTimeOffset(DateTime.SpecifyKind(startUtc, DateTimeKind.Utc)),
            End = new DateTimeOffset(DateTime.SpecifyKind(endUtc, DateTimeKind.Utc)),
            LocalStart = DateTime.SpecifyKind(local, DateTimeKind.Unspecified),
            IsAllDay = data.Start.IsDate,
            IsFloating = data.Start.IsFloating,
            TimeZone = data.Start.TzId,
            IsRecurring = isRecurring,
            RecurrenceRule = data.RuleText,
            CategoryList = c.All("CATEGORIES").SelectMany(p => IcsText.SplitList(p.Value)).Select(s => s.Trim()).Where(s => s.Length > 0).ToList(),
            Organizer = Organizer(c.Property("ORGANIZER")),
            Sequence = Sequence(c.Property("SEQUENCE")),
            LastModified = Modified(c.Property("LAST-MODIFIED")),
        };
    }

    private static string? Text(IcsComponent c, string name) =>
        c.Property(name) is { } p && IcsText.Unescape(p.Value).Trim() is { Length: > 0 } text ? text : null;

    private static string? Organizer(IcsProperty? p)
    {
        if (p is null)
        {
            return null;
        }

        var value = p.Value.Trim();
        return value.StartsWith("mailto:", StringComparison.OrdinalIgnoreCase) ? value[7..] : value.Length > 0 ? value : null;
    }

    private static int? Sequence(IcsProperty? p)
    {
        if (p is null)
        {
            return null;
        }

        return int.TryParse(p.Value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new EventRejectedException(p.Line, "SEQUENCE", $"'{p.Value}' is not a non-negative integer", p.Value);
    }

    private static DateTimeOffset? Modified(IcsProperty? p)
    {
        if (p is null)
        {
            return null;
        }

        return IcsValues.TryParseDateTime(p.Value, false, null, out var v) && !v.IsDate
            ? new DateTimeOffset(DateTime.SpecifyKind(v.Local, DateTimeKind.Utc))
            : throw new EventRejectedException(p.Line, "LAST-MODIFIED", $"'{p.Value}' is not a DATE-TIME", p.Value);
    }

    private static IcsDateTime DateValue(IcsProperty p) =>
        IcsValues.TryParseDateTime(p, out var value)
            ? value
            : throw new EventRejectedException(p.Line, p.Name, $"{p.Name} '{p.Value}' is not a DATE (yyyyMMdd) or DATE-TIME (yyyyMMddTHHmmss[Z])", p.Value);

    private static List<IcsDateTime> List(IcsProperty p) =>
        IcsValues.TryParseList(p, out var values)
            ? values
            : throw new EventRejectedException(p.Line, p.Name, $"{p.Name} '{p.Value}' is not a list of DATE or DATE-TIME values", p.Value);

    private IcsZone ZoneOf(IcsDateTime value, IcsProperty p)
    {
        if (value.IsUtc)
        {
            return _utc;
        }

        if (value.TzId is not { } tzid || value.IsDate)
        {
            return _floating;
        }

        if (_zones.TryResolve(tzid, out var zone))
        {
            return zone;
        }

        var why = _zones.IsBroken(tzid, out var broken)
            ? $"its VTIMEZONE cannot be used ({broken}) and it is neither an IANA nor a Windows time zone name"
            : "no VTIMEZONE of the calendar defines it and it is neither an IANA nor a Windows time zone name";
        throw new EventRejectedException(p.Line, p.Name, $"unknown time zone '{tzid}' (TZID of {p.Name}): {why}", tzid);
    }

    private static DateTime ToUtc(IcsDateTime value, IcsZone zone) => value.IsUtc ? value.Local : zone.ToUtc(value.Local);

    private static string Key(bool isDate, DateTime utc, DateTime local) =>
        isDate ? local.ToString("yyyyMMdd", CultureInfo.InvariantCulture) : utc.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
}
