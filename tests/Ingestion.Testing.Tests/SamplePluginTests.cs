using Ingestion.Sample.Plugin;

namespace Ingestion.Testing.Tests;

/// <summary>The sample plug-in's source, tested with the kit the way a source author would.</summary>
public class SamplePluginTests
{
    private static string CountersFile()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var file = Path.Combine(dir.FullName, "samples", "Ingestion.Sample.Plugin", "counters.csv");
            if (File.Exists(file))
            {
                return file;
            }
        }

        throw new FileNotFoundException("samples/Ingestion.Sample.Plugin/counters.csv not found");
    }

    [Fact]
    public async Task Bike_counters_reads_rejects_bad_rows_with_their_line_and_skips_an_unchanged_file()
    {
        var options = new BikeCountersOptions { File = CountersFile() };
        var run = await SourceTester.RunAsync(new BikeCountersSource(options));
        Assert.Equal(6, run.Records.Count);
        Assert.Equal([("line 5", "count"), ("line 8", "day")], run.Rejected.Select(r => (r.Position, r.Field!)));
        Assert.NotNull(run.State.ContentHash);

        var again = await SourceTester.RunAsync(new BikeCountersSource(options), new SourceTestOptions { State = run.State });
        Assert.True(again.NotModified);
        Assert.Empty(again.Records);

        await SourceTester.AssertResumesAsync(() => new BikeCountersSource(options), r => $"{r.CounterId}/{r.Day:yyyy-MM-dd}");
    }

    [Fact]
    public void Bike_counters_settings_are_validated()
    {
        Assert.Equal(["Ingestion:Sources:bike-counters:MaxDailyCount must be positive (was 0)."], new BikeCountersOptions { MaxDailyCount = 0 }.Validate());
    }
}
