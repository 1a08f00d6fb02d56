using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Running;
using Ingestion.Sinks;
using Ingestion.Stores;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Ingestion.Core.Tests.Running;

public class IngestionRunnerTests
{
    private static (ServiceProvider Services, IIngestionRunner Runner) Build(Action<IIngestionBuilder> configure, IConfiguration? config = null)
    {
        var services = new ServiceCollection();
        configure(services.AddIngestion(config));
        var sp = services.BuildServiceProvider();
        return (sp, sp.GetRequiredService<IIngestionRunner>());
    }

    private static Func<IServiceProvider, IIngestionSource> Source(Func<IngestionContext, CancellationToken, IAsyncEnumerable<Item>> read) => _ => new ScriptedSource(read);

    private static Action<SourceOptions> Fast(int batch = 10) => o =>
    {
        o.BatchSize = batch;
        o.RetryDelay = TimeSpan.FromMilliseconds(5);
    };

    [Fact]
    public async Task Runs_a_typed_source_with_exact_counts_and_a_job()
    {
        var (sp, runner) = Build(b => b.AddSource("items", Source((_, ct) => ScriptedSource.Items(25, ct: ct)), Fast()));
        var result = await runner.RunAsync("items", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(25, result.Counts.Read);
        Assert.Equal(25, result.Counts.Created);
        Assert.True(result.Counts.AddsUp);

        var again = await runner.RunAsync("items", null, CancellationToken.None);
        Assert.Equal(25, again.Counts.Unchanged);
        Assert.Equal(0, again.Counts.Created);

        var jobs = await sp.GetRequiredService<IImportJobStore>().ListRecentAsync(10, "items", CancellationToken.None);
        Assert.Equal(2, jobs.Count);
        Assert.All(jobs, j => Assert.Equal(IngestionStatus.Succeeded, j.Status));
    }

    [Fact]
    public async Task Dynamic_source_round_trips()
    {
        var schema = RecordSchema.Create([new("source_id", ColumnType.Text), new("name", ColumnType.Text)]);
        async IAsyncEnumerable<DynamicRecord> Read([EnumeratorCancellation] CancellationToken ct = default)
        {
            await Task.Yield();
            yield return new DynamicRecord(schema) { ["source_id"] = "a", ["name"] = "A" };
            yield return new DynamicRecord(schema) { ["source_id"] = "b", ["name"] = "B" };
            yield return new DynamicRecord(schema) { ["source_id"] = "a", ["name"] = "A2" };
        }

        var (sp, runner) = Build(b => b.AddSource("dyn", _ => new DelegateSource<DynamicRecord>((_, ct) => Read(ct))));
        var result = await runner.RunAsync("dyn", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(new IngestionCounts { Read = 3, Created = 2, Duplicates = 1 }, result.Counts);
        var table = sp.GetRequiredService<IIngestionSink>() as InMemorySink;
        var rows = table!.GetTable("dyn");
        Assert.Equal("A2", rows["dyn\u001fa"][2]);
    }

    [Fact]
    public async Task One_failing_source_among_three_does_not_stop_the_others_sequential_and_parallel()
    {
        foreach (var parallel in new[] { false, true })
        {
            var (_, runner) = Build(b => b
                .AddSource("a", Source((_, ct) => ScriptedSource.Items(5, ct: ct)), Fast())
                .AddSource("b", Source((_, _) => Fail()), Fast())
                .AddSource("c", Source((_, ct) => ScriptedSource.Items(7, ct: ct)), Fast()));
            var summary = await runner.RunManyAsync(new RunManyRequest { Parallel = parallel, MaxDegreeOfParallelism = 3 }, CancellationToken.None);
            Assert.Equal(["a", "b", "c"], summary.Results.Select(r => r.SourceName));
            Assert.Equal(IngestionStatus.Succeeded, summary.Results[0].Status);
            Assert.Equal(IngestionStatus.Failed, summary.Results[1].Status);
            Assert.Contains("boom", summary.Results[1].Error!.Message);
            Assert.Equal(7, summary.Results[2].Counts.Created);
            Assert.False(summary.AllSucceeded);
        }

        static async IAsyncEnumerable<Item> Fail()
        {
            await Task.Yield();
            throw new InvalidOperationException("boom");
#pragma warning disable CS0162
            yield break;
#pragma warning restore CS0162
        }
    }

    [Fact]
    public async Task Parallel_run_all_really_overlaps()
    {
        var running = 0;
        var peak = 0;
        async IAsyncEnumerable<Item> Slow([EnumeratorCancellation] CancellationToken ct = default)
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref peak, now);
            await Task.Delay(200, ct);
            Interlocked.Decrement(ref running);
            yield return new Item { Id = "x" };
        }

        var (_, runner) = Build(b => b
            .AddSource("s1", Source((_, ct) => Slow(ct)))
            .AddSource("s2", Source((_, ct) => Slow(ct)))
            .AddSource("s3", Source((_, ct) => Slow(ct))));
        var summary = await runner.RunManyAsync(new RunManyRequest { Parallel = true, MaxDegreeOfParallelism = 3 }, CancellationToken.None);
        Assert.True(summary.AllSucceeded);
        Assert.True(peak >= 2, $"peak concurrency was {peak}");

        static void InterlockedMax(ref int target, int value)
        {
            int current;
            while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
            {
            }
        }
    }

