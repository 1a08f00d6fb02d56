using BenchmarkDotNet.Attributes;
using Ingestion.Benchmarks.Data;
using Ingestion.Sinks;
using Npgsql;

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

    private SinkBench _bench = null!;
    private BenchRow[] _rows = [];

    // Setups are synchronous: BenchmarkDotNet's in-process toolchain does not await Task-returning setups.
    [GlobalSetup]
    public void SetUp()
    {
        _bench = SinkBench.Create();
        _rows = RowGenerator.Rows(RowPlan.Initial, Rows).ToArray();
        _bench.Execute(BenchTable.CreateSql("raw_target", primaryKey: false));
        _bench.Execute(BenchTable.CreateSql("sink_target", primaryKey: false));
    }

    [IterationSetup]
    public void Truncate() => _bench.Execute("TRUNCATE raw_target, sink_target");

    [Benchmark(Baseline = true, OperationsPerInvoke = Rows, Description = "NpgsqlBinaryImporter loop")]
    public ulong RawImporter()
    {
        using var connection = _bench.Db.DataSource.OpenConnection();
        return BenchTable.CopyRaw(connection, "raw_target", _rows);
    }

    [Benchmark(OperationsPerInvoke = Rows, Description = "sink writer, Append")]
    public async Task<long> SinkAppend() => (await _bench.WriteOnceAsync("sink_target", WriteMode.Append, _rows)).Created;

    [GlobalCleanup]
    public void CleanUp()
    {
        _bench.Dispose();
    }
}
