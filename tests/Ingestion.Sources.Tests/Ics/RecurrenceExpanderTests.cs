using System.Globalization;
using Ingestion.Sources.Ics;

namespace Ingestion.Sources.Tests.Ics;

/// <summary>The examples of RFC 5545 section 3.8.5.3, expanded in wall-clock time.</summary>
public class RecurrenceExpanderTests
{
    private static DateTime D(string s) => DateTime.ParseExact(s, s.Length == 8 ? "yyyyMMdd" : "yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture);

    private static List<string> Expand(string start, string rule, int take = 100, string horizon = "21000101")
    {
        Assert.True(RecurrenceRule.TryParse(rule, out var parsed, out var reason), reason);
        var dtStart = D(start);
        return RecurrenceExpander.Expand(parsed, dtStart, l => l, D(horizon)).Take(take)
            .Select(d => d.ToString(start.Length == 8 ? "yyyyMMdd" : "yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)).ToList();
    }

    [Fact]
    public void Daily_count() =>
        Assert.Equal(Enumerable.Range(2, 10).Select(d => $"199709{d:00}T090000"), Expand("19970902T090000", "FREQ=DAILY;COUNT=10"));

    [Fact]
    public void Every_other_day() =>
        Assert.Equal(["19970902T090000", "19970904T090000", "19970906T090000", "19970908T090000", "19970910T090000"], Expand("19970902T090000", "FREQ=DAILY;INTERVAL=2;COUNT=5"));

    [Fact]
    public void Weekly_on_tuesday_and_thursday_until() =>
        Assert.Equal(
            ["19970902", "19970904", "19970909", "19970911", "19970916", "19970918", "19970923", "19970925", "19970930", "19971002"],
            Expand("19970902T090000", "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH").Select(s => s[..8]));

    [Fact]
    public void Every_other_week_monday_wednesday_friday_until_christmas_eve()
    {
        var dates = Expand("19970901T090000", "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR");
        Assert.Equal(25, dates.Count);
        Assert.Equal(["19970901T090000", "19970903T090000", "19970905T090000", "19970915T090000"], dates.Take(4));
        Assert.Equal("19971222T090000", dates[^1]);
    }

    [Fact]
    public void Week_start_changes_which_days_are_in_the_period()
    {
        Assert.Equal(["19970805", "19970810", "19970819", "19970824"], Expand("19970805T090000", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO").Select(s => s[..8]));
        Assert.Equal(["19970805", "19970817", "19970819", "19970831"], Expand("19970805T090000", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU").Select(s => s[..8]));
    }

    [Fact]
    public void Monthly_on_the_first_friday() =>
        Assert.Equal(
            ["19970905", "19971003", "19971107", "19971205", "19980102", "19980206", "19980306", "19980403", "19980501", "19980605"],
            Expand("19970905T090000", "FREQ=MONTHLY;COUNT=10;BYDAY=1FR").Select(s => s[..8]));

    [Fact]
    public void Monthly_on_the_second_to_last_monday() =>
        Assert.Equal(["19970922", "19971020", "19971117", "19971222", "19980119", "19980216"], Expand("19970922T090000", "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO").Select(s => s[..8]));

    [Fact]
    public void Last_weekday_of_the_month_with_bysetpos() =>
        Assert.Equal(["19970930", "19971031", "19971128"], Expand("19970930T090000", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3").Select(s => s[..8]));

    [Fact]
    public void Third_to_last_day_of_the_month() =>
        Assert.Equal(["19970928", "19971029", "19971128"], Expand("19970928T090000", "FREQ=MONTHLY;BYMONTHDAY=-3;COUNT=3").Select(s => s[..8]));

    [Fact]
    public void Monthly_on_the_31st_skips_short_months() =>
        Assert.Equal(["20260131", "20260331", "20260531", "20260731"], Expand("20260131", "FREQ=MONTHLY;COUNT=4"));

    [Fact]
    public void Yearly_on_february_29_skips_common_years() =>
        Assert.Equal(["20240229", "20280229", "20320229"], Expand("20240229", "FREQ=YEARLY;COUNT=3"));

    [Fact]
    public void Yearly_in_june_and_july()
    {
        var dates = Expand("19970610T090000", "FREQ=YEARLY;COUNT=10;BYMONTH=6,7").Select(s => s[..8]).ToList();
        Assert.Equal(["19970610", "19970710", "19980610", "19980710"], dates.Take(4));
        Assert.Equal("20010710", dates[^1]);
        Assert.Equal(10, dates.Count);
    }

    [Fact]
    public void Every_thursday_in_march() =>
        Assert.Equal(["19970313", "19970320", "19970327", "19980305", "19980312", "19980319", "19980326"], Expand("19970313T090000", "FREQ=YEARLY;BYMONTH=3;BYDAY=TH", take: 7).Select(s => s[..8]));

    [Fact]
    public void Every_friday_the_13th_after_dtstart() =>
        Assert.Equal(["19980213", "19980313", "19981113", "19990813"], Expand("19970902T090000", "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", take: 5).Skip(1).Select(s => s[..8]));

    [Fact]
    public void Every_day_in_january_for_three_years() =>
        Assert.Equal(93, Expand("19980101T090000", "FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1", take: 1000).Count);

    [Fact]
    public void Yearly_on_the_20th_monday() =>
        Assert.Equal(["19970519", "19980518", "19990517"], Expand("19970519T090000", "FREQ=YEARLY;BYDAY=20MO", take: 3).Select(s => s[..8]));

    [Fact]
    public void The_horizon_stops_an_endless_rule() =>
        Assert.Equal(3, Expand("20260101", "FREQ=YEARLY", horizon: "20280615").Count);

    [Fact]
    public void A_rule_that_never_matches_ends_at_the_horizon() =>
        Assert.Equal(["20260101"], Expand("20260101", "FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30", horizon: "20400101"));

    [Theory]
    [InlineData("COUNT=3", "no FREQ")]
    [InlineData("FREQ=DAILY;COUNT=3;UNTIL=20260101", "both COUNT and UNTIL")]
    [InlineData("FREQ=WEEKLY;BYDAY=1MO", "ordinals")]
    [InlineData("FREQ=DAILY;BYHOUR=9", "BYHOUR is not supported")]
    [InlineData("FREQ=HOURLY", "FREQ=HOURLY is not supported")]
    [InlineData("FREQ=DAILY;INTERVAL=0", "INTERVAL=0")]
    [InlineData("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY=32")]
    [InlineData("FREQ=MONTHLY;BYDAY=XX", "BYDAY value 'XX'")]
    [InlineData("FREQ=FORTNIGHTLY", "not a frequency")]
    public void Invalid_or_unsupported_rules_are_refused_with_a_reason(string rule, string expected)
    {
        Assert.False(RecurrenceRule.TryParse(rule, out _, out var reason));
        Assert.Contains(expected, reason, StringComparison.Ordinal);
    }
}
