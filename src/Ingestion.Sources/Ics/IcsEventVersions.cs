using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Ingestion.Sources.Ics;

/// <summary>
/// What the mapper decides about a VEVENT before reading it: which of several versions of one event wins, the key
/// of an event without a UID, which unreadable lines cost the event and which are dropped, and properties that
/// RFC 5545 allows once.
/// </summary>
internal static class IcsEventVersions
{
    /// <summary>The prefix of the key given to an event without a UID.</summary>
    public const string ContentKeyPrefix = "nouid-";

    /// <summary>Properties the event's identity, time or text depends on: an unreadable one rejects the event.</summary>
    private static readonly HashSet<string> Essential = new(StringComparer.Ordinal)
    {
        "UID", "DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID", "SEQUENCE", "DTSTAMP",
        "LAST-MODIFIED", "SUMMARY", "DESCRIPTION", "LOCATION", "STATUS", "URL", "CATEGORIES",
    };

    /// <summary>Properties RFC 5545 allows once in a VEVENT and that decide when it happens.</summary>
    private static readonly string[] Once = ["DTSTART", "DTEND", "DURATION", "RECURRENCE-ID"];

    /// <summary>
    /// The newest of several versions of one event (same UID, same or no RECURRENCE-ID): the highest SEQUENCE (none is
    /// 0), then the latest DTSTAMP, then the latest LAST-MODIFIED, then the last in the file.
    /// </summary>
    public static IcsComponent? Newest(List<IcsComponent> versions)
    {
        IcsComponent? best = null;
        foreach (var v in versions)
        {
            if (best is null || Compare(Version(v), Version(best)) >= 0)
            {
                best = v;
            }
        }

        return best;
    }

    /// <summary>Whether <paramref name="candidate"/> is newer than <paramref name="current"/> (a tie goes to the later in <paramref name="order"/>).</summary>
    public static bool IsNewer(IcsComponent candidate, IcsComponent current, List<IcsComponent> order)
    {
        var c = Compare(Version(candidate), Version(current));
        return c > 0 || (c == 0 && order.IndexOf(candidate) > order.IndexOf(current));
    }

    /// <summary>
    /// A stable key for an event without a UID, from what identifies it to a reader: DTSTART (value and TZID), SUMMARY
    /// and LOCATION as written. The same event exported again gets the same key; two events alike in all three are one.
    /// </summary>
    public static string ContentKey(IcsComponent component)
    {
        var start = component.Property("DTSTART");
        var text = string.Join('\n',
            start?.Param("TZID") ?? string.Empty,
            start?.Value.Trim() ?? string.Empty,
            component.Property("SUMMARY")?.Value.Trim() ?? string.Empty,
            component.Property("LOCATION")?.Value.Trim() ?? string.Empty);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(text));
        return ContentKeyPrefix + Convert.ToHexStringLower(hash.AsSpan(0, 16));
    }

    /// <summary>
    /// Splits the unreadable lines of an event: the first one of an <see cref="Essential"/> property (or without a
    /// readable name) rejects the event; the others (ORGANIZER, ATTENDEE, X- properties, lines of a VALARM) are dropped.
    /// </summary>
    public static ((int Line, string Reason, string Raw)? Fatal, List<(int Line, string Reason, string Raw)> Dropped) SortErrors(IcsComponent component)
    {
        var dropped = new List<(int Line, string Reason, string Raw)>();
        foreach (var error in component.Errors)
        {
            var name = NameOf(error.Raw);
            if (name.Length == 0 || Essential.Contains(name))
            {
                return (error, dropped);
            }

            dropped.Add(error);
        }

        foreach (var alarm in component.Children.Where(c => c.Name == "VALARM"))
        {
            dropped.AddRange(alarm.Errors);
        }

        return (null, dropped);
    }

    /// <summary>Rejects an event that gives twice a property RFC 5545 allows once (DTSTART, DTEND, DURATION, RECURRENCE-ID).</summary>
    public static void RefuseRepeated(IcsComponent component)
    {
        foreach (var name in Once)
        {
            var all = component.All(name).Take(2).ToList();
            if (all.Count == 2)
            {
                throw new EventRejectedException(all[1].Line, name, string.Create(CultureInfo.InvariantCulture,
                    $"{name} is given twice (lines {all[0].Line} and {all[1].Line}: '{all[0].Value}' and '{all[1].Value}'), and RFC 5545 allows it once"), all[1].Value);
            }
        }
    }

    private static (int Sequence, DateTime Stamp, DateTime Modified) Version(IcsComponent c) =>
        (int.TryParse(c.Property("SEQUENCE")?.Value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0,
         Instant(c.Property("DTSTAMP")),
         Instant(c.Property("LAST-MODIFIED")));

    private static int Compare((int Sequence, DateTime Stamp, DateTime Modified) a, (int Sequence, DateTime Stamp, DateTime Modified) b)
    {
        var c = a.Sequence.CompareTo(b.Sequence);
        if (c == 0)
        {
            c = a.Stamp.CompareTo(b.Stamp);
        }

        return c != 0 ? c : a.Modified.CompareTo(b.Modified);
    }

    private static DateTime Instant(IcsProperty? p) =>
        p is not null && IcsValues.TryParseDateTime(p.Value, false, null, out var v) ? v.Local : DateTime.MinValue;

    private static string NameOf(string raw)
    {
        var end = raw.AsSpan().IndexOfAny(';', ':');
        var name = (end < 0 ? raw : raw[..end]).Trim().ToUpperInvariant();
        return name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '-') ? name : string.Empty;
    }
}
