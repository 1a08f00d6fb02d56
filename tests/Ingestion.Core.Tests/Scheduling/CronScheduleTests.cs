using Ingestion.Scheduling;
using Cronos;

namespace Ingestion.Core.Tests.Scheduling;

public class CronScheduleTests
{
    private const string Toronto = "America/Toronto";

    private static DateTimeOffset Utc(int y, int mo, int d, int h, int mi = 0, int s = 0) => new(y, mo, d, h, mi, s, TimeSpan.Zero);

    private static IReadOnlyList<DateTimeOffset> Between(string cron, DateTimeOffset from, DateTimeOffset to, string zone = Toronto) =>
        CronSchedule.Parse(cron, zone).GetOccurrences(from, to);

    [Fact]
    public void Daily_at_4_am_Toronto_is_9_utc_in_winter_and_8_utc_in_summer()
    {
        var cron = CronSchedule.Parse("0 4 * * *", Toronto);
        Assert.Equal(Utc(2026, 1, 15, 9), cron.GetNextOccurrence(Utc(2026, 1, 15, 0)));
        Assert.Equal(Utc(2026, 7, 15, 8), cron.GetNextOccurrence(Utc(2026, 7, 15, 0)));
    }

    [Fact]
    public void Spring_forward_a_slot_in_the_missing_hour_runs_once_at_the_first_valid_instant()
    {
        // 2026-03-08: at 2:00 EST (07:00Z) Toronto clocks jump to 3:00 EDT; 2:30 does not exist that day.
        var slots = Between("30 2 * * *", Utc(2026, 3, 7, 0), Utc(2026, 3, 10, 0));
        Assert.Equal([Utc(2026, 3, 7, 7, 30), Utc(2026, 3, 8, 7, 0), Utc(2026, 3, 9, 6, 30)], slots);

        // Four slots in the missing hour collapse into one run at 3:00 EDT.
        var quarter = Between("*/15 2 * * *", Utc(2026, 3, 8, 0), Utc(2026, 3, 8, 12));
        Assert.Equal([Utc(2026, 3, 8, 7, 0)], quarter);

        // Sundays at 2 AM: the transition Sunday runs once, at 3:00 EDT.
        Assert.Equal(Utc(2026, 3, 8, 7), CronSchedule.Parse("0 2 * * 0", Toronto).GetNextOccurrence(Utc(2026, 3, 2, 0)));
    }

    [Fact]
    public void Spring_forward_hourly_slots_skip_no_valid_hour_and_repeat_none()
    {
        var slots = Between("0 * * * *", Utc(2026, 3, 8, 5, 30), Utc(2026, 3, 8, 9, 30));
        // 1:00 EST (06Z), [2:00 missing -> 3:00 EDT = 07Z], 3:00 EDT is the same instant: once; 4:00 EDT (08Z), 5:00 EDT (09Z).
        Assert.Equal([Utc(2026, 3, 8, 6), Utc(2026, 3, 8, 7), Utc(2026, 3, 8, 8), Utc(2026, 3, 8, 9)], slots);
    }

    [Fact]
    public void Fall_back_a_slot_in_the_repeated_hour_runs_once_at_its_first_occurrence()
    {
        // 2026-11-01: at 2:00 EDT (06:00Z) clocks go back to 1:00 EST; 1:30 happens at 05:30Z and 06:30Z.
        var slots = Between("30 1 * * *", Utc(2026, 10, 31, 0), Utc(2026, 11, 3, 0));
        Assert.Equal([Utc(2026, 10, 31, 5, 30), Utc(2026, 11, 1, 5, 30), Utc(2026, 11, 2, 6, 30)], slots);

        var hourly = Between("0 * * * *", Utc(2026, 11, 1, 3, 30), Utc(2026, 11, 1, 8, 30));
        // 0:00 EDT 04Z, 1:00 EDT 05Z, (1:00 EST 06Z is the same wall slot: not again), 2:00 EST 07Z, 3:00 EST 08Z.
        Assert.Equal([Utc(2026, 11, 1, 4), Utc(2026, 11, 1, 5), Utc(2026, 11, 1, 7), Utc(2026, 11, 1, 8)], hourly);

        // Asked from inside the second pass of the repeated hour, the next slot is after it.
        Assert.Equal(Utc(2026, 11, 1, 7), CronSchedule.Parse("*/30 * * * *", Toronto).GetNextOccurrence(Utc(2026, 11, 1, 6, 10)));
    }

    private static List<DateTimeOffset> CronosInToronto(string cron, DateTimeOffset from, DateTimeOffset to) =>
        [.. CronExpression.Parse(cron).GetOccurrences(from, to, TimeZoneInfo.FindSystemTimeZoneById(Toronto), fromInclusive: false, toInclusive: true)];

