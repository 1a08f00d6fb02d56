using System.Globalization;
using System.Text;
using Ingestion.Sources.Mapping;

namespace Ingestion.Sources.Tests.Mapping;

/// <summary>
/// The quick ISO 8601 reading of dates and times accepts only what the general parser accepts, and reads it the same:
/// checked against <see cref="DateTimeOffset.TryParse(string, IFormatProvider, DateTimeStyles, out DateTimeOffset)"/>
/// and its siblings on generated text, and through <see cref="ColumnValues.TryConvert(string, ColumnType, CultureInfo, string, out object)"/>
/// under several cultures.
/// </summary>
public sealed class IsoDateTimeTests
{
    private static readonly CultureInfo[] Cultures =
        [CultureInfo.InvariantCulture, new("fr-FR"), new("en-US"), new("de-DE"), new("ja-JP")];

    [Fact]
    public void Every_value_read_quickly_is_what_the_general_parser_reads()
    {
        var random = new Random(20261203);
        var accepted = 0;
        var withOffset = 0;
        var dateOnly = 0;
        for (var n = 0; n < 50_000; n++)
        {
            var text = Generate(random);
            if (!IsoDateTime.TryParse(text, out var dateTime, out var offset, out var hasTime))
            {
                continue;
            }

            accepted++;
            Assert.True(DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var general), $"'{text}' was read quickly but the general parser refuses it");
            var quick = new DateTimeOffset(dateTime, offset ?? TimeSpan.Zero);
            Assert.True(quick.UtcTicks == general.UtcTicks && quick.Offset == general.Offset, $"'{text}': read quickly as {quick:O}, by the general parser as {general:O}");
            if (offset is null)
            {
                Assert.True(DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var local), $"'{text}' as a timestamp without zone");
                Assert.Equal(local, dateTime);
                Assert.Equal(DateTimeKind.Unspecified, local.Kind);
            }
            else
            {
                withOffset++;
            }

