using BenchmarkDotNet.Attributes;
using Ingestion.Benchmarks.Data;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Benchmarks;

/// <summary>
/// The per-row cost of writing rows with binary COPY: a hand-written <see cref="NpgsqlBinaryImporter"/>
/// loop (the baseline) against our sink's COPY path. Each invocation copies <see cref="Rows"/>
/// pre-generated rows into an empty table without index (truncated before each iteration), so the figure
/// is the client's cost per row plus the server's bare insert, with row generation left out.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 8, invocationCount: 1)]
public class CopyWriterBenchmarks
{
    /// <summary>Rows per invocation; results are per row (OperationsPerInvoke).</summary>
    public const int Rows = 50_000;

    private BenchDatabase _db = null!;
    private BenchRow[] _rows = [];

    // Setups are synchronous: BenchmarkDotNet's in-process toolchain does not await Task-returning setups.
    [GlobalSetup]
    public void SetUp()
    {
        _db = BenchDatabase.CreateAsync().GetAwaiter().GetResult();
        _rows = RowGenerator.Rows(RowPlan.Initial, Rows).ToArray();
        _db.ExecuteAsync(BenchTable.CreateSql("raw_target", primaryKey: false)).GetAwaiter().GetResult();
    }

    [IterationSetup]
    public void Truncate()
    {
        using var cmd = _db.DataSource.CreateCommand("TRUNCATE raw_target");
        cmd.ExecuteNonQuery();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Rows, Description = "NpgsqlBinaryImporter loop")]
    public ulong RawImporter()
    {
        using var connection = _db.DataSource.OpenConnection();
        using var importer = connection.BeginBinaryImport($"COPY raw_target ({BenchTable.ColumnList}) FROM STDIN (FORMAT BINARY)");
        foreach (var r in _rows)
        {
            importer.StartRow();
            importer.Write(r.Region, NpgsqlDbType.Text);
            importer.Write(r.Code, NpgsqlDbType.Text);
            importer.Write(r.ObservedAt, NpgsqlDbType.TimestampTz);
            importer.Write(r.Name, NpgsqlDbType.Text);
            importer.Write(r.Category, NpgsqlDbType.Smallint);
            importer.Write(r.Quantity, NpgsqlDbType.Integer);
            importer.Write(r.Latitude, NpgsqlDbType.Double);
            importer.Write(r.Longitude, NpgsqlDbType.Double);
            importer.Write(r.Description, NpgsqlDbType.Text);
            importer.Write(r.Active, NpgsqlDbType.Boolean);
        }

        return importer.Complete();
    }

    [GlobalCleanup]
    public void CleanUp() => _db.DisposeAsync().AsTask().GetAwaiter().GetResult();
}
