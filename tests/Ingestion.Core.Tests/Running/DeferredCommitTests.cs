using Ingestion.Hosting;
using Ingestion.Running;
using Ingestion.Sinks;
using Ingestion.Sync;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Core.Tests.Running;

/// <summary>
/// The runner lets a sink defer the commit of a batch that writes nothing (<see cref="SinkBatch{TRecord}.MayDeferCommit"/>)
/// only in runs that commit batch by batch with no sink hook attached, and counts a deferred batch as committed only
/// once a later batch or the completion commits it.
/// </summary>
public class DeferredCommitTests
{
    [Theory]
    [InlineData("per-batch", true)]
    [InlineData("hook-not-interested", true)]
    [InlineData("hook-attached", false)]
    [InlineData("whole-run", false)]
    [InlineData("replace", false)]
    [InlineData("dry-run", false)]
    public async Task A_batch_may_defer_its_commit_only_in_a_per_batch_run_without_sink_hooks(string setup, bool expected)
    {
        var sink = new DeferringSink();
        var services = new ServiceCollection();
        services.AddSingleton<IIngestionSink>(sink);
        if (setup.StartsWith("hook", StringComparison.Ordinal))
        {
            services.AddSingleton<ISinkHook>(new Hook(attach: setup == "hook-attached"));
        }

        services.AddIngestion().AddSource("items", _ => new ScriptedSource((_, ct) => ScriptedSource.Items(25, ct: ct)), o =>
        {
            o.BatchSize = 10;
            o.MaxRetryAttempts = 0;
            o.Transaction = setup == "whole-run" ? TransactionScope.WholeRun : TransactionScope.PerBatch;
            o.WriteMode = setup == "replace" ? WriteMode.Replace : WriteMode.Merge;
        });
        await using var sp = services.BuildServiceProvider();

        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("items", new RunRequest { DryRun = setup == "dry-run" }, CancellationToken.None);

        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal([expected, expected, expected], sink.MayDefer);
        Assert.Equal((25L, 25L), (result.Counts.Read, result.Counts.Unchanged));
    }

    [Fact]
    public async Task Progress_counts_deferred_batches_and_the_result_counts_each_batch_once()
    {
        var sink = new DeferringSink();
        var progress = new List<IngestionProgress>();
        var services = new ServiceCollection();
        services.AddSingleton<IIngestionSink>(sink);
        services.AddIngestion().AddSource("items", _ => new ScriptedSource((_, ct) => ScriptedSource.Items(45, ct: ct)), o =>
        {
            o.BatchSize = 10;
            o.MaxRetryAttempts = 0;
        });
        await using var sp = services.BuildServiceProvider();

        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("items", new RunRequest { Progress = new SyncProgress(progress.Add) }, CancellationToken.None);

        // Batches 1, 2, 4 and 5 were deferred, batch 3 committed them and itself; an empty batch that may not defer
        // committed the last two before the sink completed.
        Assert.Equal((45L, 45L), (result.Counts.Read, result.Counts.Unchanged));
        Assert.Equal([10L, 20L, 30L, 40L, 45L], progress.Select(p => p.RecordsRead));
        Assert.Equal([true, true, true, true, true, false], sink.MayDefer);
        Assert.Equal([10, 10, 10, 10, 5, 0], sink.Sizes);
    }

    [Fact]
    public async Task Deferred_batches_of_an_attempt_that_fails_in_the_sink_are_not_counted_and_the_retry_counts_each_record_once()
    {
        var sink = new DeferringSink { FailOnWrite = 3 };
        var services = new ServiceCollection();
        services.AddSingleton<IIngestionSink>(sink);
        services.AddIngestion().AddSource("items", _ => new ScriptedSource((_, ct) => ScriptedSource.Items(30, ct: ct)), o =>
        {
            o.BatchSize = 10;
            o.MaxRetryAttempts = 1;
            o.RetryDelay = TimeSpan.FromMilliseconds(10);
        });
        await using var sp = services.BuildServiceProvider();

        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("items", null, CancellationToken.None);

        // Attempt 1 deferred batches 1 and 2, then its third write failed: nothing of it was committed, and the second
        // attempt read all 30 records again.
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(2, result.Attempts);
        Assert.Equal((30L, 30L), (result.Counts.Read, result.Counts.Unchanged));
    }

    private sealed class SyncProgress(Action<IngestionProgress> report) : IProgress<IngestionProgress>
    {
        public void Report(IngestionProgress value) => report(value);
    }

    /// <summary>A sink that stores nothing and reports every row unchanged, deferring every batch it may except the third.</summary>
    private sealed class DeferringSink : IIngestionSink
    {
        public List<bool> MayDefer { get; } = [];

        public List<int> Sizes { get; } = [];

        /// <summary>The write (counted over every writer) that fails once with a transient error, or 0.</summary>
        public int FailOnWrite { get; init; }

        public ValueTask<ISinkWriter<TRecord>> OpenAsync<TRecord>(SinkRun run, CancellationToken cancellationToken)
            where TRecord : class => ValueTask.FromResult<ISinkWriter<TRecord>>(new Writer<TRecord>(this));

        private sealed class Writer<TRecord>(DeferringSink sink) : ISinkWriter<TRecord>
            where TRecord : class
        {
            public ValueTask<SinkBatchResult> WriteBatchAsync(SinkBatch<TRecord> batch, CancellationToken cancellationToken)
            {
                sink.MayDefer.Add(batch.MayDeferCommit);
                sink.Sizes.Add(batch.Records.Count);
                if (sink.MayDefer.Count == sink.FailOnWrite)
                {
                    throw new TransientIngestionException("the sink's connection dropped");
                }

                return ValueTask.FromResult(new SinkBatchResult { Unchanged = batch.Records.Count, CommitDeferred = batch.MayDeferCommit && sink.MayDefer.Count != 3 });
            }

            public ValueTask<SinkCompletion> CompleteAsync(CancellationToken cancellationToken) => ValueTask.FromResult(SinkCompletion.None);

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    /// <summary>A sink hook that attaches to every run, or to none.</summary>
    private sealed class Hook(bool attach) : ISinkHook
    {
        public ValueTask<ISinkHookRun<TRecord>?> OpenAsync<TRecord>(SinkRun run, CancellationToken cancellationToken)
            where TRecord : class => ValueTask.FromResult<ISinkHookRun<TRecord>?>(attach ? new HookRun<TRecord>() : null);

        private sealed class HookRun<TRecord> : ISinkHookRun<TRecord>
            where TRecord : class
        {
            public ValueTask<SinkBatchResult> AfterBatchAsync(SinkBatch<TRecord> batch, SinkBatchResult written, CancellationToken cancellationToken) => ValueTask.FromResult(written);

            public ValueTask<SinkCompletion> AfterCompleteAsync(SinkCompletion completion, CancellationToken cancellationToken) => ValueTask.FromResult(completion);

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
