using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Ingestion.Sample.Plugin;

/// <summary>The plug-in's entry point: the host finds it in the DLL and calls Configure once.</summary>
public sealed class BikeCountersPlugin : IIngestionPlugin
{
    public void Configure(IIngestionBuilder builder)
    {
        builder.AddSource<BikeCountersSource>("bike-counters", o =>
        {
            o.Table = "bike_counts";
            o.CreateTable = true;
            o.MaxRejected = 100;
        });
        builder.AddSourceOptions<BikeCountersOptions>("bike-counters", validate: o => o.Validate());
    }
}

/// <summary>The source's own settings, bound from <c>Ingestion:Sources:bike-counters</c>.</summary>
public sealed class BikeCountersOptions
{
    /// <summary>The CSV file; relative paths are relative to the plug-in's folder.</summary>
    public string File { get; set; } = "counters.csv";

    /// <summary>Counts above this are rejected as sensor errors.</summary>
    public int MaxDailyCount { get; set; } = 50_000;

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(File))
        {
            yield return "Ingestion:Sources:bike-counters:File must be set.";
        }

        if (MaxDailyCount <= 0)
        {
            yield return $"Ingestion:Sources:bike-counters:MaxDailyCount must be positive (was {MaxDailyCount}).";
        }
    }
}

/// <summary>One day of one bike counter.</summary>
public sealed class BikeCount
{
    [RecordKey]
    public string CounterId { get; set; } = "";

    [RecordKey]
    public DateOnly Day { get; set; }

    public int Count { get; set; }

    public string Site { get; set; } = "";
}

/// <summary>
/// Reads daily bike counts from a CSV file: rejects bad rows with their line and field, skips the run when the
/// file did not change since the last one (content hash), and checkpoints the hash with the data.
/// </summary>
public sealed class BikeCountersSource(BikeCountersOptions options) : IngestionSource<BikeCount>
{
    public override async IAsyncEnumerable<BikeCount> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var path = Path.IsPathRooted(options.File) ? options.File : Path.Combine(Path.GetDirectoryName(typeof(BikeCountersSource).Assembly.Location) is { Length: > 0 } dir ? dir : AppContext.BaseDirectory, options.File);
        var bytes = await File.ReadAllBytesAsync(path, cancellationToken);
        var hash = Convert.ToHexString(SHA256.HashData(bytes));
        if (hash == context.State.ContentHash)
        {
            context.NotModified();
            yield break;
        }

        using var reader = new StringReader(System.Text.Encoding.UTF8.GetString(bytes));
        var line = 1;
        _ = reader.ReadLine(); // header
        while (reader.ReadLine() is { } text)
        {
            line++;
            cancellationToken.ThrowIfCancellationRequested();
            var fields = text.Split(',');
            if (fields.Length != 4)
            {
                context.Reject(new RejectedRecord($"line {line}", null, $"expected 4 fields, found {fields.Length}", text));
                continue;
            }

            if (!DateOnly.TryParseExact(fields[1], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
            {
                context.Reject(new RejectedRecord($"line {line}", "day", "not a date (yyyy-MM-dd)", fields[1]));
                continue;
            }

            if (!int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count > options.MaxDailyCount)
            {
                context.Reject(new RejectedRecord($"line {line}", "count", $"not a count between 0 and {options.MaxDailyCount}", fields[2]));
                continue;
            }

            yield return new BikeCount { CounterId = fields[0], Day = day, Count = count, Site = fields[3] };
        }

        // Everything was read: save the hash with the last batch, so an unchanged file is skipped next time.
        context.Checkpoint(new SourceCheckpoint(null) { ContentHash = hash });
    }
}
