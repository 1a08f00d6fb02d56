using System.Globalization;
using System.Text;
using Ingestion.Sources.Feeds;

namespace Ingestion.Sources.Ics;

/// <summary>What the iCalendar parser needs besides the text.</summary>
public sealed record IcsParseSettings
{
    /// <summary>The source name, used in messages.</summary>
    public string SourceName { get; init; } = "calendar";

    /// <summary>Instances of recurring events that end before this instant are not produced.</summary>
    public required DateTimeOffset WindowStart { get; init; }

    /// <summary>Instances of recurring events that start at or after this instant are not produced.</summary>
    public required DateTimeOffset WindowEnd { get; init; }

    /// <summary>The zone in which floating times and all-day dates are placed to give them an instant (default UTC).</summary>
    public TimeZoneInfo FloatingTimeZone { get; init; } = TimeZoneInfo.Utc;

    /// <summary>The most instances produced for one recurring event; reaching it rejects the rest with a reason.</summary>
    public int MaxInstancesPerEvent { get; init; } = 5000;

    /// <summary>The most components (BEGIN lines) the document may have.</summary>
    public int MaxComponents { get; init; } = 200_000;

    /// <summary>The <c>charset</c> of the Content-Type, when the document is read from bytes (default UTF-8).</summary>
    public string? Charset { get; init; }
}

/// <summary>One outcome of the iCalendar parser: an event (instance), or the reason an event was rejected.</summary>
/// <param name="Event">The event, or <see langword="null"/> when rejected.</param>
/// <param name="Rejected">Why, or <see langword="null"/>.</param>
public sealed record IcsParseResult(CalendarEvent? Event, RejectedRecord? Rejected);

/// <summary>
/// Reads RFC 5545 calendars into <see cref="CalendarEvent"/>s: unfolds and unescapes lines, resolves
/// DTSTART/DTEND to UTC (UTC, floating, all-day, or TZID through the calendar's VTIMEZONEs, IANA or
/// Windows zone names), expands RRULE/RDATE minus EXDATE within a window, applies overridden instances
/// (RECURRENCE-ID) and marks cancelled events. An event that cannot be read becomes a rejected record
/// naming its line, UID and property; a document that is not a calendar, or is truncated, throws.
/// </summary>
public static class IcsParser
{
    /// <summary>Parses a calendar from its bytes (UTF-8 unless a BOM or the charset says otherwise).</summary>
    /// <param name="stream">The document.</param>
    /// <param name="settings">The window, zones and limits.</param>
    /// <returns>The events and rejections. The whole document is checked before the first result.</returns>
    public static IEnumerable<IcsParseResult> Parse(Stream stream, IcsParseSettings settings)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(settings);
        var describe = Describe(settings);
        Encoding encoding;
        try
        {
            encoding = settings.Charset is { Length: > 0 } charset ? XmlTextDecoding.Resolve(charset.Trim().Trim('"'), describe, "the Content-Type charset") : Strict(Encoding.UTF8);
        }
        catch (IngestionException e)
        {
            throw new IngestionException(e.Message, e) { SourceName = settings.SourceName, Field = "charset" };
        }

