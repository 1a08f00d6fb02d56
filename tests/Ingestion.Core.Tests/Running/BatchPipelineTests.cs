using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Running;
using Ingestion.Sinks;
using Ingestion.Sync;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Core.Tests.Running;

/// <summary>
/// The runner hands a full batch to the sink in the background and reads the next one meanwhile (two batches when the
/// sink prepares that far ahead); batches still reach the sink one at a time, in order, and a failed write surfaces
/// before anything after it is written.
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

    [Theory]
    [InlineData(0)] // a plain writer: one write in flight
    [InlineData(2)] // a preparing writer asking for two: the third batch was handed over behind the failing one
    public async Task A_failed_write_fails_the_run_and_no_later_batch_is_written(int preparedAhead)
    {
        var sink = new GatedSink { FailOnWrite = 2, PreparedAhead = preparedAhead };
        sink.Release.SetResult();
        await using var sp = Build(sink, (ct) => ScriptedSource.Items(45, ct: ct));
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("items", null, CancellationToken.None);

        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("write 2 failed", result.Error!.Message, StringComparison.Ordinal);
        Assert.Equal("record 11", result.Error.Position);
        Assert.Equal([1L, 11L], sink.FirstRecordNumbers);
        Assert.Equal(10L, result.Counts.Created);
    }

    [Fact]
    public async Task A_sink_preparing_two_batches_ahead_gets_the_next_one_while_the_one_before_is_still_written()
    {
        var sink = new GatedSink { PreparedAhead = 2 };
        await using var sp = Build(sink, (ct) => ScriptedSource.Items(45, ct: ct));
        var run = sp.GetRequiredService<IIngestionRunner>().RunAsync("items", null, CancellationToken.None);

        // The first write is held: the second batch is handed over behind it, and the third prepared meanwhile.
        await sink.FirstWriteStarted.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await sink.PreparedThird.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(1, sink.Writes);
        sink.Release.SetResult();

        var result = await run;
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal((45L, 45L), (result.Counts.Read, result.Counts.Created));
        Assert.Equal([1L, 11L, 21L, 31L, 41L], sink.FirstRecordNumbers);
        Assert.Equal(1, sink.MaxConcurrentWrites);
    }

    [Fact]
    public async Task A_batch_handed_over_behind_another_carries_its_own_checkpoint_not_a_later_one()
    {
        // The source checkpoints after every record, and the reader moves on while a batch waits behind another.
        var sink = new GatedSink { PreparedAhead = 2 };
        async IAsyncEnumerable<Item> Read(IngestionContext context, [EnumeratorCancellation] CancellationToken ct = default)
        {
            for (var i = 1; i <= 45; i++)
            {
                await Task.Yield();
                yield return new Item { Id = $"k{i}", Value = i };
                context.Checkpoint(new SourceCheckpoint(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        }

        sink.Release.SetResult();
        await using var sp = Build(sink, Read, batchSize: 3);
        Assert.Equal(IngestionStatus.Succeeded, (await sp.GetRequiredService<IIngestionRunner>().RunAsync("items", null, CancellationToken.None)).Status);
        // Each batch of three carries the checkpoint taken before its last record; the last one comes alone.
        Assert.Equal([.. Enumerable.Range(0, 15).Select(b => $"{(b * 3) + 2}"), "45"], sink.Cursors);
    }

    [Fact]
    public async Task A_sink_preparing_one_batch_ahead_never_gets_the_third_before_the_first_is_written()
    {
        var sink = new GatedSink { PreparedAhead = 1 };
        await using var sp = Build(sink, (ct) => ScriptedSource.Items(45, ct: ct));
        var run = sp.GetRequiredService<IIngestionRunner>().RunAsync("items", null, CancellationToken.None);

        await sink.FirstWriteStarted.Task.WaitAsync(TimeSpan.FromSeconds(20));
        var waited = await Task.WhenAny(sink.PreparedThird.Task, Task.Delay(TimeSpan.FromMilliseconds(300)));
        Assert.False(ReferenceEquals(waited, sink.PreparedThird.Task), "the third batch was prepared while the first was written");
        sink.Release.SetResult();

        Assert.Equal(IngestionStatus.Succeeded, (await run).Status);
        Assert.Equal([1L, 11L, 21L, 31L, 41L], sink.FirstRecordNumbers);
    }

    [Fact]
    public async Task A_batch_handed_over_behind_another_gets_the_error_budget_that_one_left()
    {
        // The first write rejects 3 records; the second batch was handed over before that was known.
        var sink = new GatedSink { PreparedAhead = 2, RejectsOfWrite = { [1] = 3 } };
        await using var sp = Build(sink, (ct) => ScriptedSource.Items(45, ct: ct), maxRejected: 5);
        var run = sp.GetRequiredService<IIngestionRunner>().RunAsync("items", null, CancellationToken.None);
        await sink.PreparedThird.Task.WaitAsync(TimeSpan.FromSeconds(20));
        sink.Release.SetResult();

        var result = await run;
        Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);
        Assert.Equal([5L, 2L, 2L, 2L, 2L], sink.Budgets);
        Assert.Equal((3L, 42L), (result.Counts.Rejected, result.Counts.Created));
    }

    [Fact]
    public async Task A_batch_handed_over_behind_another_whose_rejects_use_up_the_budget_is_not_written_when_its_own_go_over()
    {
        // The first write rejects 3 records of a budget of 3; the source rejects a record of the second batch.
        var sink = new GatedSink { PreparedAhead = 2, RejectsOfWrite = { [1] = 3 } };
        async IAsyncEnumerable<Item> Read(IngestionContext context, [EnumeratorCancellation] CancellationToken ct = default)
        {
            for (var i = 1; i <= 45; i++)
            {
                await Task.Yield();
                if (i == 12)
                {
                    context.Reject(new RejectedRecord("line 12", "value", "not a number"));
                    continue;
                }

                yield return new Item { Id = $"k{i}", Value = i };
            }
        }

        sink.Release.SetResult();
        await using var sp = Build(sink, Read, maxRejected: 3);
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("items", null, CancellationToken.None);

        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("over its error budget of 3", result.Error!.Message, StringComparison.Ordinal);
        Assert.Contains("line 12", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal([1L], sink.FirstRecordNumbers);
        Assert.Equal((7L, 3L), (result.Counts.Created, result.Counts.Rejected));
    }

    [Fact]
    public async Task With_nothing_beside_the_sink_a_batch_is_given_over_to_it_and_reaches_its_write_as_the_same_array()
    {
        // The writer releases every record but the first as soon as it is given a batch: the runner must read nothing
        // of the batch after that but its length.
        var sink = new GatedSink { PreparedAhead = 2, ReleaseRecords = true };
        sink.Release.SetResult();
        await using var sp = Build(sink, (ct) => ScriptedSource.Items(25, ct: ct));
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("items", null, CancellationToken.None);

        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal((25L, 25L), (result.Counts.Read, result.Counts.Created));
        Assert.Equal(3, sink.GivenOver.Count);
        Assert.Equal(3, sink.WrittenAsGivenOver);
    }

    [Fact]
    public async Task With_a_hook_beside_the_sink_no_batch_is_given_over()
    {
        // The hook reads each batch's records after its write: the sink may not release them.
        var sink = new GatedSink { PreparedAhead = 2, ReleaseRecords = true };
        sink.Release.SetResult();
        await using var sp = Build(sink, (_, ct) => ScriptedSource.Items(25, ct: ct), hook: new RecordReadingHook());
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("items", null, CancellationToken.None);

        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal((25L, 25L), (result.Counts.Read, result.Counts.Created));
        Assert.Empty(sink.GivenOver);
    }

    private static ServiceProvider Build(GatedSink sink, Func<CancellationToken, IAsyncEnumerable<Item>> read, long maxRejected = 0) =>
        Build(sink, (_, ct) => read(ct), maxRejected);

    private static ServiceProvider Build(GatedSink sink, Func<IngestionContext, CancellationToken, IAsyncEnumerable<Item>> read, long maxRejected = 0, int batchSize = 10, ISinkHook? hook = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IIngestionSink>(sink);
        if (hook is not null)
        {
            services.AddSingleton(hook);
        }

        services.AddIngestion().AddSource("items", _ => new ScriptedSource(read), o =>
        {
            o.BatchSize = batchSize;
            o.MaxRetryAttempts = 0;
            o.MaxRejected = maxRejected;
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

        /// <summary>0: a plain writer; else a preparing one that asks for this many batches ahead.</summary>
        public int PreparedAhead { get; init; }

        /// <summary>How many records the numbered write (1-based) rejects.</summary>
        public Dictionary<int, int> RejectsOfWrite { get; } = [];

        /// <summary>Set once the batch starting at record 21 is prepared.</summary>
        public TaskCompletionSource PreparedThird { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The error budget each write was given, in order.</summary>
        public List<long> Budgets { get; } = [];

        /// <summary>The checkpoint cursor each write was given, in order.</summary>
        public List<string?> Cursors { get; } = [];

        /// <summary>Whether the preparing writer releases (clears) every record but the first of a batch given over to it.</summary>
        public bool ReleaseRecords { get; init; }

        /// <summary>The arrays the runner gave over (<see cref="IPreparingSinkWriter{TRecord}.PrepareReleasableBatch"/>).</summary>
        public List<object> GivenOver { get; } = [];

        /// <summary>How many writes got one of <see cref="GivenOver"/> as their records.</summary>
        public int WrittenAsGivenOver { get; private set; }

        public ValueTask<ISinkWriter<TRecord>> OpenAsync<TRecord>(SinkRun run, CancellationToken cancellationToken)
            where TRecord : class => ValueTask.FromResult<ISinkWriter<TRecord>>(PreparedAhead > 0 ? new PreparingWriter<TRecord>(this) : new Writer<TRecord>(this));

        private sealed class PreparingWriter<TRecord>(GatedSink sink) : Writer<TRecord>(sink), IPreparingSinkWriter<TRecord>
            where TRecord : class
        {
            private readonly GatedSink _sink = sink;

            public int BatchesPreparedAhead => _sink.PreparedAhead;

            public object? PrepareBatch(IReadOnlyList<TRecord> records, long firstRecordNumber)
            {
                if (firstRecordNumber == 21)
                {
                    _sink.PreparedThird.TrySetResult();
                }

                return null;
            }

            public object? PrepareReleasableBatch(TRecord[] records, long firstRecordNumber)
            {
                lock (_sink)
                {
                    _sink.GivenOver.Add(records);
                }

                if (_sink.ReleaseRecords)
                {
                    Array.Clear(records, 1, records.Length - 1);
                }

                return PrepareBatch(records, firstRecordNumber);
            }
        }

        private class Writer<TRecord>(GatedSink sink) : ISinkWriter<TRecord>
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
                        sink.Budgets.Add(batch.RejectBudget);
                        sink.Cursors.Add(batch.State?.Cursor);
                        sink.WrittenAsGivenOver += sink.GivenOver.Any(a => ReferenceEquals(a, batch.Records)) ? 1 : 0;
                    }

                    sink.FirstWriteStarted.TrySetResult();
                    await sink.Release.Task.WaitAsync(cancellationToken);
                    if (sink.Writes == sink.FailOnWrite)
                    {
                        throw new InvalidOperationException($"write {sink.Writes} failed");
                    }

                    var rejects = sink.RejectsOfWrite.GetValueOrDefault(sink.Writes);
                    return new SinkBatchResult
                    {
                        Created = batch.Records.Count - rejects,
                        Rejected = [.. batch.Records.Take(rejects).Select((_, i) => new RejectedRecord(batch.PositionOf(i), "value", "refused by the sink"))],
                    };
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

    /// <summary>A hook attached to every run that reads each batch's records after its write, as deletion detection does.</summary>
    private sealed class RecordReadingHook : ISinkHook
    {
        public ValueTask<ISinkHookRun<TRecord>?> OpenAsync<TRecord>(SinkRun run, CancellationToken cancellationToken)
            where TRecord : class => ValueTask.FromResult<ISinkHookRun<TRecord>?>(new HookRun<TRecord>());

        private sealed class HookRun<TRecord> : ISinkHookRun<TRecord>
            where TRecord : class
        {
            public ValueTask<SinkBatchResult> AfterBatchAsync(SinkBatch<TRecord> batch, SinkBatchResult written, CancellationToken cancellationToken)
            {
                Assert.All(batch.Records, r => Assert.NotNull(r));
                return ValueTask.FromResult(written);
            }

            public ValueTask<SinkCompletion> AfterCompleteAsync(SinkCompletion completion, CancellationToken cancellationToken) => ValueTask.FromResult(completion);

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
