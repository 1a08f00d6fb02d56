using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Running;
using Ingestion.Sinks;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Core.Tests.Running;

/// <summary>
/// The runner hands a full batch to the sink in the background and reads the next one meanwhile; batches still
/// reach the sink one at a time, in order, and a failed write surfaces before anything after it is written.
/// </summary>
public class BatchPipelineTests
{
    [Fact]
    public async Task The_source_reads_the_next_batch_while_the_previous_one_is_written()
    {
        var sink = new GatedSink();
        var read = 0;
        var readPastFirstBatch = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async IAsyncEnumerable<Item> Read([EnumeratorCancellation] CancellationToken ct = default)
        {
            for (var i = 1; i <= 25; i++)
            {
                await Task.Yield();
                Interlocked.Exchange(ref read, i);
                if (i == 15)
                {
                    readPastFirstBatch.TrySetResult();
                }

                yield return new Item { Id = $"k{i}", Value = i };
            }
        }

        await using var sp = Build(sink, Read);
        var run = sp.GetRequiredService<IIngestionRunner>().RunAsync("items", null, CancellationToken.None);

        // The first batch (records 1-10) is held inside the sink; the source still gets to record 15.
        await sink.FirstWriteStarted.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await readPastFirstBatch.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(1, sink.Writes);
        sink.Release.SetResult();

        var result = await run;
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal((25L, 25L), (result.Counts.Read, result.Counts.Created));
        Assert.Equal([1L, 11L, 21L], sink.FirstRecordNumbers);
        Assert.Equal(1, sink.MaxConcurrentWrites);
    }

    [Fact]
    public async Task A_failed_write_fails_the_run_and_no_later_batch_is_written()
    {
        var sink = new GatedSink { FailOnWrite = 2 };
        sink.Release.SetResult();
        await using var sp = Build(sink, (ct) => ScriptedSource.Items(45, ct: ct));
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("items", null, CancellationToken.None);

        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("write 2 failed", result.Error!.Message, StringComparison.Ordinal);
        Assert.Equal("record 11", result.Error.Position);
        Assert.Equal([1L, 11L], sink.FirstRecordNumbers);
        Assert.Equal(10L, result.Counts.Created);
    }

    private static ServiceProvider Build(GatedSink sink, Func<CancellationToken, IAsyncEnumerable<Item>> read)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IIngestionSink>(sink);
        services.AddIngestion().AddSource("items", _ => new ScriptedSource((_, ct) => read(ct)), o =>
        {
            o.BatchSize = 10;
            o.MaxRetryAttempts = 0;
        });
        return services.BuildServiceProvider();
    }

    private sealed class GatedSink : IIngestionSink
    {
        private int _active;

        public TaskCompletionSource FirstWriteStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<long> FirstRecordNumbers { get; } = [];

        public int Writes { get; private set; }

        public int MaxConcurrentWrites { get; private set; }

        public int FailOnWrite { get; init; }

        public ValueTask<ISinkWriter<TRecord>> OpenAsync<TRecord>(SinkRun run, CancellationToken cancellationToken)
            where TRecord : class => ValueTask.FromResult<ISinkWriter<TRecord>>(new Writer<TRecord>(this));

        private sealed class Writer<TRecord>(GatedSink sink) : ISinkWriter<TRecord>
            where TRecord : class
        {
            public async ValueTask<SinkBatchResult> WriteBatchAsync(SinkBatch<TRecord> batch, CancellationToken cancellationToken)
            {
                var active = Interlocked.Increment(ref sink._active);
                try
                {
                    lock (sink)
                    {
                        sink.MaxConcurrentWrites = Math.Max(sink.MaxConcurrentWrites, active);
                        sink.Writes++;
                        sink.FirstRecordNumbers.Add(batch.FirstRecordNumber);
                    }

                    sink.FirstWriteStarted.TrySetResult();
                    await sink.Release.Task.WaitAsync(cancellationToken);
                    if (sink.Writes == sink.FailOnWrite)
                    {
                        throw new InvalidOperationException($"write {sink.Writes} failed");
                    }

                    return new SinkBatchResult { Created = batch.Records.Count };
                }
                finally
                {
                    Interlocked.Decrement(ref sink._active);
                }
            }

            public ValueTask<SinkCompletion> CompleteAsync(CancellationToken cancellationToken) => ValueTask.FromResult(SinkCompletion.None);

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
