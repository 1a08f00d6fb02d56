using System.Globalization;
using System.Runtime.CompilerServices;
using CsvHelper;
using Ingestion;

namespace Fixtures.Csv;

/// <summary>A plug-in built against CsvHelper 30 while the host uses CsvHelper 34: reports which copy it runs with.</summary>
public sealed class CsvPlugin : IIngestionPlugin
{
    public const string SourceName = "csv-old";

    public void Configure(IIngestionBuilder builder) => builder.AddSource<CsvVersionSource>(SourceName);
}

public sealed class CsvVersionRecord
{
    [RecordKey]
    public string Id { get; set; } = "";

    public string CsvHelperVersion { get; set; } = "";

    public string FirstCity { get; set; } = "";
}

public sealed class CsvVersionSource : IngestionSource<CsvVersionRecord>
{
    public override async IAsyncEnumerable<CsvVersionRecord> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        using var csv = new CsvReader(new StringReader("city,population\nMontréal,1762949\n"), CultureInfo.InvariantCulture);
        csv.Read();
        csv.ReadHeader();
        csv.Read();
        yield return new CsvVersionRecord
        {
            Id = CsvPlugin.SourceName,
            CsvHelperVersion = typeof(CsvReader).Assembly.GetName().Version!.ToString(),
            FirstCity = csv.GetField("city") ?? "",
        };
    }
}
