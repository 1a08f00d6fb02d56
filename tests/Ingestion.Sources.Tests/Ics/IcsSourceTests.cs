using System.Text;
using Ingestion.Running;
using Ingestion.Sources.Ics;
using Ingestion.Sources.Tests.Feeds;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;

namespace Ingestion.Sources.Tests.Ics;

public sealed class IcsSourceTests
{
    private static readonly DateTimeOffset Feb2026 = new(2026, 2, 1, 12, 0, 0, TimeSpan.Zero);

    private static Task<TestHttpServer> Serve(byte[] body, string contentType, List<string?>? ifNoneMatch = null) =>
        TestHttpServer.StartAsync(async ctx =>
        {
            var seen = ctx.Request.Headers.IfNoneMatch.ToString();
            lock (ifNoneMatch ?? [])
            {
                ifNoneMatch?.Add(seen.Length == 0 ? null : seen);
            }

            if (seen == "\"cal-1\"")
            {
                ctx.Response.StatusCode = StatusCodes.Status304NotModified;
                return;
            }

            ctx.Response.Headers.ETag = "\"cal-1\"";
            ctx.Response.ContentType = contentType;
            await ctx.Response.Body.WriteAsync(body);
        });

    [Fact]
    public async Task Recurring_calendar_over_http_then_304_then_reexpanded_when_the_window_moves()
    {
        var conditional = new List<string?>();
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Calendar("recurring.ics")), "text/calendar; charset=utf-8", conditional);
        var clock = new ManualClock(Feb2026);
        await using var run = FeedRunHarness.Calendar(server.Url("cal.ics").ToString(), clock, maxRejected: 1);

        var first = await run.RunAsync("agenda");
        Assert.Equal(IngestionStatus.PartiallySucceeded, first.Status);

        // 38 standup instances + 2 overrides, 6 monthly, 1 Canada Day (2026; 2025 and 2027 are outside the window); 1 rejected RRULE.
        Assert.Equal(new IngestionCounts { Read = 48, Created = 47, Rejected = 1 }, first.Counts);
        var keys = run.Sink.GetTable("agenda").Keys.ToHashSet();
        Assert.Contains("agenda\u001fweekly-standup@example.org/20260309T130000Z", keys);
        Assert.Contains("agenda\u001fweekly-standup@example.org/20260323T130000Z", keys);
        Assert.DoesNotContain("agenda\u001fweekly-standup@example.org/20260316T130000Z", keys);
        Assert.Contains("agenda\u001fyearly-allday@example.org/20260701", keys);

        var second = await run.RunAsync("agenda");
        Assert.Equal(IngestionStatus.NotModified, second.Status);

        clock.Now = Feb2026.AddDays(2);
        var third = await run.RunAsync("agenda");
        Assert.Equal(47, third.Counts.Unchanged);
        Assert.Equal([null, "\"cal-1\"", null], conditional);
    }

    [Fact]
    public async Task An_unknown_tzid_fails_the_run_naming_the_uid_and_property()
    {
        const string ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:ok@x\r\nDTSTART:20260301T100000Z\r\nEND:VEVENT\r\n" +
            "BEGIN:VEVENT\r\nUID:meeting-42@example.org\r\nDTSTART;TZID=Atlantis/Lost_City:20260301T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        await using var server = await Serve(Encoding.UTF8.GetBytes(ics), "text/calendar");
        await using var run = FeedRunHarness.Calendar(server.Url("cal.ics").ToString(), new ManualClock(Feb2026));
        var result = await run.RunAsync("agenda");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("meeting-42@example.org", result.Error!.Message, StringComparison.Ordinal);
        Assert.Contains("'Atlantis/Lost_City'", result.Error.Message, StringComparison.Ordinal);
        Assert.Contains("DTSTART", result.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_html_page_instead_of_a_calendar_fails_naming_the_content_type()
    {
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Feed("not-a-feed.html")), "text/html");
        await using var run = FeedRunHarness.Calendar(server.Url("cal.ics").ToString(), new ManualClock(Feb2026));
        var result = await run.RunAsync("agenda");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("not an iCalendar", result.Error!.Message, StringComparison.Ordinal);
        Assert.Contains("'text/html'", result.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_calendar_served_as_octet_stream_is_read_by_its_content()
    {
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Calendar("recurring.ics")), "application/octet-stream");
        await using var run = FeedRunHarness.Calendar(server.Url("cal.ics").ToString(), new ManualClock(Feb2026), maxRejected: 1);
        var result = await run.RunAsync("agenda");
        Assert.Equal(new IngestionCounts { Read = 48, Created = 47, Rejected = 1 }, result.Counts);
    }

    [Fact]
    public async Task Latin1_calendar_with_the_charset_in_the_content_type()
    {
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Calendar("latin1.ics")), "text/calendar; charset=ISO-8859-1");
        await using var run = FeedRunHarness.Calendar(server.Url("cal.ics").ToString(), new ManualClock(Feb2026));
        var result = await run.RunAsync("agenda");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Contains("Réunion à Québec", Assert.Single(run.Sink.GetTable("agenda")).Value.OfType<string>());
    }

    [Fact]
    public async Task A_truncated_calendar_fails_before_any_record()
    {
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Calendar("truncated.ics")), "text/calendar");
        await using var run = FeedRunHarness.Calendar(server.Url("cal.ics").ToString(), new ManualClock(Feb2026), maxRejected: 10);
        var result = await run.RunAsync("agenda");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("truncated", result.Error!.Message, StringComparison.Ordinal);
        Assert.Equal(0, result.Counts.Read);
    }

    [Fact]
    public async Task Window_parameters_and_a_local_file()
    {
        await using var run = FeedRunHarness.Calendar(FeedFixtures.Calendar("recurring.ics"), new ManualClock(Feb2026), maxRejected: 1);
        var result = await run.RunAsync("agenda", new RunRequest
        {
            Parameters = new Dictionary<string, string> { ["windowStart"] = "2026-03-01", ["windowEnd"] = "2026-04-01" },
        });
        Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);

        // March: standups on 2, 9, 23 (override), 30 (cancelled override), 16 excluded; monthly on 10; the overrides always.
        var keys = run.Sink.GetTable("agenda").Keys.Select(k => k.Split('\u001f')[1]).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(
            ["monthly@example.org/20260310T223000Z", "weekly-standup@example.org/20260302T140000Z", "weekly-standup@example.org/20260309T130000Z", "weekly-standup@example.org/20260323T130000Z", "weekly-standup@example.org/20260330T130000Z"],
            keys);
    }
}
