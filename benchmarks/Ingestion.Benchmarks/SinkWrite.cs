using Ingestion.Benchmarks.Data;
using Ingestion.Sinks;

namespace Ingestion.Benchmarks;

/// <summary>One batch written through our PostgreSQL sink's writer, as the runner would: open, write, complete.</summary>
internal static class SinkWrite
{
    private static readonly RecordSchema Schema = RecordSchema.FromType(typeof(BenchRow));

    /// <summary>Writes <paramref name="rows"/> into <paramref name="table"/> as one batch and checks every row is accounted for.</summary>
    /// <param name="sink">The PostgreSQL sink.</param>
    /// <param name="table">The target table (also the source name).</param>
    /// <param name="mode">The write mode.</param>
    /// <param name="rows">The rows.</param>
    /// <returns>The batch result.</returns>
    public static async Task<SinkBatchResult> OnceAsync(IIngestionSink sink, string table, WriteMode mode, BenchRow[] rows)
    {
        var options = new SourceOptions { Table = table, WriteMode = mode, CreateTable = true, BatchSize = rows.Length };
        var run = new SinkRun { SourceName = table.Replace('_', '-'), RunId = Guid.NewGuid(), Options = options, Schema = Schema };
        var writer = await sink.OpenAsync<BenchRow>(run, CancellationToken.None);
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
}
