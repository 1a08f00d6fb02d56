using BenchmarkDotNet.Attributes;
using Ingestion.Benchmarks.Data;
using Ingestion.Sinks;

namespace Ingestion.Benchmarks;

/// <summary>
/// The per-row cost of each write mode of our PostgreSQL sink, one batch of <see cref="Rows"/> rows a
/// invocation through <see cref="ISinkWriter{TRecord}"/> (open, write the batch, complete), against a
/// hand-written binary COPY into a table with the same primary key (the baseline). Before each iteration the
/// target table is put in the state the mode needs (empty, or holding the initial rows); that is not timed.
/// </summary>
[MemoryDiagnoser]
public class MergeModeBenchmarks
{
    /// <summary>Rows per invocation; results are per row (OperationsPerInvoke).</summary>
    public const int Rows = 20_000;

    private SinkBench _bench = null!;
    private BenchRow[] _initial = [];
    private BenchRow[] _changed = [];
    private BenchRow[] _mixed = [];

    // Setups are synchronous: BenchmarkDotNet's in-process toolchain does not await Task-returning setups.
    [GlobalSetup]
    public void SetUp()
    {
        _bench = SinkBench.Create();
        _initial = RowGenerator.Rows(RowPlan.Initial, Rows).ToArray();
        _changed = RowGenerator.Rows(RowPlan.AllChanged, Rows).ToArray();
        _mixed = RowGenerator.Rows(RowPlan.Mixed, Rows).ToArray();
        _bench.Execute(BenchTable.CreateSql("raw_pk"));
    }

    [IterationSetup(Target = nameof(RawCopyWithPrimaryKey))]
    public void EmptyRawTable() => _bench.Execute("TRUNCATE raw_pk");

    [IterationSetup(Targets = [nameof(MergeFirstLoad), nameof(Append)])]
    public void EmptyTables()
    {
        Drop("mm_first_load");
        Drop("mm_append");
    }

    [IterationSetup(Targets = [nameof(MergeUnchanged), nameof(MergeUpdateAll), nameof(MergeMixed), nameof(Replace)])]
    public void PreloadedTables()
    {
        foreach (var table in new[] { "mm_unchanged", "mm_update_all", "mm_mixed", "mm_replace" })
        {
            Drop(table);
            Write(table, WriteMode.Merge, _initial).GetAwaiter().GetResult();
            _bench.Execute($"VACUUM (ANALYZE) {table}");
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Rows, Description = "raw COPY into PK table")]
    public ulong RawCopyWithPrimaryKey()
    {
        using var connection = _bench.Db.DataSource.OpenConnection();
        return BenchTable.CopyRaw(connection, "raw_pk", _initial);
    }

    [Benchmark(OperationsPerInvoke = Rows, Description = "Merge, all new")]
    public Task<SinkBatchResult> MergeFirstLoad() => Write("mm_first_load", WriteMode.Merge, _initial);

    [Benchmark(OperationsPerInvoke = Rows, Description = "Merge, all unchanged")]
    public Task<SinkBatchResult> MergeUnchanged() => Write("mm_unchanged", WriteMode.Merge, _initial);

    [Benchmark(OperationsPerInvoke = Rows, Description = "Merge, all changed")]
    public Task<SinkBatchResult> MergeUpdateAll() => Write("mm_update_all", WriteMode.Merge, _changed);

    [Benchmark(OperationsPerInvoke = Rows, Description = "Merge, 1/3 new 1/3 changed 1/3 same")]
    public Task<SinkBatchResult> MergeMixed() => Write("mm_mixed", WriteMode.Merge, _mixed);

    [Benchmark(OperationsPerInvoke = Rows, Description = "Append, all new")]
    public Task<SinkBatchResult> Append() => Write("mm_append", WriteMode.Append, _initial);

    [Benchmark(OperationsPerInvoke = Rows, Description = "Replace, same rows")]
    public Task<SinkBatchResult> Replace() => Write("mm_replace", WriteMode.Replace, _initial);

    [GlobalCleanup]
    public void CleanUp()
    {
        _bench.Dispose();
    }

    private void Drop(string table) => _bench.Execute($"DROP TABLE IF EXISTS {table}");

    private Task<SinkBatchResult> Write(string table, WriteMode mode, BenchRow[] rows) => _bench.WriteOnceAsync(table, mode, rows);
}
