using Ingestion.Sources.Csv;
using Ingestion.Sources.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Sources.Tests.Csv;

/// <summary>A temporary folder of CSV files for one test class, and a direct read of a dynamic CSV source.</summary>
public abstract class CsvTestFiles : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ingestion-csv-").FullName;

    public void Dispose()
    {
        Directory.Delete(_dir, recursive: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Writes a file of these bytes and returns its path.</summary>
    protected string WriteBytes(byte[] bytes, string? name = null)
    {
        var path = Path.Combine(_dir, name ?? Guid.NewGuid().ToString("N") + ".csv");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Reads a dynamic CSV source to its end, collecting its records and what it reported.</summary>
    internal static async Task<(List<DynamicRecord> Records, TestIngestionContext Context)> ReadAsync(CsvSourceOptions options, SourceState? state = null)
    {
        var services = new ServiceCollection().AddSourceHttp().BuildServiceProvider();
        var source = new CsvSource(services.GetRequiredService<ISourceHttpClientFactory>(), new StaticOptions<CsvSourceOptions>(options));
        var context = new TestIngestionContext(state: state);
        var records = new List<DynamicRecord>();
        await foreach (var r in source.ReadAsync(context, default))
        {
            records.Add(r);
        }

        return (records, context);
    }
}
