using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Sinks;
using Ingestion.Running;
using Ingestion.Stores;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// Faults against the real server, at known points: the source pauses between batches while the test
/// locks the target table from another connection, so the sink's next statement (the COPY of new keys, or
/// the UPDATE of the merge) waits on the lock; the test then finds the sink's backend by its
/// application_name (<c>ingestion:&lt;source&gt;</c>) and terminates it, or cancels the run.
/// </summary>
public class PostgresSinkFaultTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Terminating_the_backend_during_the_COPY_leaves_no_partial_batch_and_the_run_ends_with_exact_counts(bool copiedAhead)
    {
        // With the option on, the second batch is copied ahead on the writer's second connection: the killed backend is
        // that copy's, which is rolled back, and the batch's own write copies its rows in the same attempt. With it off,
        // the killed backend is the writer's own: the attempt fails and the retry resumes.
        var table = copiedAhead ? "fault_copy_ahead" : "fault_copy";
        var source = copiedAhead ? "fault-copy-ahead" : "fault-copy";
        var pause = new Pause(atRecord: 11);
        await using var sp = Services(source, table, pause, offset: 0, sink: o => o.CopyAheadOnSecondConnection = copiedAhead);
        var runner = sp.GetRequiredService<IIngestionRunner>();

        var run = runner.RunAsync(source, null, default);
        await pause.Reached.Task.WaitAsync(Patience);
        await WaitForCursorAsync(source, "10");
        await using (var holder = await LockAsync(table))
        {
            pause.Release();
            var pid = await WaitForBlockedBackendAsync($"ingestion:{source}", "COPY");
            Assert.True(await db.ScalarAsync<bool>($"SELECT pg_terminate_backend({pid})"));
            await WaitGoneAsync(pid);

            // The killed batch (records 11-20) left nothing; the checkpoint is the first batch's.
            Assert.Equal(10L, await db.ScalarAsync<long>($"SELECT count(*) FROM {table}"));
            Assert.Equal("10", await CursorAsync(source));
            await holder.CommitAsync();
        }

        var result = await run.WaitAsync(Patience);
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(copiedAhead ? 1 : 2, result.Attempts);
        Assert.Equal((30L, 30L, 0L, 0L), (result.Counts.Read, result.Counts.Created, result.Counts.Updated, result.Counts.Unchanged));
        Assert.True(result.Counts.AddsUp);
        Assert.Equal("30|30|465", await db.ScalarAsync<string>($"SELECT count(*) || '|' || count(DISTINCT id) || '|' || sum(value) FROM {table}"));
        Assert.Equal("30", await CursorAsync(source));
        Assert.Equal(0, await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"));

        // The pool recovered: a later full run on the same data source works and finds every row unchanged.
        var again = await runner.RunAsync(source, new RunRequest { Mode = IngestionMode.FullRefresh }, default);
        Assert.Equal((IngestionStatus.Succeeded, 30L), (again.Status, again.Counts.Unchanged));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Terminating_the_backend_during_the_merge_leaves_no_partial_batch_and_the_run_ends_with_exact_counts(bool mergedAhead)
    {
        // With the option on, the second batch's changed rows are merged ahead on the writer's second connection: the
        // killed backend is that early update's, which is rolled back, and the batch's own write merges its rows in
        // the same attempt. With it off, the killed backend is the writer's own: the attempt fails and the retry resumes.
        var table = mergedAhead ? "fault_merge_ahead" : "fault_merge";
        var source = mergedAhead ? "fault-merge-ahead" : "fault-merge";

        // First load, undisturbed.
        await using (var first = Services(source, table, null, offset: 0))
        {
            Assert.Equal(30L, (await first.GetRequiredService<IIngestionRunner>().RunAsync(source, null, default)).Counts.Created);
        }

        // Every value changes; the second batch's UPDATE waits on the lock and its backend is killed.
        // (Another source name on the same table, so that its saved cursor starts empty and its retry resumes from it.)
        var pause = new Pause(atRecord: 11);
        await using var sp = Services($"{source}-2", table, pause, offset: 100, sink: o => o.CopyAheadOnSecondConnection = mergedAhead);
        var runner = sp.GetRequiredService<IIngestionRunner>();
        var run = runner.RunAsync($"{source}-2", null, default);
        await pause.Reached.Task.WaitAsync(Patience);
        await WaitForCursorAsync($"{source}-2", "10");
        await using (var holder = await LockAsync(table))
        {
            pause.Release();
            var pid = await WaitForBlockedBackendAsync($"ingestion:{source}-2", "UPDATE");
            Assert.True(await db.ScalarAsync<bool>($"SELECT pg_terminate_backend({pid})"));
            await WaitGoneAsync(pid);

            Assert.Equal("10|20", await db.ScalarAsync<string>($"SELECT count(*) FILTER (WHERE value > 100) || '|' || count(*) FILTER (WHERE value <= 100) FROM {table}"));
            Assert.Equal("10", await CursorAsync($"{source}-2"));
            await holder.CommitAsync();
        }

        var result = await run.WaitAsync(Patience);
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(mergedAhead ? 1 : 2, result.Attempts);
        Assert.Equal((30L, 0L, 30L, 0L), (result.Counts.Read, result.Counts.Created, result.Counts.Updated, result.Counts.Unchanged));
        Assert.Equal("30|3465", await db.ScalarAsync<string>($"SELECT count(*) || '|' || sum(value) FROM {table}"));
        Assert.Equal("30", await CursorAsync($"{source}-2"));
        Assert.Equal(0, await db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"));

        var again = await runner.RunAsync($"{source}-2", new RunRequest { Mode = IngestionMode.FullRefresh }, default);
        Assert.Equal((IngestionStatus.Succeeded, 30L, 0L), (again.Status, again.Counts.Unchanged, again.Counts.Updated));
    }

    [Fact]
    public async Task Terminating_the_backend_of_a_whole_run_transaction_leaves_nothing_and_the_retry_loads_everything()
    {
        var pause = new Pause(atRecord: 11);
        await using var sp = Services("fault-whole", "fault_whole", pause, offset: 0, o => o.Transaction = TransactionScope.WholeRun);
        var runner = sp.GetRequiredService<IIngestionRunner>();
        var run = runner.RunAsync("fault-whole", null, default);
        await pause.Reached.Task.WaitAsync(Patience);

        // The first batch is written (its checkpoint saved last) in the open run transaction: kill the backend there.
        var pid = await WaitForBackendAsync("ingestion:fault-whole", "state = 'idle in transaction' AND query LIKE '%source_state%'");
        Assert.True(await db.ScalarAsync<bool>($"SELECT pg_terminate_backend({pid})"));
        await WaitGoneAsync(pid);
        // Nothing of the run is visible: the table it created in its transaction is gone with its rows.
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'fault_whole'"));
        Assert.Null(await CursorAsync("fault-whole"));
        pause.Release();

        var result = await run.WaitAsync(Patience);
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(2, result.Attempts);
        Assert.Equal((30L, 30L), (result.Counts.Read, result.Counts.Created));
        Assert.Equal("30|465", await db.ScalarAsync<string>("SELECT count(*) || '|' || sum(value) FROM fault_whole"));
        Assert.Equal("30", await CursorAsync("fault-whole"));
    }

    [Fact]
    public async Task Cancelling_during_the_COPY_rolls_back_the_batch_reports_Cancelled_and_keeps_earlier_batches()
    {
        var pause = new Pause(atRecord: 11);
        await using var sp = Services("cancel-copy", "cancel_copy", pause, offset: 0);
        var runner = sp.GetRequiredService<IIngestionRunner>();
        using var cts = new CancellationTokenSource();

        var run = runner.RunAsync("cancel-copy", null, cts.Token);
        await pause.Reached.Task.WaitAsync(Patience);
        await WaitForCursorAsync("cancel-copy", "10");
        IngestionResult result;
        await using (var holder = await LockAsync("cancel_copy"))
        {
            pause.Release();
            await WaitForBlockedBackendAsync("ingestion:cancel-copy", "COPY");
            await cts.CancelAsync();
            result = await run.WaitAsync(Patience);
            await holder.CommitAsync();
        }

        Assert.Equal(IngestionStatus.Cancelled, result.Status);
        Assert.Equal("Cancelled", result.Error!.Type);
        Assert.Equal((10L, 10L), (result.Counts.Read, result.Counts.Created));
        Assert.Equal("1-10", await db.ScalarAsync<string>("SELECT min(value) || '-' || max(value) FROM cancel_copy"));
        Assert.Equal("10", await CursorAsync("cancel-copy"));
        Assert.Equal("Cancelled", await db.ScalarAsync<string>($"SELECT status FROM ingestion.import_jobs WHERE id = '{result.RunId}'"));

        // Nothing is left waiting (a session whose cancelled COPY the server is still ending may show busy for a moment,
        // as on a loaded CI machine once), and the next run resumes after the checkpoint.
        await WaitAllIdleAsync("ingestion:cancel-copy");
        var next = await runner.RunAsync("cancel-copy", null, default);
        Assert.Equal((IngestionStatus.Succeeded, 20L, 20L), (next.Status, next.Counts.Read, next.Counts.Created));
        Assert.Equal(30L, await db.ScalarAsync<long>("SELECT count(*) FROM cancel_copy"));
    }

    [Fact]
    public async Task A_checkpoint_the_server_refuses_fails_its_batch_and_nothing_of_the_batch_commits()
    {
        // A batch's checkpoint is saved in the same round trip as its fencing check and job-row update, first: when the
        // server refuses it, the fence is not read and the batch's rows and counts roll back with it.
        const string source = "fault-checkpoint";
        const string table = "fault_checkpoint";
        await using var sp = Services(source, table, null, offset: 0);
        await sp.GetRequiredService<IngestionDatabase>().EnsureMigratedAsync(default);
        await db.ExecuteAsync(
            $"""
            CREATE FUNCTION refuse_second_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $f$
            BEGIN
                IF NEW.source = '{source}' AND NEW.cursor = '20' THEN RAISE EXCEPTION 'checkpoint 20 refused by the test'; END IF;
                RETURN NEW;
            END $f$;
            CREATE TRIGGER refuse_second_checkpoint BEFORE INSERT OR UPDATE ON ingestion.source_state
                FOR EACH ROW EXECUTE FUNCTION refuse_second_checkpoint();
            """);
        var runner = sp.GetRequiredService<IIngestionRunner>();
        IngestionResult failed;
        try
        {
            failed = await runner.RunAsync(source, null, default);
        }
        finally
        {
            await db.ExecuteAsync("DROP TRIGGER refuse_second_checkpoint ON ingestion.source_state; DROP FUNCTION refuse_second_checkpoint()");
        }

        Assert.Equal(IngestionStatus.Failed, failed.Status);
        Assert.Contains("checkpoint 20 refused by the test", failed.Error!.Message);
        Assert.Equal((10L, 10L), (failed.Counts.Read, failed.Counts.Created));
        Assert.Equal("10|1-10", await db.ScalarAsync<string>($"SELECT count(*) || '|' || min(value) || '-' || max(value) FROM {table}"));
        Assert.Equal("10", await CursorAsync(source));
        Assert.Equal("10|10", await db.ScalarAsync<string>($"SELECT read || '|' || created FROM ingestion.import_jobs WHERE id = '{failed.RunId}'"));

        // The next run resumes after the last checkpoint saved.
        var next = await runner.RunAsync(source, null, default);
        Assert.Equal((IngestionStatus.Succeeded, 20L, 20L), (next.Status, next.Counts.Read, next.Counts.Created));
        Assert.Equal("30|465", await db.ScalarAsync<string>($"SELECT count(*) || '|' || sum(value) FROM {table}"));
        Assert.Equal("30", await CursorAsync(source));
    }

    private ServiceProvider Services(string source, string table, Pause? pause, int offset, Action<SourceOptions>? configure = null, Action<PostgresSinkOptions>? sink = null) =>
        PostgresRunnerTests.Services(db, b => b.ConfigurePostgresSink(o => sink?.Invoke(o)).AddSource(source, _ => new FuncSource<Row>((c, ct) => Rows(c, 30, offset, pause, ct)), o =>
        {
            o.Table = table;
            o.CreateTable = true;
            o.BatchSize = 10;
            o.MaxRetryAttempts = 2;
            o.RetryDelay = TimeSpan.FromMilliseconds(20);
            configure?.Invoke(o);
        }));

    /// <summary>Rows k{i} = i + offset from after the saved cursor up to <paramref name="to"/>, a checkpoint with every 10th.</summary>
    private static async IAsyncEnumerable<Row> Rows(IngestionContext context, int to, int offset, Pause? pause, [EnumeratorCancellation] CancellationToken ct)
    {
        var from = context.State.Cursor is { } cursor ? int.Parse(cursor, CultureInfo.InvariantCulture) + 1 : 1;
        for (var i = from; i <= to; i++)
        {
            if (pause is not null)
            {
                await pause.AtAsync(i, ct);
            }

            if (i % 10 == 0)
            {
                context.Checkpoint(new SourceCheckpoint(i.ToString(CultureInfo.InvariantCulture)));
            }

            yield return new Row { Id = $"k{i:D2}", Value = i + offset };
        }
    }

    private async Task<LockHolder> LockAsync(string table)
    {
        var conn = await db.DataSource.OpenConnectionAsync();
        var tx = await conn.BeginTransactionAsync();

        // EXCLUSIVE lets the sink read (its key index) but makes its COPY, INSERT and UPDATE wait.
        await using var cmd = new NpgsqlCommand($"LOCK TABLE {table} IN EXCLUSIVE MODE", conn, tx);
        await cmd.ExecuteNonQueryAsync();
        return new LockHolder(conn, tx);
    }

    private Task<int> WaitForBlockedBackendAsync(string applicationName, string statement) =>
        WaitForBackendAsync(applicationName, $"wait_event_type = 'Lock' AND query LIKE '{statement} %'");

    private async Task<int> WaitForBackendAsync(string applicationName, string condition)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            await using var cmd = db.DataSource.CreateCommand($"SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND {condition}");
            cmd.Parameters.AddWithValue(applicationName);
            if (await cmd.ExecuteScalarAsync() is int pid)
            {
                return pid;
            }

            Assert.True(clock.Elapsed < Patience, $"No backend of {applicationName} was in the state {condition} within {Patience}.");
            await Task.Delay(20);
        }
    }

    private async Task WaitGoneAsync(int pid)
    {
        var clock = Stopwatch.StartNew();
        while (await db.ScalarAsync<long>($"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") > 0)
        {
            Assert.True(clock.Elapsed < Patience, $"Backend {pid} did not end within {Patience}.");
            await Task.Delay(20);
        }
    }

    /// <summary>Waits until every session named <paramref name="applicationName"/> is idle; fails naming what one still does after <see cref="Patience"/>.</summary>
    private async Task WaitAllIdleAsync(string applicationName)
    {
        var clock = Stopwatch.StartNew();
        string busy;
        while ((busy = await db.ScalarAsync<string>($"SELECT coalesce(string_agg(state || ': ' || left(query, 80), '; '), '') FROM pg_stat_activity WHERE application_name = '{applicationName}' AND state <> 'idle'")) != string.Empty)
        {
            Assert.True(clock.Elapsed < Patience, $"Sessions of {applicationName} still busy after {Patience}: {busy}");
            await Task.Delay(20);
        }
    }

    /// <summary>Waits until the first batch is committed: the runner writes it in the background while the source reads on.</summary>
    private async Task WaitForCursorAsync(string source, string cursor)
    {
        var clock = Stopwatch.StartNew();
        while (await CursorAsync(source) != cursor)
        {
            Assert.True(clock.Elapsed < Patience, $"The cursor of {source} did not reach {cursor} within {Patience}.");
            await Task.Delay(20);
        }
    }

    private async Task<string?> CursorAsync(string source)
    {
        await using var cmd = db.DataSource.CreateCommand("SELECT cursor FROM ingestion.source_state WHERE source = $1");
        cmd.Parameters.AddWithValue(source);
        return await cmd.ExecuteScalarAsync() as string;
    }

    /// <summary>Stops the source once before a given record until the test releases it.</summary>
    private sealed class Pause(int atRecord)
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _done;

        public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _release.TrySetResult();

        public async Task AtAsync(int record, CancellationToken ct)
        {
            if (record == atRecord && Interlocked.Exchange(ref _done, 1) == 0)
            {
                Reached.TrySetResult();
                await _release.Task.WaitAsync(ct);
            }
        }
    }

    /// <summary>A transaction holding a table lock on its own connection; disposing it rolls back and closes.</summary>
    private sealed class LockHolder(NpgsqlConnection connection, NpgsqlTransaction transaction) : IAsyncDisposable
    {
        public Task CommitAsync() => transaction.CommitAsync();

        public async ValueTask DisposeAsync()
        {
            await transaction.DisposeAsync();
            await connection.DisposeAsync();
        }
    }
}
