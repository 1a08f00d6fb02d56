using Ingestion.Benchmarks.Data;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Sinks;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Benchmarks;

/// <summary>
/// What both BenchmarkDotNet suites stand on: a throwaway database, the library wired to it with
/// <c>UsePostgres</c> (migrated before timing), and its PostgreSQL sink, written to as the runner would.
/// Synchronous create/dispose: BenchmarkDotNet's in-process toolchain does not await Task-returning setups.
/// </summary>
internal sealed class SinkBench : IDisposable
{
    private static readonly RecordSchema Schema = RecordSchema.FromType(typeof(BenchRow));

    private readonly ServiceProvider _services;
    private readonly IIngestionSink _sink;

    private SinkBench(BenchDatabase db, ServiceProvider services)
    {
        Db = db;
        _services = services;
        _sink = services.GetRequiredService<IIngestionSink>();
    }

    /// <summary>The benchmark's database.</summary>
    public BenchDatabase Db { get; }

    /// <summary>Creates the database and the migrated library services.</summary>
    /// <returns>The fixture.</returns>
    public static SinkBench Create()
    {
        var db = BenchDatabase.CreateAsync().GetAwaiter().GetResult();
        var services = new ServiceCollection();
        services.AddIngestion().UsePostgres(o => o.ConnectionString = db.ConnectionString);
        var provider = services.BuildServiceProvider();
        provider.GetRequiredService<IngestionDatabase>().EnsureMigratedAsync(CancellationToken.None).GetAwaiter().GetResult();
        return new SinkBench(db, provider);
    }

    /// <summary>Runs SQL made by the benchmark (never from data).</summary>
    /// <param name="sql">The statement.</param>
    public void Execute(string sql) => Db.ExecuteAsync(sql).GetAwaiter().GetResult();

    /// <summary>Writes <paramref name="rows"/> into <paramref name="table"/> as one batch (open, write, complete) and checks every row is accounted for.</summary>
    /// <param name="table">The target table (also the source name).</param>
    /// <param name="mode">The write mode.</param>
    /// <param name="rows">The rows.</param>
    /// <returns>The batch result.</returns>
    public async Task<SinkBatchResult> WriteOnceAsync(string table, WriteMode mode, BenchRow[] rows)
    {
        var options = new SourceOptions { Table = table, WriteMode = mode, CreateTable = true, BatchSize = rows.Length };
        var run = new SinkRun { SourceName = table.Replace('_', '-'), RunId = Guid.NewGuid(), Options = options, Schema = Schema };
        var writer = await _sink.OpenAsync<BenchRow>(run, CancellationToken.None);
        await using (writer)
        {
            var result = await writer.WriteBatchAsync(new SinkBatch<BenchRow> { Records = rows }, CancellationToken.None);
            await writer.CompleteAsync(CancellationToken.None);
            if (result.Created + result.Updated + result.Unchanged != rows.Length)
            {
                throw new InvalidOperationException($"{table}: the sink accounted for {result.Created + result.Updated + result.Unchanged} of {rows.Length} rows.");
            }

            return result;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _services.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Db.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
