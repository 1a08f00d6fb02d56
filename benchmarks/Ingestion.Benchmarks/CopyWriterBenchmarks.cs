using BenchmarkDotNet.Attributes;
using Ingestion.Benchmarks.Data;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Sinks;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Benchmarks;

/// <summary>
/// The per-row cost of writing rows with binary COPY: a hand-written <see cref="NpgsqlBinaryImporter"/>
/// loop (the baseline) against our sink's COPY path (<see cref="WriteMode.Append"/>: compiled accessors,
/// value validation, one COPY). Each invocation copies <see cref="Rows"/> pre-generated rows into an empty
/// table without index (truncated before each iteration), so the figure is the client's cost per row plus
/// the server's bare insert, with row generation left out.
/// </summary>
[MemoryDiagnoser]
public class CopyWriterBenchmarks
{
    /// <summary>Rows per invocation; results are per row (OperationsPerInvoke).</summary>
    public const int Rows = 50_000;

    private BenchDatabase _db = null!;
    private ServiceProvider _services = null!;
    private IIngestionSink _sink = null!;
    private BenchRow[] _rows = [];

    // Setups are synchronous: BenchmarkDotNet's in-process toolchain does not await Task-returning setups.
    [GlobalSetup]
    public void SetUp()
    {
        _db = BenchDatabase.CreateAsync().GetAwaiter().GetResult();
        _rows = RowGenerator.Rows(RowPlan.Initial, Rows).ToArray();
        _db.ExecuteAsync(BenchTable.CreateSql("raw_target", primaryKey: false)).GetAwaiter().GetResult();
        _db.ExecuteAsync(BenchTable.CreateSql("sink_target", primaryKey: false)).GetAwaiter().GetResult();
        var services = new ServiceCollection();
        services.AddIngestion().UsePostgres(o => o.ConnectionString = _db.ConnectionString);
        _services = services.BuildServiceProvider();
        _services.GetRequiredService<IngestionDatabase>().EnsureMigratedAsync(CancellationToken.None).GetAwaiter().GetResult();
        _sink = _services.GetRequiredService<IIngestionSink>();
    }

    [IterationSetup]
    public void Truncate()
    {
        using var cmd = _db.DataSource.CreateCommand("TRUNCATE raw_target, sink_target");
        cmd.ExecuteNonQuery();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Rows, Description = "NpgsqlBinaryImporter loop")]
    public ulong RawImporter()
    {
        using var connection = _db.DataSource.OpenConnection();
        return BenchTable.CopyRaw(connection, "raw_target", _rows);
    }

    [Benchmark(OperationsPerInvoke = Rows, Description = "sink writer, Append")]
    public async Task<long> SinkAppend() => (await SinkWrite.OnceAsync(_sink, "sink_target", WriteMode.Append, _rows)).Created;

    [GlobalCleanup]
    public void CleanUp()
    {
        _services.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _db.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