        // A fold inside a UTF-8 character (Outlook folds at 75 octets) is repaired before decoding, which would refuse it.
        var bytes = encoding.CodePage == Encoding.UTF8.CodePage ? new FoldRepairStream(stream) : stream;
        using var reader = new StreamReader(bytes, encoding, detectEncodingFromByteOrderMarks: true, bufferSize: 16 * 1024, leaveOpen: true);
        return Parse(reader, settings);
    }

    /// <summary>Parses a calendar from its text.</summary>
    /// <param name="reader">The document text.</param>
    /// <param name="settings">The window, zones and limits.</param>
    /// <returns>The events and rejections. The whole document is checked before the first result.</returns>
    public static IEnumerable<IcsParseResult> Parse(TextReader reader, IcsParseSettings settings)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.WindowEnd <= settings.WindowStart)
        {
            throw new ArgumentException("The window end must be after its start.", nameof(settings));
        }

        List<IcsComponent> calendars;
        var document = new IcsDocumentReader(reader, Describe(settings));
        try
        {
            calendars = document.ReadCalendars(settings.MaxComponents);
        }
        catch (IngestionException e)
        {
            throw new IngestionException(e.Message, e) { SourceName = settings.SourceName, Position = e.Position };
        }
        catch (DecoderFallbackException e)
        {
            throw new IngestionException($"{Describe(settings)}: the document has bytes that are invalid in its encoding (UTF-8 unless the Content-Type charset says otherwise).", e)
            {
                SourceName = settings.SourceName,
                Field = "charset",
            };
        }

        return new Mapper(settings).Map(calendars);
    }

    private static Encoding Strict(Encoding encoding)
    {
        var strict = (Encoding)encoding.Clone();
        strict.DecoderFallback = DecoderFallback.ExceptionFallback;
        return strict;
    }

    private static string Describe(IcsParseSettings settings) => $"Source '{settings.SourceName}'";

    private sealed class EventRejectedException(int line, string? field, string message, string? raw) : Exception(message)
    {
        public int Line { get; } = line;

        public string? Field { get; } = field;

        public string? Raw { get; } = raw;
    }

    /// <summary>An event component read and resolved, before expansion.</summary>
    private sealed class EventData
    {
        public required IcsComponent Component { get; init; }

        public required string Uid { get; init; }

        public required IcsDateTime Start { get; init; }

        public required IcsZone Zone { get; init; }

        public IcsDateTime? End { get; init; }

        public IcsZone? EndZone { get; init; }

        public IcsDuration? Duration { get; init; }

        public RecurrenceRule? Rule { get; init; }

        public string? RuleText { get; init; }

        public List<DateTime> RDates { get; } = [];

        public HashSet<string> ExDates { get; } = new(StringComparer.Ordinal);

        public string? RecurrenceKey { get; init; }

        public bool Cancelled { get; init; }

        public bool IsRecurring => Rule is not null || RDates.Count > 0;
    }

    private sealed class Mapper(IcsParseSettings settings)
    {
        private readonly IcsZoneResolver _zones = new();
        private readonly IcsZone _floating = new SystemIcsZone(settings.FloatingTimeZone);
        private readonly IcsZone _utc = new SystemIcsZone(TimeZoneInfo.Utc);

        public IEnumerable<IcsParseResult> Map(List<IcsComponent> calendars)
        {
            foreach (var zone in calendars.SelectMany(c => c.Children).Where(c => c.Name == "VTIMEZONE"))
            {
                _zones.Define(zone);
            }

            // Group the VEVENTs by UID (first appearance order): masters and their overridden instances.
            var groups = new Dictionary<string, (List<IcsComponent> Masters, List<IcsComponent> Overrides, bool CancelAll)>(StringComparer.Ordinal);
            var order = new List<string>();
            foreach (var calendar in calendars)
            {
                var cancelAll = string.Equals(calendar.Property("METHOD")?.Value.Trim(), "CANCEL", StringComparison.OrdinalIgnoreCase);
                foreach (var component in calendar.Children.Where(c => c.Name == "VEVENT"))
                {
                    var uid = component.Property("UID")?.Value.Trim();
                    if (component.Errors.Count > 0)
                    {
                        var (line, reason, raw) = component.Errors[0];
                        yield return Reject(line, null, $"event '{uid ?? "(no UID)"}' (VEVENT of line {component.Line}) has a line that cannot be read: {reason}", raw);
                        continue;
                    }

                    if (string.IsNullOrEmpty(uid))
                    {
                        yield return Reject(component.Line, "UID", $"the VEVENT of line {component.Line} has no UID to key it by", null);
                        continue;
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
                var overridden = new HashSet<string>(StringComparer.Ordinal);
                var overrideData = new List<EventData>();
                foreach (var component in overrides)
                {
                    var (data, rejected) = Read(component, uid, cancelAll);
                    if (rejected is not null)
                    {
                        yield return rejected;
                        continue;
                    }

                    overridden.Add(data!.RecurrenceKey!);
                    overrideData.Add(data);
                }

                foreach (var component in masters)
                {
                    var (data, rejected) = Read(component, uid, cancelAll);
                    if (rejected is not null)
                    {
                        yield return rejected;
                        continue;
                    }

                    foreach (var result in Instances(data!, overridden))
                    {
                        yield return result;
                    }
                }

                foreach (var data in overrideData)
                {
                    yield return new IcsParseResult(Build(data, data.Start.Local, data.RecurrenceKey, isRecurring: true), null);
                }
            }
        }

        private IcsParseResult Reject(int line, string? field, string reason, string? raw) =>
            new(null, new RejectedRecord(string.Create(CultureInfo.InvariantCulture, $"line {line}"), field, $"{Describe(settings)}: {reason}.", raw));

        private (EventData? Data, IcsParseResult? Rejected) Read(IcsComponent component, string uid, bool cancelAll)
        {
            try
            {
                return (ReadCore(component, uid, cancelAll), null);
            }
            catch (EventRejectedException e)
            {
                return (null, Reject(e.Line, e.Field, $"event '{uid}' (VEVENT of line {component.Line}): {e.Message}", e.Raw));
            }
        }

        private EventData ReadCore(IcsComponent c, string uid, bool cancelAll)
        {
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
                var value = DateValue(rid);
                recurrenceKey = Key(value.IsDate, value.IsUtc ? value.Local : ZoneOf(value, rid).ToUtc(value.Local), value.Local);
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

        private IEnumerable<IcsParseResult> Instances(EventData data, HashSet<string> overridden)
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
                if (data.ExDates.Contains(key) || data.ExDates.Contains(Key(true, local, local)) || overridden.Contains(key))
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

            var why = _zones.Broken.TryGetValue(tzid, out var broken)
                ? $"its VTIMEZONE cannot be used ({broken}) and it is neither an IANA nor a Windows time zone name"
                : "no VTIMEZONE of the calendar defines it and it is neither an IANA nor a Windows time zone name";
            throw new EventRejectedException(p.Line, p.Name, $"unknown time zone '{tzid}' (TZID of {p.Name}): {why}", tzid);
        }

        private static DateTime ToUtc(IcsDateTime value, IcsZone zone) => value.IsUtc ? value.Local : zone.ToUtc(value.Local);

        private static string Key(bool isDate, DateTime utc, DateTime local) =>
            isDate ? local.ToString("yyyyMMdd", CultureInfo.InvariantCulture) : utc.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
    }
}
