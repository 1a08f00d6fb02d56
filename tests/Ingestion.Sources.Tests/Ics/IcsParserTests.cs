using System.Text;
using Ingestion.Sources.Ics;
using Ingestion.Sources.Tests.Feeds;

namespace Ingestion.Sources.Tests.Ics;

public class IcsParserTests
{
    private static readonly TimeZoneInfo Toronto = TimeZoneInfo.FindSystemTimeZoneById("America/Toronto");

    private static IcsParseSettings Settings(TimeZoneInfo? floating = null) => new()
    {
        SourceName = "agenda",
        WindowStart = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero),
        WindowEnd = new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero),
        FloatingTimeZone = floating ?? TimeZoneInfo.Utc,
    };

    private static List<IcsParseResult> ParseFile(string name, IcsParseSettings? settings = null)
    {
        using var stream = File.OpenRead(FeedFixtures.Calendar(name));
        return IcsParser.Parse(stream, settings ?? Settings()).ToList();
    }

    private static List<IcsParseResult> ParseText(string text, IcsParseSettings? settings = null) =>
        IcsParser.Parse(new StringReader(text), settings ?? Settings()).ToList();

    private static DateTimeOffset Utc(int y, int mo, int d, int h, int mi = 0) => new(y, mo, d, h, mi, 0, TimeSpan.Zero);

    [Fact]
    public void Single_events_resolve_to_utc_with_unfolding_escaping_and_zones()
    {
        var results = ParseFile("basic.ics");
        var events = results.Where(r => r.Event is not null).Select(r => r.Event!).ToDictionary(e => e.SourceId);
        Assert.Equal(7, events.Count);

        var council = events["single-tz@example.org"];
        Assert.Equal("single-tz@example.org", council.Uid);
        Assert.Null(council.RecurrenceId);
        Assert.Equal(Utc(2026, 4, 15, 23), council.Start);
        Assert.Equal(Utc(2026, 4, 16, 0, 30), council.End);
        Assert.Equal(new DateTime(2026, 4, 15, 19, 0, 0), council.LocalStart);
        Assert.Equal("America/Toronto", council.TimeZone);
        Assert.Equal("Conseil municipal, séance ordinaire", council.Summary);
        Assert.Equal("Ordre du jour:\n1. Ouverture\n2. Période de questions; publication en ligne", council.Description);
        Assert.Equal("Hôtel de ville, 275 rue Notre-Dame Est", council.Location);
        Assert.Equal(["Politique", "Municipal", "Montréal"], council.CategoryList);
        Assert.Equal("greffe@example.org", council.Organizer);
        Assert.Equal(2, council.Sequence);
        Assert.Equal(Utc(2026, 3, 1, 12), council.LastModified);
        Assert.Equal("https://example.org/events/1", council.Url);
        Assert.False(council.IsCancelled);
        Assert.False(council.IsRecurring);

        Assert.Equal(Utc(2026, 5, 1, 14), events["utc@example.org"].Start);
        Assert.Equal(Utc(2026, 5, 1, 15, 30), events["utc@example.org"].End);

        var floating = events["floating@example.org"];
        Assert.True(floating.IsFloating);
        Assert.Equal(Utc(2026, 5, 2, 9), floating.Start);

        var allDay = events["allday@example.org"];
        Assert.True(allDay.IsAllDay);
        Assert.Equal(Utc(2026, 6, 24, 0), allDay.Start);
        Assert.Equal(Utc(2026, 6, 25, 0), allDay.End);

        var cancelled = events["cancelled@example.org"];
        Assert.True(cancelled.IsCancelled);
        Assert.Equal("CANCELLED", cancelled.Status);
        Assert.Equal(Utc(2026, 7, 10, 14), cancelled.Start);

        Assert.Equal(Utc(2026, 1, 15, 14), events["windows@example.org"].Start);
    }

    [Fact]
    public void Floating_times_and_dates_use_the_configured_floating_zone()
    {
        var events = ParseFile("basic.ics", Settings(Toronto)).Where(r => r.Event is not null).ToDictionary(r => r.Event!.Uid, r => r.Event!);
        Assert.Equal(Utc(2026, 5, 2, 13), events["floating@example.org"].Start);
        Assert.Equal(Utc(2026, 6, 24, 4), events["allday@example.org"].Start);
        Assert.Equal(Utc(2026, 4, 15, 23), events["single-tz@example.org"].Start);
    }

    [Fact]
    public void Bad_events_are_rejected_with_line_field_uid_and_reason()
    {
        var rejected = ParseFile("basic.ics").Where(r => r.Rejected is not null).Select(r => r.Rejected!).ToList();
        Assert.Equal(3, rejected.Count);

        var unknown = rejected.Single(r => r.Reason.Contains("unknown-tz@example.org", StringComparison.Ordinal));
        Assert.Equal("DTSTART", unknown.Field);
        Assert.Equal("line 86", unknown.Position);
        Assert.Contains("unknown time zone 'Mars/Olympus_Mons'", unknown.Reason, StringComparison.Ordinal);
        Assert.Contains("Source 'agenda'", unknown.Reason, StringComparison.Ordinal);

        Assert.DoesNotContain(rejected, r => r.Field == "UID");

        var badLine = rejected.Single(r => r.Reason.Contains("bad-line@example.org", StringComparison.Ordinal));
        Assert.Equal("line 95", badLine.Position);
        Assert.Contains("no ':'", badLine.Reason, StringComparison.Ordinal);
        Assert.Equal("this line has no colon", badLine.RawValue);

        var badDate = rejected.Single(r => r.Reason.Contains("bad-date@example.org", StringComparison.Ordinal));
        Assert.Equal("DTSTART", badDate.Field);
        Assert.Equal("line 99", badDate.Position);
        Assert.Equal("2026-01-15", badDate.RawValue);
    }

    [Fact]
    public void Weekly_rule_with_exdate_and_overrides_across_the_2026_toronto_transitions()
    {
        var results = ParseFile("recurring.ics");
        var standup = results.Where(r => r.Event?.Uid == "weekly-standup@example.org").Select(r => r.Event!).ToList();
        var instances = standup.Where(e => e.Summary == "Standup" && !e.IsCancelled).ToList();

        // Mondays from Feb 23 to Nov 30, 2026 (41), minus the EXDATE (Mar 16) and the two overridden instances.
        Assert.Equal(38, instances.Count);
        Assert.All(instances, e => Assert.Equal(new TimeSpan(9, 0, 0), e.LocalStart.TimeOfDay));
        Assert.All(instances, e => Assert.Equal(TimeSpan.FromMinutes(30), e.End - e.Start));
        Assert.All(instances, e => Assert.Equal(e.Start, new DateTimeOffset(TimeZoneInfo.ConvertTimeToUtc(e.LocalStart, Toronto))));
        Assert.Equal(Utc(2026, 3, 2, 14), instances.Single(e => e.LocalStart.Date == new DateTime(2026, 3, 2)).Start);
        Assert.Equal(Utc(2026, 3, 9, 13), instances.Single(e => e.LocalStart.Date == new DateTime(2026, 3, 9)).Start);
        Assert.Equal(Utc(2026, 10, 26, 13), instances.Single(e => e.LocalStart.Date == new DateTime(2026, 10, 26)).Start);
        Assert.Equal(Utc(2026, 11, 2, 14), instances.Single(e => e.LocalStart.Date == new DateTime(2026, 11, 2)).Start);
        Assert.Equal(Utc(2026, 11, 30, 14), instances[^1].Start);
        Assert.DoesNotContain(instances, e => e.LocalStart.Date == new DateTime(2026, 3, 16));
        Assert.All(instances, e => Assert.Equal($"weekly-standup@example.org/{e.RecurrenceId}", e.SourceId));
        Assert.Equal("20260302T140000Z", instances[1].RecurrenceId);

        var moved = standup.Single(e => e.Summary == "Standup (moved)");
        Assert.Equal("weekly-standup@example.org/20260323T130000Z", moved.SourceId);
        Assert.Equal(Utc(2026, 3, 23, 15, 30), moved.Start);
        Assert.True(moved.IsRecurring);

        var cancelled = standup.Single(e => e.IsCancelled);
        Assert.Equal("weekly-standup@example.org/20260330T130000Z", cancelled.SourceId);
        Assert.Equal(40, standup.Count);
        Assert.Equal(standup.Count, standup.Select(e => e.SourceId).Distinct().Count());
    }

    [Fact]
    public void Monthly_count_keeps_local_time_and_duration_across_dst()
    {
        var monthly = ParseFile("recurring.ics").Where(r => r.Event?.Uid == "monthly@example.org").Select(r => r.Event!).ToList();
        Assert.Equal(
            [new DateTime(2026, 1, 13), new DateTime(2026, 2, 10), new DateTime(2026, 3, 10), new DateTime(2026, 4, 14), new DateTime(2026, 5, 12), new DateTime(2026, 6, 9)],
            monthly.Select(e => e.LocalStart.Date));
        Assert.Equal(Utc(2026, 2, 10, 23, 30), monthly[1].Start);
        Assert.Equal(Utc(2026, 3, 10, 22, 30), monthly[2].Start);
        Assert.All(monthly, e => Assert.Equal(TimeSpan.FromHours(2), e.End - e.Start));
    }

    [Fact]
    public void Yearly_all_day_instances_outside_the_window_are_not_produced()
    {
        var canada = ParseFile("recurring.ics").Where(r => r.Event?.Uid == "yearly-allday@example.org").Select(r => r.Event!).ToList();
        var day = Assert.Single(canada);
        Assert.Equal("yearly-allday@example.org/20260701", day.SourceId);
        Assert.True(day.IsAllDay);
        Assert.Equal(Utc(2026, 7, 1, 0), day.Start);
    }

    [Fact]
    public void An_unsupported_rule_rejects_its_event_naming_rrule()
    {
        var rejected = Assert.Single(ParseFile("recurring.ics"), r => r.Rejected is not null).Rejected!;
        Assert.Equal("RRULE", rejected.Field);
        Assert.Equal("line 43", rejected.Position);
        Assert.Contains("bad-rrule@example.org", rejected.Reason, StringComparison.Ordinal);
        Assert.Contains("FREQ=HOURLY", rejected.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Dst_gap_and_overlap_follow_rfc5545_with_vtimezone_or_iana(bool withVTimeZone)
    {
        var zone = withVTimeZone ? File.ReadAllText(FeedFixtures.Calendar("basic.ics")).Split("BEGIN:VEVENT")[0].Split("BEGIN:VTIMEZONE", 2)[1] : null;
        var text = "BEGIN:VCALENDAR\r\n" + (zone is null ? string.Empty : "BEGIN:VTIMEZONE" + zone) +
            "BEGIN:VEVENT\r\nUID:gap\r\nDTSTART;TZID=America/Toronto:20260308T023000\r\nEND:VEVENT\r\n" +
            "BEGIN:VEVENT\r\nUID:overlap\r\nDTSTART;TZID=America/Toronto:20261101T013000\r\nEND:VEVENT\r\n" +
            "BEGIN:VEVENT\r\nUID:weekly\r\nDTSTART;TZID=America/Toronto:20260301T090000\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n" +
            "BEGIN:VEVENT\r\nUID:weekly-fall\r\nDTSTART;TZID=America/Toronto:20261025T090000\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n" +
            "END:VCALENDAR\r\n";
        var events = ParseText(text).Select(r => r.Event!).ToList();
        Assert.Equal(Utc(2026, 3, 8, 7, 30), events.Single(e => e.Uid == "gap").Start);
        Assert.Equal(Utc(2026, 11, 1, 5, 30), events.Single(e => e.Uid == "overlap").Start);
        Assert.Equal([Utc(2026, 3, 1, 14), Utc(2026, 3, 8, 13), Utc(2026, 3, 15, 13)], events.Where(e => e.Uid == "weekly").Select(e => e.Start));
        Assert.Equal([Utc(2026, 10, 25, 13), Utc(2026, 11, 1, 14), Utc(2026, 11, 8, 14)], events.Where(e => e.Uid == "weekly-fall").Select(e => e.Start));
    }

    [Fact]
    public void Lf_only_line_endings_and_tab_folding_are_accepted()
    {
        var events = ParseText("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:lf\nSUMMARY:Long\n\tsummary\nDTSTART:20260101T100000Z\nEND:VEVENT\nEND:VCALENDAR\n");
        Assert.Equal("Longsummary", Assert.Single(events).Event!.Summary);
    }

    [Fact]
    public void Exdate_date_rdate_and_until_date_work_for_all_day_events()
    {
        var events = ParseText(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:ad\r\nDTSTART;VALUE=DATE:20260105\r\nRRULE:FREQ=DAILY;UNTIL=20260109\r\n" +
            "EXDATE;VALUE=DATE:20260107\r\nRDATE;VALUE=DATE:20260120,20260121\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
        Assert.Equal(["ad/20260105", "ad/20260106", "ad/20260108", "ad/20260109", "ad/20260120", "ad/20260121"], events.Select(e => e.Event!.SourceId));
    }

    [Fact]
    public void Method_cancel_marks_every_event_cancelled()
    {
        var e = Assert.Single(ParseText("BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\nUID:c\r\nDTSTART:20260101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")).Event!;
        Assert.True(e.IsCancelled);
    }

    [Fact]
    public void The_instance_cap_is_reported_not_silent()
    {
        var results = ParseText(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:daily\r\nDTSTART:20260101T100000Z\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            Settings() with { MaxInstancesPerEvent = 10 });
        Assert.Equal(10, results.Count(r => r.Event is not null));
        var rejected = results[^1].Rejected!;
        Assert.Contains("more than 10 instances", rejected.Reason, StringComparison.Ordinal);
        Assert.Contains("20260111T100000Z", rejected.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_calendar_fails_before_any_record_naming_the_open_component()
    {
        var e = Assert.Throws<IngestionException>(() => ParseFile("truncated.ics"));
        Assert.Equal("agenda", e.SourceName);
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        Assert.Contains("BEGIN:VEVENT of line 7", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_document_that_is_not_a_calendar_is_refused()
    {
        var e = Assert.Throws<IngestionException>(() => ParseText("<html><body>Not found</body></html>\n"));
        Assert.Contains("not an iCalendar", e.Message, StringComparison.Ordinal);
        Assert.Equal("line 1", e.Position);
    }

    [Fact]
    public void Mismatched_end_fails_with_its_line()
    {
        var e = Assert.Throws<IngestionException>(() => ParseText("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"));
        Assert.Equal("line 4", e.Position);
        Assert.Contains("END:VTODO closes BEGIN:VEVENT of line 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Latin1_bytes_are_an_error_in_utf8_and_read_with_the_charset()
    {
        var e = Assert.Throws<IngestionException>(() => ParseFile("latin1.ics"));
        Assert.Equal("charset", e.Field);
        var ok = Assert.Single(ParseFile("latin1.ics", Settings() with { Charset = "iso-8859-1" })).Event!;
        Assert.Equal("Réunion à Québec", ok.Summary);
    }

    [Fact]
    public void Vendor_prefixed_tzids_and_broken_vtimezones_are_handled()
    {
        var results = ParseText(
            "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Broken/Zone\r\nEND:VTIMEZONE\r\n" +
            "BEGIN:VEVENT\r\nUID:moz\r\nDTSTART;TZID=/mozilla.org/20050126_1/America/Toronto:20260115T090000\r\nEND:VEVENT\r\n" +
            "BEGIN:VEVENT\r\nUID:broken\r\nDTSTART;TZID=Broken/Zone:20260115T090000\r\nEND:VEVENT\r\n" +
            "BEGIN:VEVENT\r\nUID:traversal\r\nDTSTART;TZID=../../../etc/passwd:20260115T090000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
        Assert.Equal(Utc(2026, 1, 15, 14), results[0].Event!.Start);
        Assert.Contains("no STANDARD or DAYLIGHT observance", results[1].Rejected!.Reason, StringComparison.Ordinal);
        Assert.Equal("DTSTART", results[2].Rejected!.Field);
    }

    [Fact]
    public void Dtend_before_dtstart_and_bad_duration_are_rejected()
    {
        var results = ParseText(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260101T100000Z\r\nDTEND:20260101T090000Z\r\nEND:VEVENT\r\n" +
            "BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20260101T100000Z\r\nDURATION:1 hour\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
        Assert.Equal("DTEND", results[0].Rejected!.Field);
        Assert.Equal("line 5", results[0].Rejected!.Position);
        Assert.Equal("DURATION", results[1].Rejected!.Field);
    }

    [Fact]
    public void Parameters_with_quotes_and_carets_are_read()
    {
        var e = Assert.Single(ParseText(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:p\r\nDTSTART:20260101T100000Z\r\nORGANIZER;CN=\"Doe; Jane: ^'Chair^'\":MAILTO:jane@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")).Event!;
        Assert.Equal("jane@example.org", e.Organizer);
    }

    [Fact]
    public void Utf8_bom_is_skipped()
    {
        var bytes = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:bom\r\nDTSTART:20260101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")).ToArray();
        Assert.Equal("bom", Assert.Single(IcsParser.Parse(new MemoryStream(bytes), Settings())).Event!.Uid);
    }

    [Theory]
    [InlineData("\r\n", 1)]
    [InlineData("\n", 1)]
    [InlineData("\r\n", 5)]
    [InlineData("\r\n", 4096)]
    public void A_line_folded_inside_a_utf8_character_is_read_whole_and_line_numbers_do_not_move(string eol, int chunk)
    {
        // Outlook folds at 75 octets without looking at characters: here every event's SUMMARY is folded inside
        // a 2-, 3- or 4-byte character, at every split point, over several 16 KB buffers, read in chunks of any size.
        string[] words = ["Réunion", "Coût 5 €", "Fête 😀 parc"];
        var expected = new List<string>();
        var document = new List<byte>(Encoding.UTF8.GetBytes($"BEGIN:VCALENDAR{eol}VERSION:2.0{eol}"));
        var line = 2;
        for (var i = 0; i < 900; i++)
        {
            var summary = $"{words[i % 3]} {i}";
            var bytes = Encoding.UTF8.GetBytes("SUMMARY:" + summary);
            var first = Array.FindIndex(bytes, b => b >= 0x80);
            var length = bytes[first] >= 0xF0 ? 4 : bytes[first] >= 0xE0 ? 3 : 2;
            var cut = first + 1 + (i % (length - 1));
            document.AddRange(Encoding.UTF8.GetBytes($"BEGIN:VEVENT{eol}UID:e{i}{eol}DTSTART:20260301T100000Z{eol}"));
            document.AddRange(bytes[..cut]);
            document.AddRange(Encoding.UTF8.GetBytes($"{eol} "));
            document.AddRange(bytes[cut..]);
            document.AddRange(Encoding.UTF8.GetBytes($"{eol}END:VEVENT{eol}"));
            expected.Add(summary);
            line += 6;
        }

        // A bad event after them is still rejected at its own line.
        document.AddRange(Encoding.UTF8.GetBytes($"BEGIN:VEVENT{eol}UID:bad{eol}DTSTART:2026-03-01{eol}END:VEVENT{eol}END:VCALENDAR{eol}"));
        var results = IcsParser.Parse(new ChunkedStream(document.ToArray(), chunk), Settings()).ToList();

        Assert.Equal(expected.Order(StringComparer.Ordinal), results.Where(r => r.Event is not null).Select(r => r.Event!.Summary!).Order(StringComparer.Ordinal));
        var rejected = Assert.Single(results, r => r.Rejected is not null).Rejected!;
        Assert.Equal("DTSTART", rejected.Field);
        Assert.Equal($"line {line + 3}", rejected.Position);
    }

    [Fact]
    public void Bytes_invalid_in_utf8_are_still_an_error_when_a_fold_follows_them()
    {
        // Latin-1 'é' (0xE9, a UTF-8 lead byte) then a fold then Latin-1 '©' (0xA9, a continuation byte): moved
        // together they are still no UTF-8 character, so the document is refused as before, never silently garbled.
        var bytes = Encoding.UTF8.GetBytes("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260101T100000Z\r\nSUMMARY:Caf").Concat(new byte[] { 0xE9, 0x0D, 0x0A, 0x20, 0xA9 })
            .Concat(Encoding.UTF8.GetBytes(" au lait\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")).ToArray();
        var e = Assert.Throws<IngestionException>(() => IcsParser.Parse(new MemoryStream(bytes), Settings()).ToList());
        Assert.Equal("charset", e.Field);
    }

    /// <summary>Hands out its bytes at most <c>chunk</c> at a time, as a network stream may.</summary>
    private sealed class ChunkedStream(byte[] bytes, int chunk) : MemoryStream(bytes)
    {
        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, chunk)]);

        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, chunk));
    }
}
