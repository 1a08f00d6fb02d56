using System.Globalization;
using BenchmarkDotNet.Attributes;
using Ingestion.Benchmarks.Data;
using Ingestion.Sources.Mapping;

namespace Ingestion.Benchmarks;

/// <summary>
/// The cost of reading one timestamp of a CSV or JSON file: the general .NET parser a source used for every value
/// (<see cref="DateTimeOffset.TryParse(ReadOnlySpan{char}, IFormatProvider, DateTimeStyles, out DateTimeOffset)"/>,
/// the baseline) against <see cref="ColumnValues.TryConvert(string, ColumnType, CultureInfo, string, out object)"/>,
/// which reads ISO 8601 text itself. The values are the comparison's CSV timestamps (<c>2024-...T...Z</c>) and the
/// same instants written with a fraction and an offset. No database.
/// </summary>
/// <remarks>
/// Unlike the database suites (one invocation an iteration), this one lets BenchmarkDotNet pick how many invocations
/// an iteration holds, so the parsers run at their final tier, as they do a few thousand rows into a file.
/// </remarks>
[MemoryDiagnoser]
[SimpleJob(warmupCount: 3, iterationCount: 10)]
public class ValueParsingBenchmarks
{
    /// <summary>Values per invocation; results are per value (OperationsPerInvoke).</summary>
    public const int Values = 20_000;

    private string[] _values = [];

    [GlobalSetup]
    public void SetUp() => _values = RowGenerator.Rows(RowPlan.Initial, Values)
        .Select((r, i) => i % 2 == 0
            ? r.ObservedAt.ToString(CsvFile.TimestampFormat, CultureInfo.InvariantCulture)
            : new DateTimeOffset(DateTime.SpecifyKind(r.ObservedAt, DateTimeKind.Utc)).ToOffset(TimeSpan.FromHours(2)).ToString("yyyy-MM-dd HH:mm:ss.fffzzz", CultureInfo.InvariantCulture))
        .ToArray();

    [Benchmark(Baseline = true, OperationsPerInvoke = Values, Description = "DateTimeOffset.TryParse")]
    public long General()
    {
        long sum = 0;
        foreach (var v in _values)
        {
            if (DateTimeOffset.TryParse(v.AsSpan(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var d))
            {
                sum += d.UtcTicks;
            }
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = Values, Description = "ColumnValues.TryConvert, timestamptz")]
    public long Column()
    {
        long sum = 0;
        foreach (var v in _values)
        {
            if (ColumnValues.TryConvert(v, ColumnType.TimestampTz, CultureInfo.InvariantCulture, null, out var value) is null)
            {
                sum += ((DateTimeOffset)value!).UtcTicks;
            }
        }

        return sum;
    }
}