            if (!hasTime)
            {
                dateOnly++;
                Assert.True(DateOnly.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var date), $"'{text}' as a date");
                Assert.Equal(date, DateOnly.FromDateTime(dateTime));
            }
        }

        // The generator reaches every shape: a quick path that refused everything would pass the loop above.
        Assert.True(accepted > 10_000, $"only {accepted} of 50000 generated values were read quickly");
        Assert.True(withOffset > 2_000, $"only {withOffset} values with an offset were read quickly");
        Assert.True(dateOnly > 500, $"only {dateOnly} dates without a time were read quickly");
    }

    [Theory]
    [InlineData("2024-02-30")]
    [InlineData("2023-02-29T10:00:00Z")]
    [InlineData("2024-05-01T24:00:00")]
    [InlineData("2024-05-01T10:60")]
    [InlineData("2024-05-01T10:00:60Z")]
    [InlineData("2024-05-01T10:00:00.12345678Z")]
    [InlineData("2024-05-01T10:00:00.Z")]
    [InlineData("2024-05-01T10:00:00+15:00")]
    [InlineData("2024-05-01T10:00:00+05:60")]
    [InlineData("2024-05-01T10:00:00+5")]
    [InlineData("2024-05-01T10:00:00 +02:00")]
    [InlineData(" 2024-05-01")]
    [InlineData("2024-05-01 ")]
    [InlineData("2024-05-01t10:00")]
    [InlineData("2024-5-1")]
    [InlineData("0001-01-01T00:00:00Z")]
    [InlineData("9999-12-31T23:59:59Z")]
    [InlineData("2024-05-01T10")]
    [InlineData("2024-05-01T10:00:00z")]
    [InlineData("01/05/2024 10:00")]
    public void Other_shapes_are_left_to_the_general_parser(string text)
    {
        Assert.False(IsoDateTime.TryParse(text, out _, out _, out _));
        AssertConvertsAsTheGeneralParser(text);
    }

    [Theory]
    [InlineData("2024-05-01")]
    [InlineData("2024-02-29")]
    [InlineData("2024-05-01T08:30")]
    [InlineData("2024-05-01 08:30:15")]
    [InlineData("2024-05-01T08:30:15Z")]
    [InlineData("2024-05-01T08:30:15.1Z")]
    [InlineData("2024-05-01T08:30:15.1234567+02:00")]
    [InlineData("2024-05-01T08:30:15-0330")]
    [InlineData("2024-05-01T23:59:59.9999999-14:00")]
    [InlineData("2024-12-31T23:30:00+14")]
    public void Values_read_quickly_convert_as_before_under_every_culture(string text)
    {
        Assert.True(IsoDateTime.TryParse(text, out _, out _, out _));
        AssertConvertsAsTheGeneralParser(text);
    }

    private static void AssertConvertsAsTheGeneralParser(string text)
    {
        foreach (var culture in Cultures)
        {
            // What TryConvert did before the quick path, as the oracle.
            var tzOk = DateTimeOffset.TryParse(text, culture, DateTimeStyles.AssumeUniversal, out var tz);
            var tzError = ColumnValues.TryConvert(text, ColumnType.TimestampTz, culture, null, out var tzValue);
            Assert.True(tzOk == (tzError is null), $"'{text}' ({culture.Name}) as timestamptz: general parser {tzOk}, TryConvert '{tzError}'");
            if (tzOk)
            {
                var got = Assert.IsType<DateTimeOffset>(tzValue);
                Assert.True(got.UtcTicks == tz.UtcTicks && got.Offset == tz.Offset, $"'{text}' ({culture.Name}): {got:O} against {tz:O}");
            }

            var tsOk = DateTime.TryParse(text, culture, DateTimeStyles.None, out var ts);
            var tsError = ColumnValues.TryConvert(text, ColumnType.Timestamp, culture, null, out var tsValue);
            Assert.True(tsOk == (tsError is null), $"'{text}' ({culture.Name}) as timestamp: general parser {tsOk}, TryConvert '{tsError}'");
            if (tsOk)
            {
                var got = Assert.IsType<DateTime>(tsValue);
                Assert.Equal(DateTime.SpecifyKind(ts, DateTimeKind.Unspecified), got);
                Assert.Equal(DateTimeKind.Unspecified, got.Kind);
            }

            DateOnly? date = DateOnly.TryParse(text, culture, DateTimeStyles.None, out var d) ? d
                : DateTimeOffset.TryParse(text, culture, DateTimeStyles.None, out var dto) ? DateOnly.FromDateTime(dto.Date) : null;
            var dateError = ColumnValues.TryConvert(text, ColumnType.Date, culture, null, out var dateValue);
            Assert.True(date.HasValue == (dateError is null), $"'{text}' ({culture.Name}) as date: general parser {date}, TryConvert '{dateError}'");
            if (date is { } expected)
            {
                Assert.Equal(expected, Assert.IsType<DateOnly>(dateValue));
            }
        }
    }

    /// <summary>Mostly well-formed ISO 8601 text, with a share of values out of range and of shapes slightly off.</summary>
    private static string Generate(Random random)
    {
        var sb = new StringBuilder();
        sb.Append(random.Next(10) == 0 ? random.Next(0, 10000).ToString("D4", CultureInfo.InvariantCulture) : random.Next(1900, 2100).ToString(CultureInfo.InvariantCulture));
        sb.Append('-').Append(random.Next(0, 14).ToString("D2", CultureInfo.InvariantCulture));
        sb.Append('-').Append(random.Next(0, 33).ToString("D2", CultureInfo.InvariantCulture));
        if (random.Next(8) == 0)
        {
            return sb.ToString();
        }

        sb.Append(random.Next(6) == 0 ? ' ' : 'T');
        sb.Append(random.Next(0, 26).ToString("D2", CultureInfo.InvariantCulture)).Append(':').Append(random.Next(0, 62).ToString("D2", CultureInfo.InvariantCulture));
        if (random.Next(5) != 0)
        {
            sb.Append(':').Append(random.Next(0, 62).ToString("D2", CultureInfo.InvariantCulture));
            if (random.Next(3) == 0)
            {
                sb.Append('.');
                var digits = random.Next(0, 10);
                for (var i = 0; i < digits; i++)
                {
                    sb.Append((char)('0' + random.Next(10)));
                }
            }
        }

        switch (random.Next(6))
        {
            case 0:
                break;
            case 1:
                sb.Append('Z');
                break;
            default:
                sb.Append(random.Next(2) == 0 ? '+' : '-').Append(random.Next(0, 16).ToString("D2", CultureInfo.InvariantCulture));
                switch (random.Next(3))
                {
                    case 0:
                        break;
                    case 1:
                        sb.Append(':').Append(random.Next(0, 62).ToString("D2", CultureInfo.InvariantCulture));
                        break;
                    default:
                        sb.Append(random.Next(0, 62).ToString("D2", CultureInfo.InvariantCulture));
                        break;
                }

                break;
        }

        return sb.ToString();
    }
}
