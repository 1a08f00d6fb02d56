using System.Globalization;
using System.Text;
using Ingestion.Sources.Ics;

namespace Ingestion.IcsCompare;

/// <summary>
/// For each calendar of a folder: the instances it must give in 2026 (its <c>X-EXPECTED-STARTS</c> line, UTC
/// <c>yyyyMMddTHHmmssZ</c>, floating <c>yyyyMMddTHHmmss</c> or all-day <c>yyyyMMdd</c>) and optionally the summary of
/// its first instance (<c>X-EXPECTED-SUMMARY</c>), checked against our parser and Ical.Net. A calendar is read
/// fully when the parser neither throws nor rejects an event and gives exactly those instances (and summary).
/// Usage: dotnet run -c Release --project benchmarks/Ingestion.IcsCompare [folder]
/// </summary>
internal static class Program
{
    private static readonly DateTimeOffset WindowStart = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset WindowEnd = new(2027, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static int Main(string[] args)
    {
        var folder = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "Calendars");
        var files = Directory.GetFiles(folder, "*.ics").Order(StringComparer.Ordinal).ToList();
        var ours = 0;
        var theirs = 0;
        Console.WriteLine("| calendar | ours | Ical.Net 5.2.4 |");
        Console.WriteLine("|---|---|---|");
        foreach (var file in files)
        {
            var expected = Expectation.Read(file);
            var a = Check(expected, () => Ours(file));
            var b = Check(expected, () => IcalNet(file));
            ours += a.Full ? 1 : 0;
            theirs += b.Full ? 1 : 0;
            Console.WriteLine($"| {Path.GetFileName(file)} | {a.Text} | {b.Text} |");
        }

        Console.WriteLine($"| **read fully** | **{ours} of {files.Count}** | **{theirs} of {files.Count}** |");
        return 0;
    }

    private static (bool Full, string Text) Check(Expectation expected, Func<Reading> read)
    {
        Reading reading;
        try
        {
            reading = read();
        }
#pragma warning disable CA1031 // any exception is a calendar the parser cannot read: report it
        catch (Exception e)
#pragma warning restore CA1031
        {
            return (false, $"fails: {e.GetType().Name}: {Short(e.Message)}");
        }

        if (reading.Rejected.Count > 0)
        {
            return (false, $"rejects {reading.Rejected.Count} event(s): {Short(reading.Rejected[0])}");
        }

        var got = reading.Instances.OrderBy(i => i.Start, StringComparer.Ordinal).ToList();
        if (!got.Select(i => i.Start).SequenceEqual(expected.Starts))
        {
            return (false, $"wrong instances: {string.Join(",", got.Select(i => i.Start))}");
        }

        if (expected.Summary is { } summary && got.FirstOrDefault()?.Summary != summary)
        {
            return (false, $"wrong summary: '{got.FirstOrDefault()?.Summary}'");
        }

        return (true, "full");
    }

    private static Reading Ours(string file)
    {
        using var stream = File.OpenRead(file);
        var settings = new IcsParseSettings { SourceName = Path.GetFileName(file), WindowStart = WindowStart, WindowEnd = WindowEnd };
        var reading = new Reading();
        foreach (var result in IcsParser.Parse(stream, settings))
        {
            if (result.Event is { } e)
            {
                var start = e.IsAllDay ? e.LocalStart.ToString("yyyyMMdd", CultureInfo.InvariantCulture)
                    : e.IsFloating ? e.LocalStart.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)
                    : e.Start.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
                reading.Instances.Add(new Instance(start, e.Summary));
            }
            else if (result.Rejected is { } r)
            {
                reading.Rejected.Add($"{r.Position} {r.Field}: {r.Reason}");
            }
        }

        return reading;
    }

    private static Reading IcalNet(string file)
    {
        using var stream = File.OpenRead(file);
        var calendar = Ical.Net.Calendar.Load(stream) ?? throw new InvalidDataException("no calendar");
        var reading = new Reading();
        var from = new Ical.Net.DataTypes.CalDateTime(WindowStart.UtcDateTime, "UTC", true);
        foreach (var occurrence in calendar.GetOccurrences(from, null))
        {
            var s = occurrence.Period.StartTime;
            var utc = s.HasTime && !s.IsFloating ? s.AsUtc : (DateTime?)null;
            if ((utc ?? s.Value) >= WindowEnd.UtcDateTime)
            {
                break;
            }

            var start = !s.HasTime ? s.Value.ToString("yyyyMMdd", CultureInfo.InvariantCulture)
                : s.IsFloating ? s.Value.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)
                : utc!.Value.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
            reading.Instances.Add(new Instance(start, (occurrence.Source as Ical.Net.CalendarComponents.CalendarEvent)?.Summary));
        }

        return reading;
    }

    private static string Short(string text)
    {
        var line = text.ReplaceLineEndings(" ").Replace("|", "/", StringComparison.Ordinal);
        return line.Length <= 140 ? line : line[..140] + "…";
    }

    private sealed record Instance(string Start, string? Summary);

    private sealed class Reading
    {
        public List<Instance> Instances { get; } = [];

        public List<string> Rejected { get; } = [];
    }

    private sealed record Expectation(IReadOnlyList<string> Starts, string? Summary)
    {
        public static Expectation Read(string file)
        {
            string[] starts = [];
            string? summary = null;
            foreach (var line in File.ReadLines(file, Encoding.UTF8))
            {
                if (line.StartsWith("X-EXPECTED-STARTS:", StringComparison.OrdinalIgnoreCase))
                {
                    starts = line["X-EXPECTED-STARTS:".Length..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                }
                else if (line.StartsWith("X-EXPECTED-SUMMARY:", StringComparison.OrdinalIgnoreCase))
                {
                    summary = line["X-EXPECTED-SUMMARY:".Length..];
                }
            }

            return new Expectation([.. starts.Order(StringComparer.Ordinal)], summary);
        }
    }
}