    [Fact]
    public void Cronos_time_zone_behaviour_compared()
    {
        // Cronos evaluating in the zone itself agrees with the rules above for fixed-time slots and the spring-forward gap.
        Assert.Equal(Between("30 1 * * *", Utc(2026, 10, 31, 12), Utc(2026, 11, 2, 12)), CronosInToronto("30 1 * * *", Utc(2026, 10, 31, 12), Utc(2026, 11, 2, 12)));
        Assert.Equal(Between("*/15 2 * * *", Utc(2026, 3, 7, 12), Utc(2026, 3, 9, 12)), CronosInToronto("*/15 2 * * *", Utc(2026, 3, 7, 12), Utc(2026, 3, 9, 12)));
        Assert.Equal(Between("0 * * * *", Utc(2026, 3, 8, 5, 30), Utc(2026, 3, 8, 9, 30)), CronosInToronto("0 * * * *", Utc(2026, 3, 8, 5, 30), Utc(2026, 3, 8, 9, 30)));

        // It differs for interval expressions in the repeated fall-back hour: Cronos runs 1:00 twice (EDT 05Z and EST 06Z),
        // the documented rule runs each wall-clock slot once. That is why CronSchedule evaluates Cronos on the wall clock
        // and maps wall times to instants itself.
        Assert.Equal([Utc(2026, 11, 1, 4), Utc(2026, 11, 1, 5), Utc(2026, 11, 1, 7), Utc(2026, 11, 1, 8)], Between("0 * * * *", Utc(2026, 11, 1, 3, 30), Utc(2026, 11, 1, 8, 30)));
        Assert.Equal([Utc(2026, 11, 1, 4), Utc(2026, 11, 1, 5), Utc(2026, 11, 1, 6), Utc(2026, 11, 1, 7), Utc(2026, 11, 1, 8)], CronosInToronto("0 * * * *", Utc(2026, 11, 1, 3, 30), Utc(2026, 11, 1, 8, 30)));

        // A host (re)starting inside the second pass of the repeated hour: 1:30 already ran at its first occurrence (05:30Z).
        Assert.Equal(Utc(2026, 11, 1, 7), CronSchedule.Parse("*/30 * * * *", Toronto).GetNextOccurrence(Utc(2026, 11, 1, 6, 10)));
        Assert.Equal([Utc(2026, 11, 1, 6, 30), Utc(2026, 11, 1, 7)], CronosInToronto("*/30 * * * *", Utc(2026, 11, 1, 6, 10), Utc(2026, 11, 1, 7, 0)));
    }

    [Fact]
    public void Weekday_and_weekend_variants_by_day_of_week()
    {
        // Week of Mon 2026-06-08 .. Sun 2026-06-14 in Toronto (EDT, UTC-4).
        var from = Utc(2026, 6, 8, 4);
        var to = Utc(2026, 6, 15, 4);
        var weekdays = Between("0 6-22/2 * * 1-5", from, to);
        var weekends = Between("0 8,12,18 * * 0,6", from, to);
        Assert.Equal(45, weekdays.Count);
        Assert.Equal(6, weekends.Count);
        Assert.All(weekdays, t => Assert.InRange((int)TimeZoneInfo.ConvertTime(t, TimeZoneInfo.FindSystemTimeZoneById(Toronto)).DayOfWeek, 1, 5));
        Assert.Equal(Utc(2026, 6, 8, 10), weekdays[0]);
        Assert.Equal(Utc(2026, 6, 13, 12), weekends[0]);
        Assert.Equal(weekends, Between("0 8,12,18 * * SAT,SUN", from, to));
        Assert.Equal(weekends, Between("0 8,12,18 * * 6-7", from, to));
        Assert.Equal(weekdays, Between("0 6-22/2 * * mon-fri", from, to));
        Assert.Equal(Utc(2026, 6, 26, 12), Between("0 8 * * 5L", from, Utc(2026, 7, 1, 0)).Single());
        Assert.Equal(Utc(2026, 6, 19, 12), Between("0 8 * jun fri#3", from, Utc(2026, 7, 1, 0)).Single());
    }

    [Fact]
    public void First_of_the_month_seconds_field_and_unix_day_or_semantics()
    {
        Assert.Equal(Utc(2026, 2, 1, 5), CronSchedule.Parse("0 0 1 * *", Toronto).GetNextOccurrence(Utc(2026, 1, 1, 6)));
        Assert.Equal(
            [Utc(2026, 1, 1, 0, 0, 10), Utc(2026, 1, 1, 0, 0, 20), Utc(2026, 1, 1, 0, 0, 30)],
            Between("*/10 * * * * *", Utc(2026, 1, 1, 0, 0, 0), Utc(2026, 1, 1, 0, 0, 30), "UTC"));

        // Both day fields restricted: the 13th OR any Friday (Unix cron), in UTC.
        var days = Between("0 0 13 * 5", Utc(2026, 2, 1, 0), Utc(2026, 3, 1, 0), "UTC").Select(t => t.Day).ToList();
        Assert.Equal([6, 13, 20, 27], days); // February 2026: Fridays 6, 13, 20, 27; the 13th is one of them
        var march = Between("0 0 13 * 1", Utc(2026, 3, 1, 0), Utc(2026, 4, 1, 0), "UTC").Select(t => t.Day).ToList();
        Assert.Equal([2, 9, 13, 16, 23, 30], march);
    }

    [Theory]
    [InlineData("61 * * * *", "invalid")]
    [InlineData("99 * * * *", "invalid")]
    [InlineData("0 25 * * *", "invalid")]
    [InlineData("* * * *", "4 field(s)")]
    [InlineData("0 0 * * 8", "day-of-week")]
    [InlineData("0 0 * * 5-1", "backwards")]
    [InlineData("", "empty")]
    [InlineData("0 0 30 2 *", "never fires")]
    [InlineData("0 0 * JANX *", "Months: Unexpected character 'X'")]
    [InlineData("*/0 * * * *", "Minutes: Value must be a number between 1 and 59")]
    [InlineData("0 0 * * 5#6", "Days of week")]
    [InlineData("H 0 * * *", "hashed values ('H') are not supported")]
    public void Invalid_expressions_say_why(string cron, string expected)
    {
        var e = Assert.Throws<FormatException>(() => CronSchedule.Parse(cron, Toronto));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_time_zone_is_named()
    {
        var e = Assert.Throws<FormatException>(() => CronSchedule.Parse("0 4 * * *", "America/Atlantis"));
        Assert.Contains("'America/Atlantis' is unknown", e.Message, StringComparison.Ordinal);
    }
}