    [Fact]
    public async Task Transient_failure_is_retried_from_the_last_checkpoint_then_succeeds()
    {
        var attempt = 0;
        async IAsyncEnumerable<Item> Read(IngestionContext ctx, [EnumeratorCancellation] CancellationToken ct = default)
        {
            attempt++;
            var start = ctx.State.Cursor is { } c ? int.Parse(c, System.Globalization.CultureInfo.InvariantCulture) : 0;
            for (var i = start + 1; i <= 30; i++)
            {
                await Task.Yield();
                if (attempt == 1 && i == 25)
                {
                    throw new TransientIngestionException("connection reset");
                }

                yield return new Item { Id = $"k{i}", Value = i };
                if (i % 10 == 0)
                {
                    ctx.Checkpoint(new SourceCheckpoint(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                }
            }
        }

        var (sp, runner) = Build(b => b.AddSource("r", Source(Read), Fast()));
        var result = await runner.RunAsync("r", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(2, result.Attempts);
        // Attempt 1 committed k1..k24 (its records read before the failure, with checkpoint 20);
        // attempt 2 resumed after 20: k21..k24 unchanged, k25..k30 created.
        Assert.Equal(new IngestionCounts { Read = 34, Created = 30, Unchanged = 4 }, result.Counts);
        Assert.Equal("30", (await sp.GetRequiredService<ISourceStateStore>().GetAsync("r", default)).Cursor);
    }

    [Fact]
    public async Task Retry_exhaustion_fails_with_the_error_and_keeps_committed_batches()
    {
        var calls = 0;
        async IAsyncEnumerable<Item> Read(IngestionContext ctx, [EnumeratorCancellation] CancellationToken ct = default)
        {
            calls++;
            var start = ctx.State.Cursor is { } c ? int.Parse(c, System.Globalization.CultureInfo.InvariantCulture) : 0;
            for (var i = start + 1; i <= start + 10; i++)
            {
                await Task.Yield();
                yield return new Item { Id = $"k{i}" };
            }

            ctx.Checkpoint(new SourceCheckpoint((start + 10).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            yield return new Item { Id = $"k{start + 11}" };
            throw new TransientIngestionException("503 from upstream");
        }

        var (_, runner) = Build(b => b.AddSource("x", Source(Read), o =>
        {
            Fast()(o);
            o.MaxRetryAttempts = 2;
        }));
        var result = await runner.RunAsync("x", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Equal(3, calls);
        Assert.Equal(3, result.Attempts);
        Assert.Contains("503", result.Error!.Message);
        Assert.Equal(nameof(TransientIngestionException), result.Error.Type);
        // Each attempt commits what it read before failing, with the checkpoint covering it.
        Assert.Equal(new IngestionCounts { Read = 33, Created = 31, Unchanged = 2 }, result.Counts);
    }

    [Fact]
    public async Task Non_transient_failure_is_not_retried()
    {
        var src = new ScriptedSource((_, _) => throw new FormatException("bad header"));
        var (_, runner) = Build(b => b.AddSource("n", _ => src, Fast()));
        var result = await runner.RunAsync("n", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Equal(1, src.Calls);
        Assert.Equal("FormatException", result.Error!.Type);
    }

    [Fact]
    public async Task Timeout_is_a_failure_and_cancellation_is_cancelled()
    {
        async IAsyncEnumerable<Item> Hang([EnumeratorCancellation] CancellationToken ct = default)
        {
            yield return new Item { Id = "first" };
            await Task.Delay(Timeout.Infinite, ct);
        }

        var (_, runner) = Build(b => b.AddSource("hang", Source((_, ct) => Hang(ct)), o =>
        {
            Fast(1)(o);
            o.Timeout = TimeSpan.FromMilliseconds(300);
        }));
        var timedOut = await runner.RunAsync("hang", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.Failed, timedOut.Status);
        Assert.Equal("Timeout", timedOut.Error!.Type);
        Assert.Equal(1, timedOut.Counts.Created);

        var (_, runner2) = Build(b => b.AddSource("hang", Source((_, ct) => Hang(ct)), o =>
        {
            Fast(1)(o);
            o.Timeout = TimeSpan.FromMinutes(5);
        }));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var cancelled = await runner2.RunAsync("hang", null, cts.Token);
        Assert.Equal(IngestionStatus.Cancelled, cancelled.Status);
        Assert.Equal(1, cancelled.Counts.Created);
    }

    [Fact]
    public async Task Dry_run_counts_but_writes_nothing()
    {
        var (sp, runner) = Build(b => b.AddSource("d", Source((ctx, ct) =>
        {
            return Read(ctx, ct);
            static async IAsyncEnumerable<Item> Read(IngestionContext ctx, [EnumeratorCancellation] CancellationToken ct = default)
            {
                await foreach (var i in ScriptedSource.Items(12, ct: ct))
                {
                    yield return i;
                }

                ctx.Checkpoint(new SourceCheckpoint("12"));
            }
        }), Fast()));
        var result = await runner.RunAsync("d", new RunRequest { DryRun = true }, CancellationToken.None);
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.True(result.IsDryRun);
        Assert.Equal(12, result.Counts.Created);
        var sink = (InMemorySink)sp.GetRequiredService<IIngestionSink>();
        Assert.Empty(sink.GetTable("d"));
        var state = await sp.GetRequiredService<ISourceStateStore>().GetAsync("d", default);
        Assert.Null(state.Cursor);
        Assert.Null(state.LastChecked);
    }

    [Fact]
    public async Task Rejects_within_budget_give_partial_success_and_over_budget_fails_keeping_earlier_batches()
    {
        async IAsyncEnumerable<Item> Read(IngestionContext ctx, [EnumeratorCancellation] CancellationToken ct = default)
        {
            for (var i = 1; i <= 30; i++)
            {
                await Task.Yield();
                if (i % 7 == 0)
                {
                    ctx.Reject(new RejectedRecord($"line {i + 1}", "value", "not a number", "abc"));
                    continue;
                }

                yield return new Item { Id = $"k{i}" };
            }
        }

        var (_, lenient) = Build(b => b.AddSource("p", Source(Read), o =>
        {
            Fast()(o);
            o.MaxRejected = 10;
        }));
        var partial = await lenient.RunAsync("p", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.PartiallySucceeded, partial.Status);
        Assert.Equal(new IngestionCounts { Read = 30, Created = 26, Rejected = 4 }, partial.Counts);

        var (sp, strict) = Build(b => b.AddSource("p", Source(Read), Fast()));
        var failed = await strict.RunAsync("p", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.Failed, failed.Status);
        Assert.Equal("line 8", failed.Error!.Position);
        Assert.Equal("value", failed.Error.Field);
        Assert.Contains("not a number", failed.Error.Message);
        Assert.Equal(1, failed.Attempts);
        var store = (InMemoryImportJobStore)sp.GetRequiredService<IImportJobStore>();
        Assert.Contains(store.Rejected, r => r.Record.Position == "line 8");
    }

    [Fact]
    public async Task Sink_rejects_null_keys_with_position_and_field()
    {
        async IAsyncEnumerable<Item> Read([EnumeratorCancellation] CancellationToken ct = default)
        {
            await Task.Yield();
            yield return new Item { Id = "a" };
            yield return new Item { Id = null! };
        }

        var (_, runner) = Build(b => b.AddSource("nk", Source((_, ct) => Read(ct)), Fast()));
        var result = await runner.RunAsync("nk", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Equal("record 2", result.Error!.Position);
        Assert.Equal("id", result.Error.Field);
    }

    [Fact]
    public async Task Record_cap_stops_cleanly_as_partial()
    {
        var (_, runner) = Build(b => b.AddSource("cap", Source((_, ct) => ScriptedSource.Items(100, ct: ct)), o =>
        {
            Fast()(o);
            o.MaxRecords = 15;
        }));
        var result = await runner.RunAsync("cap", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);
        Assert.Equal(15, result.Counts.Read);
    }

    [Fact]
    public async Task Second_concurrent_run_of_a_source_reports_already_running()
    {
        var gate = new TaskCompletionSource();
        async IAsyncEnumerable<Item> Wait([EnumeratorCancellation] CancellationToken ct = default)
        {
            await gate.Task.WaitAsync(ct);
            yield return new Item { Id = "a" };
        }

        var (_, runner) = Build(b => b.AddSource("l", Source((_, ct) => Wait(ct))));
        var first = runner.RunAsync("l", null, CancellationToken.None);
        await Task.Delay(100);
        var second = await runner.RunAsync("l", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.AlreadyRunning, second.Status);
        gate.SetResult();
        Assert.Equal(IngestionStatus.Succeeded, (await first).Status);
    }

    [Fact]
    public void Invalid_configuration_fails_at_start_naming_every_setting()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Sources:a:BatchSize"] = "0",
            ["Sources:a:MaxRejected"] = "-1",
            ["Sources:b:Timeout"] = "-00:00:01",
        }).Build();
        var e = Assert.Throws<OptionsValidationException>(() => Build(
            b => b.AddSource("a", Source((_, ct) => ScriptedSource.Items(1, ct: ct))).AddSource("b", Source((_, ct) => ScriptedSource.Items(1, ct: ct))),
            config));
        Assert.Contains(e.Failures, f => f.Contains("Ingestion:Sources:a:BatchSize", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("Ingestion:Sources:a:MaxRejected", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("Ingestion:Sources:b:Timeout", StringComparison.Ordinal));
    }

    [Fact]
    public void Values_that_do_not_convert_fail_at_start_instead_of_meaning_the_default()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Ingestion:Sources:a:BatchSize"] = "lots",
            ["Ingestion:Sources:a:WriteMode"] = "Upsert",
            ["Ingestion:Sources:b:Timeout"] = "ten minutes",
            ["Ingestion:Sources:b:MaxRejected"] = "5",
        }).Build();
        var e = Assert.Throws<OptionsValidationException>(() => Build(
            b => b.AddSource("a", Source((_, ct) => ScriptedSource.Items(1, ct: ct))).AddSource("b", Source((_, ct) => ScriptedSource.Items(1, ct: ct))),
            config.GetSection("Ingestion")));
        Assert.Contains(e.Failures, f => f.StartsWith("Ingestion:Sources:a:BatchSize 'lots' is not a valid whole number", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.StartsWith("Ingestion:Sources:a:WriteMode 'Upsert' is not a valid WriteMode (one of Merge, Append, Replace", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.StartsWith("Ingestion:Sources:b:Timeout 'ten minutes' is not a valid duration", StringComparison.Ordinal));
        Assert.DoesNotContain(e.Failures, f => f.Contains("MaxRejected", StringComparison.Ordinal));
    }

    [Fact]
    public void Duplicate_and_invalid_source_names_fail_at_registration()
    {
        var services = new ServiceCollection();
        var b = services.AddIngestion();
        b.AddSource("a", Source((_, ct) => ScriptedSource.Items(1, ct: ct)));
        var dup = Assert.Throws<InvalidOperationException>(() => b.AddSource("a", Source((_, ct) => ScriptedSource.Items(1, ct: ct))));
        Assert.Contains("'a'", dup.Message);
        Assert.Throws<ArgumentException>(() => b.AddSource("a\";DROP TABLE t;--", Source((_, ct) => ScriptedSource.Items(1, ct: ct))));
        Assert.Same(b, services.AddIngestion());
    }

    [Fact]
    public async Task Unknown_source_is_an_argument_error()
    {
        var (_, runner) = Build(_ => { });
        var e = await Assert.ThrowsAsync<ArgumentException>(() => runner.RunAsync("nope", null, CancellationToken.None));
        Assert.Contains("nope", e.Message);
    }

    [Fact]
    public async Task Progress_is_reported_per_batch()
    {
        var reports = new List<IngestionProgress>();
        var (_, runner) = Build(b => b.AddSource("pr", Source((_, ct) => ScriptedSource.Items(35, ct: ct)), Fast()));
        await runner.RunAsync("pr", new RunRequest { Progress = new SyncProgress(reports.Add) }, CancellationToken.None);
        Assert.Equal([10L, 20, 30, 35], reports.Select(r => r.RecordsRead));
    }

    private sealed class SyncProgress(Action<IngestionProgress> report) : IProgress<IngestionProgress>
    {
        public void Report(IngestionProgress value) => report(value);
    }
}

/// <summary>A source built from a delegate, for any record type.</summary>
public sealed class DelegateSource<T>(Func<IngestionContext, CancellationToken, IAsyncEnumerable<T>> read) : IngestionSource<T>
    where T : class
{
    public override IAsyncEnumerable<T> ReadAsync(IngestionContext context, CancellationToken cancellationToken) => read(context, cancellationToken);
}
