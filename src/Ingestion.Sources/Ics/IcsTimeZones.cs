namespace Ingestion.Sources.Ics;

/// <summary>A time zone as the calendar uses it: the offset in force at an instant, and wall-clock to UTC.</summary>
internal abstract class IcsZone
{
    public abstract string Id { get; }

    /// <summary>The UTC offset in force at a UTC instant.</summary>
    public abstract TimeSpan OffsetAt(DateTime utc);

    /// <summary>
    /// Converts a wall-clock time to UTC as RFC 5545 3.3.5 says: a time that occurs twice (fall back)
    /// is the first occurrence; a time that does not exist (spring forward) uses the offset before the gap.
    /// </summary>
    public DateTime ToUtc(DateTime local)
    {
        var l = DateTime.SpecifyKind(local, DateTimeKind.Utc);
        var before = OffsetAt(Shift(l, -1));
        var after = OffsetAt(Shift(l, 1));
        if (Valid(l, before))
        {
            return l - before;
        }

        return Valid(l, after) ? l - after : l - before;
    }

    private bool Valid(DateTime l, TimeSpan offset) => OffsetAt(l - offset) == offset;

    private static DateTime Shift(DateTime l, int days) =>
        days < 0 ? (l.Date > DateTime.MinValue.AddDays(2) ? l.AddDays(days) : l) : (l.Date < DateTime.MaxValue.AddDays(-2) ? l.AddDays(days) : l);
}

/// <summary>A zone of the operating system's database (IANA names, or Windows names through ICU).</summary>
internal sealed class SystemIcsZone(TimeZoneInfo zone) : IcsZone
{
    public override string Id => zone.Id;

    public override TimeSpan OffsetAt(DateTime utc) => zone.GetUtcOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc));
}

/// <summary>
/// A zone defined by a VTIMEZONE component: STANDARD and DAYLIGHT observances, each with its onset
/// (DTSTART, in the offset before it), TZOFFSETFROM, TZOFFSETTO, and an RRULE or RDATEs.
/// Onsets are expanded on demand and cached per instance.
/// </summary>
internal sealed class VTimeZoneIcsZone : IcsZone
{
    private readonly List<Observance> _observances;

    private VTimeZoneIcsZone(string id, List<Observance> observances)
    {
        Id = id;
        _observances = observances;
    }

    public override string Id { get; }

    /// <summary>Builds the zone, or explains why the component does not define one.</summary>
    public static VTimeZoneIcsZone? TryCreate(IcsComponent component, out string tzid, out string reason)
    {
        tzid = component.Property("TZID")?.Value.Trim() ?? string.Empty;
        reason = string.Empty;
        if (tzid.Length == 0)
        {
            reason = "VTIMEZONE has no TZID";
            return null;
        }

        var observances = new List<Observance>();
        foreach (var child in component.Children.Where(c => c.Name is "STANDARD" or "DAYLIGHT"))
        {
            var start = child.Property("DTSTART");
            var from = child.Property("TZOFFSETFROM");
            var to = child.Property("TZOFFSETTO");
            if (start is null || !IcsValues.TryParseDateTime(start, out var dtStart) || from is null || !IcsValues.TryParseOffset(from.Value, out var fromOffset)
                || to is null || !IcsValues.TryParseOffset(to.Value, out var toOffset))
            {
                reason = $"the {child.Name} observance of line {child.Line} lacks a valid DTSTART, TZOFFSETFROM or TZOFFSETTO";
                return null;
            }

            RecurrenceRule? rule = null;
            if (child.Property("RRULE") is { } rrule && !RecurrenceRule.TryParse(rrule.Value, out rule, out var ruleReason))
            {
                reason = $"the {child.Name} observance of line {child.Line} has an RRULE that cannot be expanded: {ruleReason}";
                return null;
            }

            var rdates = new List<DateTime>();
            foreach (var rdate in child.All("RDATE"))
            {
                if (!IcsValues.TryParseList(rdate, out var values))
                {
                    reason = $"the RDATE of line {rdate.Line} is not a list of dates";
                    return null;
                }

                rdates.AddRange(values.Select(v => v.IsUtc ? v.Local + fromOffset : v.Local));
            }

            observances.Add(new Observance(dtStart.Local, fromOffset, toOffset, rule, rdates));
        }

        if (observances.Count == 0)
        {
            reason = "VTIMEZONE has no STANDARD or DAYLIGHT observance";
            return null;
        }

        return new VTimeZoneIcsZone(tzid, observances);
    }

    public override TimeSpan OffsetAt(DateTime utc)
    {
        DateTime? bestOnset = null;
        var offset = TimeSpan.Zero;
        foreach (var o in _observances)
        {
            if (o.LatestOnsetAtOrBefore(utc) is { } onset && (bestOnset is null || onset > bestOnset))
            {
                bestOnset = onset;
                offset = o.To;
            }
        }

        if (bestOnset is null)
        {
            // Before every onset: the offset the earliest observance changes from.
            offset = _observances.MinBy(o => o.Start)!.From;
        }

        return offset;
    }

