using Ingestion.Sources.Ics;

namespace Ingestion.Sources.Tests.Ics;

/// <summary>Calendars shaped as Outlook/Exchange, Google, Apple and Zimbra write them (issue 17, ICS).</summary>
public class IcsRealWorldTests
{
    private static readonly IcsParseSettings Settings = new()
    {
        SourceName = "agenda",
        WindowStart = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero),
        WindowEnd = new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero),
    };

    /// <summary>A calendar of the given lines (CRLF), wrapped in VCALENDAR.</summary>
    private static List<IcsParseResult> Parse(params string[] lines) =>
        IcsParser.Parse(new StringReader(Calendar(lines)), Settings).ToList();

    private static string Calendar(params string[] lines) =>
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n" + string.Join("\r\n", lines) + "\r\nEND:VCALENDAR\r\n";

    private static List<CalendarEvent> Events(List<IcsParseResult> results) => results.Where(r => r.Event is not null).Select(r => r.Event!).ToList();

    private static string[] Event(params string[] properties) => ["BEGIN:VEVENT", .. properties, "END:VEVENT"];

    private static DateTimeOffset Utc(int y, int mo, int d, int h = 0, int mi = 0) => new(y, mo, d, h, mi, 0, TimeSpan.Zero);

    [Fact]
    public void The_highest_SEQUENCE_wins_whatever_the_order_in_the_file()
    {
        var results = Parse(
            [.. Event("UID:meeting@x", "SEQUENCE:2", "DTSTAMP:20260101T000000Z", "DTSTART:20260301T150000Z", "SUMMARY:Moved to 15:00"),
             .. Event("UID:meeting@x", "SEQUENCE:0", "DTSTAMP:20260301T000000Z", "DTSTART:20260301T130000Z", "SUMMARY:First"),
             .. Event("UID:meeting@x", "SEQUENCE:1", "DTSTAMP:20260201T000000Z", "DTSTART:20260301T140000Z", "SUMMARY:Second")]);

        var e = Assert.Single(Events(results));
        Assert.Equal("Moved to 15:00", e.Summary);
        Assert.Equal(Utc(2026, 3, 1, 15), e.Start);
        Assert.Equal(2, e.Sequence);
        Assert.DoesNotContain(results, r => r.Rejected is not null);
    }

    [Fact]
    public void At_equal_SEQUENCE_the_latest_DTSTAMP_then_LAST_MODIFIED_wins()
    {
        var byStamp = Events(Parse(
            [.. Event("UID:a@x", "DTSTAMP:20260210T000000Z", "DTSTART:20260301T150000Z", "SUMMARY:Newer"),
             .. Event("UID:a@x", "DTSTAMP:20260201T000000Z", "DTSTART:20260301T130000Z", "SUMMARY:Older")]));
        Assert.Equal("Newer", Assert.Single(byStamp).Summary);

        var byModified = Events(Parse(
            [.. Event("UID:b@x", "SEQUENCE:3", "DTSTAMP:20260201T000000Z", "LAST-MODIFIED:20260220T000000Z", "DTSTART:20260301T150000Z", "SUMMARY:Edited"),
             .. Event("UID:b@x", "SEQUENCE:3", "DTSTAMP:20260201T000000Z", "LAST-MODIFIED:20260205T000000Z", "DTSTART:20260301T130000Z", "SUMMARY:Before")]));
        Assert.Equal("Edited", Assert.Single(byModified).Summary);
    }

    [Fact]
    public void An_unreadable_newest_version_is_rejected_and_no_older_version_takes_its_place()
    {
        var results = Parse(
            [.. Event("UID:m@x", "SEQUENCE:2", "DTSTART;TZID=\"Eastern:20260301T150000", "SUMMARY:Newest"),
             .. Event("UID:m@x", "SEQUENCE:1", "DTSTART:20260301T130000Z", "SUMMARY:Older")]);

        Assert.Empty(Events(results));
        var rejected = Assert.Single(results, r => r.Rejected is not null).Rejected!;
        Assert.Equal("line 7", rejected.Position);
        Assert.Contains("m@x", rejected.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_recurring_series_sent_twice_is_expanded_once_from_its_newest_version()
    {
        var events = Events(Parse(
            [.. Event("UID:weekly@x", "SEQUENCE:1", "DTSTART:20260105T160000Z", "RRULE:FREQ=WEEKLY;COUNT=3", "SUMMARY:At 16:00"),
             .. Event("UID:weekly@x", "SEQUENCE:0", "DTSTART:20260105T150000Z", "RRULE:FREQ=WEEKLY;COUNT=3", "SUMMARY:At 15:00")]));

        Assert.Equal(["weekly@x/20260105T160000Z", "weekly@x/20260112T160000Z", "weekly@x/20260119T160000Z"], events.Select(e => e.SourceId));
        Assert.All(events, e => Assert.Equal("At 16:00", e.Summary));
    }

    [Fact]
    public void Of_two_versions_of_one_override_the_newest_replaces_the_instance()
    {
        var events = Events(Parse(
            [.. Event("UID:s@x", "DTSTART:20260105T150000Z", "RRULE:FREQ=DAILY;COUNT=3", "SUMMARY:Series"),
             .. Event("UID:s@x", "RECURRENCE-ID:20260106T150000Z", "SEQUENCE:2", "DTSTART:20260106T170000Z", "SUMMARY:Moved twice"),
             .. Event("UID:s@x", "RECURRENCE-ID:20260106T150000Z", "SEQUENCE:1", "DTSTART:20260106T160000Z", "SUMMARY:Moved once")]));

        Assert.Equal(3, events.Count);
        var moved = Assert.Single(events, e => e.SourceId == "s@x/20260106T150000Z");
        Assert.Equal("Moved twice", moved.Summary);
        Assert.Equal(Utc(2026, 1, 6, 17), moved.Start);
    }

    [Fact]
    public void An_all_day_instance_moved_by_Exchange_or_Google_appears_only_at_its_new_date()
    {
        // Exchange names the instance of an all-day series by a DATE-TIME at midnight in its zone; Google by a DATE.
        var events = Events(Parse(
            [.. Event("UID:allday@x", "DTSTART;VALUE=DATE:20260105", "DTEND;VALUE=DATE:20260106", "RRULE:FREQ=DAILY;COUNT=5", "SUMMARY:Camp"),
             .. Event("UID:allday@x", "RECURRENCE-ID;TZID=Eastern Standard Time:20260107T000000", "DTSTART;VALUE=DATE:20260110", "DTEND;VALUE=DATE:20260111", "SUMMARY:Camp (moved)"),
             .. Event("UID:allday@x", "RECURRENCE-ID;VALUE=DATE:20260108", "DTSTART;VALUE=DATE:20260112", "DTEND;VALUE=DATE:20260113", "SUMMARY:Camp (moved too)")]));

        Assert.Equal(["allday@x/20260105", "allday@x/20260106", "allday@x/20260107", "allday@x/20260108", "allday@x/20260109"], events.Select(e => e.SourceId).Order(StringComparer.Ordinal));
        Assert.Equal(Utc(2026, 1, 10), events.Single(e => e.SourceId == "allday@x/20260107").Start);
        Assert.Equal(Utc(2026, 1, 12), events.Single(e => e.SourceId == "allday@x/20260108").Start);
        Assert.DoesNotContain(events, e => e.Start == Utc(2026, 1, 7) || e.Start == Utc(2026, 1, 8));
    }

    [Fact]
    public void An_override_in_another_time_zone_or_floating_replaces_the_instance_it_names()
    {
        var events = Events(Parse(
            [.. Event("UID:tz@x", "DTSTART;TZID=America/New_York:20260105T090000", "DTEND;TZID=America/New_York:20260105T100000", "RRULE:FREQ=WEEKLY;COUNT=3", "SUMMARY:Standup"),
             .. Event("UID:tz@x", "RECURRENCE-ID;TZID=Europe/Paris:20260112T150000", "DTSTART;TZID=Europe/Paris:20260113T150000", "DTEND;TZID=Europe/Paris:20260113T160000", "SUMMARY:Standup (Paris)"),
             .. Event("UID:tz@x", "RECURRENCE-ID:20260119T090000", "DTSTART;TZID=America/New_York:20260120T090000", "SUMMARY:Standup (floating id)")]));

        Assert.Equal(["tz@x/20260105T140000Z", "tz@x/20260112T140000Z", "tz@x/20260119T140000Z"], events.Select(e => e.SourceId).Order(StringComparer.Ordinal));
        Assert.Equal(Utc(2026, 1, 13, 14), events.Single(e => e.SourceId == "tz@x/20260112T140000Z").Start);
        Assert.Equal(Utc(2026, 1, 20, 14), events.Single(e => e.SourceId == "tz@x/20260119T140000Z").Start);
    }

    [Fact]
    public void Events_without_a_UID_get_a_stable_key_from_their_content()
    {
        string[] lines =
        [
            .. Event("DTSTART:20260301T190000Z", "SUMMARY:Concert", "LOCATION:Parc"),
            .. Event("DTSTART:20260302T190000Z", "SUMMARY:Concert", "LOCATION:Parc"),
        ];
        var first = Events(Parse(lines));
        var again = Events(Parse(lines));

        Assert.Equal(2, first.Count);
        Assert.All(first, e => Assert.StartsWith("nouid-", e.SourceId, StringComparison.Ordinal));
        Assert.NotEqual(first[0].SourceId, first[1].SourceId);
        Assert.Equal(first.Select(e => e.SourceId), again.Select(e => e.SourceId));
        Assert.Equal(first[0].SourceId, first[0].Uid);
    }

    [Fact]
    public void An_unreadable_ORGANIZER_ATTENDEE_or_alarm_line_is_dropped_with_a_warning_and_the_event_kept()
    {
        var results = Parse(
        [
            "BEGIN:VEVENT",
            "UID:party@x",
            "DTSTART:20260301T190000Z",
            "SUMMARY:Party",
            "ORGANIZER;CN=\"Smith, John:mailto:john@example.org",
            "ATTENDEE;CN=Doe; Jane:mailto:jane@example.org",
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "TRIGGER -PT15M",
            "END:VEVENT",
        ]);

        var e = Assert.Single(Events(results));
        Assert.Equal("Party", e.Summary);
        Assert.Null(e.Organizer);
        Assert.DoesNotContain(results, r => r.Rejected is not null);
        var warnings = results.Select(r => r.Warning).OfType<string>().ToList();
        Assert.Equal(4, warnings.Count);
        Assert.Contains(warnings, w => w.Contains("line 8 'ORGANIZER", StringComparison.Ordinal) && w.Contains("party@x", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("line 9 'ATTENDEE", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("TRIGGER -PT15M", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("VALARM is not closed", StringComparison.Ordinal));
    }

    [Fact]
    public void A_TZID_with_escapes_or_quotes_matches_its_VTIMEZONE()
    {
        var events = Events(Parse(
            "BEGIN:VTIMEZONE",
            "TZID:(UTC+05:30) Chennai\\, Kolkata\\, Mumbai\\, New Delhi (custom)",
            "BEGIN:STANDARD",
            "DTSTART:16010101T000000",
            "TZOFFSETFROM:+0530",
            "TZOFFSETTO:+0530",
            "END:STANDARD",
            "END:VTIMEZONE",
            "BEGIN:VEVENT",
            "UID:india@x",
            "DTSTART;TZID=\"(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi (custom)\":20260301T100000",
            "END:VEVENT"));

        Assert.Equal(Utc(2026, 3, 1, 4, 30), Assert.Single(events).Start);
    }

    [Theory]
    [InlineData("\"(UTC-05:00) Eastern Time (US & Canada)\"", 14)]
    [InlineData("Eastern Standard Time", 14)]
    [InlineData("\"(GMT+01.00) Amsterdam / Berlin / Bern / Rome / Stockholm / Vienna\"", 8)]
    [InlineData("\"(UTC+01:00) Brussels, Copenhagen, Madrid, Paris\"", 8)]
    public void Windows_zone_ids_and_display_names_without_a_VTIMEZONE_map_to_IANA(string tzid, int utcHour)
    {
        var events = Events(Parse(Event("UID:w@x", $"DTSTART;TZID={tzid}:20260115T090000")));
        Assert.Equal(Utc(2026, 1, 15, utcHour), Assert.Single(events).Start);
    }

    [Fact]
    public void A_blank_or_indented_line_before_BEGIN_VCALENDAR_is_tolerated()
    {
        var text = "\r\n \r\n" + Calendar(Event("UID:first@x", "DTSTART:20260301T190000Z"));
        var e = Assert.Single(IcsParser.Parse(new StringReader(text), Settings)).Event;
        Assert.Equal("first@x", e!.Uid);
    }

    [Fact]
    public void DTSTART_given_twice_rejects_the_event_with_the_reason()
    {
        var results = Parse(
        [
            .. Event("UID:twice@x", "DTSTART:20260301T190000Z", "DTSTART:20260302T190000Z", "SUMMARY:Which day?"),
            .. Event("UID:fine@x", "DTSTART:20260301T190000Z"),
        ]);

        Assert.Equal("fine@x", Assert.Single(Events(results)).Uid);
        var rejected = Assert.Single(results, r => r.Rejected is not null).Rejected!;
        Assert.Equal("DTSTART", rejected.Field);
        Assert.Equal("line 7", rejected.Position);
        Assert.Contains("DTSTART is given twice (lines 6 and 7", rejected.Reason, StringComparison.Ordinal);
        Assert.Contains("twice@x", rejected.Reason, StringComparison.Ordinal);
    }
}
