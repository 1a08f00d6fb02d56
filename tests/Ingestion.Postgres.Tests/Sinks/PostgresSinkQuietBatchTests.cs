using System.Runtime.CompilerServices;
using Ingestion.Postgres.Sinks;
using Ingestion.Running;
using Ingestion.Sinks;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// Batches that write nothing (every row stored unchanged, nothing rejected) wait for the next commit when the runner
/// allows it (<see cref="SinkBatch{TRecord}.MayDeferCommit"/>): their counts and checkpoint are committed with the next
/// batch that writes, when the last commit is <see cref="PostgresSinkOptions.QuietBatchCommitInterval"/> old, or at completion.
/// </summary>
public class PostgresSinkQuietBatchTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static SourceState At(string cursor) => new() { Cursor = cursor };

    /// <summary>What another connection sees: the job row's counts (read created updated unchanged) and the saved cursor.</summary>
    private async Task<string> CommittedAsync(string source, Guid runId) =>
        await db.ScalarAsync<string>($"SELECT read || ' ' || created || ' ' || updated || ' ' || unchanged FROM ingestion.import_jobs WHERE id = '{runId}'")
        + " @" + await db.ScalarAsync<string>($"SELECT coalesce((SELECT cursor FROM ingestion.source_state WHERE source = '{source}'), '-')");

    private async Task<(SinkHarness Harness, ISinkWriter<Row> Writer, Guid RunId)> OpenAsync(string source, TimeProvider? time = null, Action<PostgresSinkOptions>? configure = null)
    {
        var h = new SinkHarness(db, configure, time: time);
        var run = Run<Row>(source, o => o.Table = source.Replace('-', '_'));
        var w = await h.OpenAsync<Row>(run);
        await db.ExecuteAsync($"INSERT INTO ingestion.import_jobs (id, source, trigger, mode, host, started_at) VALUES ('{run.RunId}', '{source}', 'test', 'Incremental', 'test-host', now())");
        return (h, w, run.RunId);
    }

    [Fact]
    public async Task A_batch_that_writes_nothing_waits_for_the_next_batch_that_writes_and_commits_with_it()
    {
        var (h, w, runId) = await OpenAsync("quiet-next");
        await using (h)
        await using (w)
        {
            var first = await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2)], state: At("1"), mayDeferCommit: true), default);
            Assert.False(first.CommitDeferred);
            Assert.Equal("2 2 0 0 @1", await CommittedAsync("quiet-next", runId));

            var quiet = await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2)], state: At("2"), mayDeferCommit: true), default);
            Assert.True(quiet.CommitDeferred);
            Assert.Equal(2L, quiet.Unchanged);
            Assert.Equal("2 2 0 0 @1", await CommittedAsync("quiet-next", runId));

            // A batch without a checkpoint of its own commits the deferred one.
            var writes = await w.WriteBatchAsync(h.Batch<Row>([R("a", 10), R("c", 3)], mayDeferCommit: true), default);
            Assert.False(writes.CommitDeferred);
            Assert.Equal("6 3 1 2 @2", await CommittedAsync("quiet-next", runId));

            var last = await w.WriteBatchAsync(h.Batch<Row>([R("c", 3)], state: At("4"), mayDeferCommit: true), default);
            Assert.True(last.CommitDeferred);
            Assert.Equal("6 3 1 2 @2", await CommittedAsync("quiet-next", runId));

            await w.CompleteAsync(default);
            Assert.Equal("7 3 1 3 @4", await CommittedAsync("quiet-next", runId));
        }

        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM quiet_next"));
    }

    [Fact]
    public async Task A_batch_that_writes_nothing_commits_once_the_last_commit_is_older_than_the_interval()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-03T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var (h, w, runId) = await OpenAsync("quiet-interval", time, o => o.QuietBatchCommitInterval = TimeSpan.FromSeconds(5));
        await using (h)
        await using (w)
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)], state: At("1"), mayDeferCommit: true), default);
            time.Advance(TimeSpan.FromSeconds(4));
            Assert.True((await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)], state: At("2"), mayDeferCommit: true), default)).CommitDeferred);
            Assert.Equal("1 1 0 0 @1", await CommittedAsync("quiet-interval", runId));

            time.Advance(TimeSpan.FromSeconds(1));
            Assert.False((await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)], state: At("3"), mayDeferCommit: true), default)).CommitDeferred);
            Assert.Equal("3 1 0 2 @3", await CommittedAsync("quiet-interval", runId));

            // The interval counts from that commit.
            time.Advance(TimeSpan.FromSeconds(4));
            Assert.True((await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)], state: At("4"), mayDeferCommit: true), default)).CommitDeferred);
            await w.CompleteAsync(default);
            Assert.Equal("4 1 0 3 @4", await CommittedAsync("quiet-interval", runId));
        }
    }

    [Theory]
    [InlineData(false, 2)]
    [InlineData(true, 0)]
    public async Task Every_batch_commits_when_the_runner_does_not_allow_deferring_or_the_interval_is_zero(bool mayDeferCommit, int intervalSeconds)
    {
        var source = $"quiet-never-{intervalSeconds}";
        var (h, w, runId) = await OpenAsync(source, configure: o => o.QuietBatchCommitInterval = TimeSpan.FromSeconds(intervalSeconds));
        await using (h)
        await using (w)
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)], state: At("1"), mayDeferCommit: mayDeferCommit), default);
            var quiet = await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)], state: At("2"), mayDeferCommit: mayDeferCommit), default);
            Assert.False(quiet.CommitDeferred);
            Assert.Equal("2 1 0 1 @2", await CommittedAsync(source, runId));
        }
    }

    [Fact]
    public async Task A_batch_with_a_rejected_record_is_not_quiet_and_commits_its_reject()
    {
        var (h, w, runId) = await OpenAsync("quiet-reject");
        await using (h)
        await using (w)
        {
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)], state: At("1"), mayDeferCommit: true), default);
            var batch = h.Batch<Row>([R("a", 1)], budget: 5, state: At("2"), rejected: [new RejectedRecord("line 9", "value", "not a number", "x")], mayDeferCommit: true);
            var written = await w.WriteBatchAsync(batch, default);
            Assert.False(written.CommitDeferred);
            Assert.Equal("3 1 0 1 @2", await CommittedAsync("quiet-reject", runId));
            Assert.Equal(1L, await db.ScalarAsync<long>($"SELECT count(*) FROM ingestion.rejected_records WHERE job_id = '{runId}'"));
        }
    }

    [Fact]
    public async Task A_source_failure_commits_the_deferred_batches_with_their_checkpoint_and_the_retry_resumes_after_them()
    {
        var reads = 0;
        async IAsyncEnumerable<Row> Read(IngestionContext context, [EnumeratorCancellation] CancellationToken ct)
        {
            // Resumes after its cursor; the first attempt of the second run fails at row 36, after three batches that
            // wrote nothing (and a fourth, flushed by the failure).
            var call = Interlocked.Increment(ref reads);
            var from = int.TryParse(context.State.Cursor, out var cursor) ? cursor + 1 : 1;
            await foreach (var row in RowSource.Rows(context, from, 50, ct: ct))
            {
                if (call == 2 && row.Id == "k0036")
                {
                    throw new TransientIngestionException("the source dropped its connection");
                }

                yield return row;
            }
        }

        await using var sp = PostgresRunnerTests.Services(db, b => b.AddSource("quiet-retry", _ => new RowSource(Read), o =>
        {
            o.Table = "quiet_retry";
            o.CreateTable = true;
            o.BatchSize = 10;
            o.MaxRetryAttempts = 1;
            o.RetryDelay = TimeSpan.FromMilliseconds(10);
        }));
        var runner = sp.GetRequiredService<IIngestionRunner>();
        Assert.Equal(IngestionStatus.Succeeded, (await runner.RunAsync("quiet-retry", null, default)).Status);
        await db.ExecuteAsync("DELETE FROM ingestion.source_state WHERE source = 'quiet-retry'");

        var again = await runner.RunAsync("quiet-retry", null, default);

        // Rows 1-35 were committed (and counted) by the flush after the failure; the retry read rows 36-50.
        Assert.Equal(IngestionStatus.Succeeded, again.Status);
        Assert.Equal(2, again.Attempts);
        Assert.Equal((50L, 0L, 50L), (again.Counts.Read, again.Counts.Created, again.Counts.Unchanged));
        Assert.Equal(3, reads);
        Assert.Equal(
            "Succeeded 50 50 @50",
            await db.ScalarAsync<string>($"SELECT status || ' ' || read || ' ' || unchanged FROM ingestion.import_jobs WHERE id = '{again.RunId}'")
            + " @" + await db.ScalarAsync<string>("SELECT cursor FROM ingestion.source_state WHERE source = 'quiet-retry'"));
    }

    [Fact]
    public async Task Deferred_batches_are_committed_and_counted_before_the_sink_completes_so_a_failure_there_keeps_them()
    {
        var changed = false;
        IAsyncEnumerable<Row> Read(IngestionContext context, CancellationToken ct) => RowSource.Rows(context, 1, 30, offset: changed ? 1000 : 0, ct: ct);
        IAsyncEnumerable<Row> Second(IngestionContext context, CancellationToken ct) => ChangeFirst(RowSource.Rows(context, 1, 30, ct: ct));
        static async IAsyncEnumerable<Row> ChangeFirst(IAsyncEnumerable<Row> rows)
        {
            await foreach (var row in rows)
            {
                yield return row.Id == "k0001" ? R(row.Id, -1) : row;
            }
        }

        var second = false;
        await using var sp = PostgresRunnerTests.Services(db, b => b.AddSource("quiet-complete", _ => new RowSource((c, ct) => second ? Second(c, ct) : Read(c, ct)), o =>
        {
            o.Table = "quiet_complete";
            o.CreateTable = true;
            o.BatchSize = 10;
            o.MaxRetryAttempts = 0;
            o.RefreshMaterializedViews.Add("quiet_complete_no_such_view");
        }));
        var runner = sp.GetRequiredService<IIngestionRunner>();
        Assert.Equal(IngestionStatus.Failed, (await runner.RunAsync("quiet-complete", new RunRequest { Mode = IngestionMode.FullRefresh }, default)).Status);
        second = true;

        // The first batch writes (one changed row), the other two write nothing and are deferred; completing then
        // fails (the view to refresh does not exist) after every batch committed.
        var result = await runner.RunAsync("quiet-complete", new RunRequest { Mode = IngestionMode.FullRefresh }, default);

        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("is not a materialized view; the rows are committed", result.Error!.Message, StringComparison.Ordinal);
        Assert.Equal((30L, 1L, 29L), (result.Counts.Read, result.Counts.Updated, result.Counts.Unchanged));
        Assert.Equal("30 @30", await db.ScalarAsync<string>($"SELECT read::text FROM ingestion.import_jobs WHERE id = '{result.RunId}'")
            + " @" + await db.ScalarAsync<string>("SELECT cursor FROM ingestion.source_state WHERE source = 'quiet-complete'"));
    }

    [Fact]
    public async Task A_column_added_after_a_deferred_batch_is_committed_on_its_own_even_when_its_batch_fails()
    {
        var narrow = RecordSchema.Create([new ColumnSchema("id", ColumnType.Text), new ColumnSchema("reading", ColumnType.Float64)], ["id"]);
        var wide = RecordSchema.Create([new ColumnSchema("id", ColumnType.Text), new ColumnSchema("reading", ColumnType.Float64), new ColumnSchema("unit", ColumnType.Text)], ["id"]);
        await using var h = new SinkHarness(db);
        var run = Run<DynamicRecord>("quiet-evolve", o =>
        {
            o.Table = "quiet_evolve";
            o.KeyColumns.Add("id");
            o.SchemaEvolution = SchemaEvolution.Evolve;
        });
        await using var w = await h.OpenAsync<DynamicRecord>(run);
        await w.WriteBatchAsync(h.Batch<DynamicRecord>([new DynamicRecord(narrow, ["a", 1.0])], mayDeferCommit: true), default);
        await db.ExecuteAsync("ALTER TABLE quiet_evolve ADD CONSTRAINT quiet_evolve_positive CHECK (reading >= 0)");
        Assert.True((await w.WriteBatchAsync(h.Batch<DynamicRecord>([new DynamicRecord(narrow, ["a", 1.0])], mayDeferCommit: true), default)).CommitDeferred);

        // A new column, and a row the table's CHECK refuses: the batch fails, the column it added stays.
        await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<DynamicRecord>([new DynamicRecord(wide, ["a", -1.0, "kPa"])], mayDeferCommit: true), default));

        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM information_schema.columns WHERE table_name = 'quiet_evolve' AND column_name = 'unit'"));
        Assert.Equal(1.0, await db.ScalarAsync<double>("SELECT reading FROM quiet_evolve WHERE id = 'a'"));
    }

    [Fact]
    public async Task Deferred_batches_of_a_writer_disposed_after_a_failure_are_not_committed()
    {
        var (h, w, runId) = await OpenAsync("quiet-lost");
        await using (h)
        {
            await using (w)
            {
                await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)], state: At("1"), mayDeferCommit: true), default);
                Assert.True((await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)], state: At("2"), mayDeferCommit: true), default)).CommitDeferred);

                // The attempt fails here (the runner disposes the writer without completing it).
            }

            Assert.Equal("1 1 0 0 @1", await CommittedAsync("quiet-lost", runId));
            Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND application_name LIKE '%quiet-lost'"));
        }
    }
}