    private sealed class Observance(DateTime start, TimeSpan from, TimeSpan to, RecurrenceRule? rule, List<DateTime> rdates)
    {
        private List<DateTime> _onsets = [];
        private int _expandedThroughYear;

        public DateTime Start { get; } = start;

        public TimeSpan From { get; } = from;

        public TimeSpan To { get; } = to;

        public DateTime? LatestOnsetAtOrBefore(DateTime utc)
        {
            if (utc.Year + 1 > _expandedThroughYear)
            {
                Expand(Math.Min(9998, utc.Year + 20));
            }

            var index = _onsets.BinarySearch(utc);
            if (index >= 0)
            {
                return _onsets[index];
            }

            index = ~index - 1;
            return index >= 0 ? _onsets[index] : null;
        }

        private void Expand(int throughYear)
        {
            var horizon = new DateTime(throughYear, 12, 31, 23, 59, 59, DateTimeKind.Unspecified);
            var locals = new List<DateTime>(rdates) { Start };
            if (rule is not null)
            {
                locals.AddRange(RecurrenceExpander.Expand(rule, Start, l => l - From, horizon));
            }

            _onsets = locals.Where(l => l <= horizon).Select(l => DateTime.SpecifyKind(l - From, DateTimeKind.Utc)).Distinct().Order().ToList();
            _expandedThroughYear = throughYear;
        }
    }
}

/// <summary>Resolves TZIDs: the calendar's own VTIMEZONEs first, then IANA and Windows names.</summary>
internal sealed class IcsZoneResolver
{
    private readonly Dictionary<string, IcsZone> _defined = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, IcsZone?> _cache = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>VTIMEZONE components that could not be read, with the reason (reported when an event uses them).</summary>
    public Dictionary<string, string> Broken { get; } = new(StringComparer.OrdinalIgnoreCase);

    public void Define(IcsComponent vtimezone)
    {
        var zone = VTimeZoneIcsZone.TryCreate(vtimezone, out var tzid, out var reason);
        tzid = Canonical(tzid);
        if (zone is not null)
        {
            _defined[tzid] = zone;
        }
        else if (tzid.Length > 0)
        {
            Broken[tzid] = reason;
        }
    }

    /// <summary>
    /// A TZID as compared between a property parameter and its VTIMEZONE: without surrounding quotes and spaces, and
    /// with the RFC 5545 text escapes (<c>\,</c> <c>\;</c> <c>\\</c>) undone, as exporters apply them on one side only.
    /// </summary>
    public static string Canonical(string tzid)
    {
        var t = tzid.Trim().Trim('"').Trim();
        return t.Contains('\\', StringComparison.Ordinal) ? IcsText.Unescape(t) : t;
    }

    /// <summary>Whether a VTIMEZONE of the calendar named <paramref name="tzid"/> could not be read, and why.</summary>
    public bool IsBroken(string tzid, out string reason) => Broken.TryGetValue(Canonical(tzid), out reason!);

    public bool TryResolve(string tzid, out IcsZone zone)
    {
        tzid = Canonical(tzid);
        if (!_cache.TryGetValue(tzid, out var found))
        {
            found = Find(tzid);
            _cache[tzid] = found;
        }

        zone = found!;
        return found is not null;
    }

    private IcsZone? Find(string tzid)
    {
        if (_defined.TryGetValue(tzid, out var defined))
        {
            return defined;
        }

        if (TryFindSystem(tzid) is { } system)
        {
            return new SystemIcsZone(system);
        }

        if (IcsWindowsZones.FromDisplayName(tzid) is { } display)
        {
            return new SystemIcsZone(display);
        }

        // Vendor-prefixed names such as "/mozilla.org/20050126_1/America/Toronto" or "/softwarestudio.org/Olson_20011030_5/America/Toronto".
        var parts = tzid.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (var take = Math.Min(3, parts.Length - 1); take >= 1; take--)
        {
            if (TryFindSystem(string.Join('/', parts[^take..])) is { } suffix)
            {
                return new SystemIcsZone(suffix);
            }
        }

        return null;
    }

    private static TimeZoneInfo? TryFindSystem(string id)
    {
        // Zone names map to files of the system's zone database: never let a calendar name a path.
        if (id.Length is 0 or > 64 || id.Contains("..", StringComparison.Ordinal) || id.StartsWith('/')
            || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '_' or '-' or '+' or ' ' or '.' or '(' or ')'))
        {
            return null;
        }

        if (TimeZoneInfo.TryFindSystemTimeZoneById(id, out var zone))
        {
            return zone;
        }

        return TimeZoneInfo.TryConvertWindowsIdToIanaId(id, out var iana) && TimeZoneInfo.TryFindSystemTimeZoneById(iana, out zone) ? zone : null;
    }
}
