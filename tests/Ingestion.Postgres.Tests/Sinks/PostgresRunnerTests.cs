using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Running;
using Ingestion.Stores;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>A source of rows given by a function, with checkpoints after chosen records.</summary>
public sealed class RowSource(Func<IngestionContext, CancellationToken, IAsyncEnumerable<Row>> read) : IngestionSource<Row>
{
    public override IAsyncEnumerable<Row> ReadAsync(IngestionContext context, CancellationToken cancellationToken) => read(context, cancellationToken);

    /// <summary>Rows k{from}..k{to} with value i + offset, checkpointing the cursor after every <paramref name="every"/> rows.</summary>
    public static async IAsyncEnumerable<Row> Rows(IngestionContext context, int from, int to, int offset = 0, int every = 1, Func<int, Task>? before = null, [EnumeratorCancellation] CancellationToken ct = default)
    {
        for (var i = from; i <= to; i++)
        {
            ct.ThrowIfCancellationRequested();
            if (before is not null)
            {
                await before(i);
            }

            yield return new Row { Id = $"k{i:D4}", Value = i + offset };
            if (i % every == 0)
            {
                context.Checkpoint(new SourceCheckpoint(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        }
    }
}

public class PostgresRunnerTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    internal static ServiceProvider Services(PostgresDatabase db, Action<IIngestionBuilder> configure)
    {
        var services = new ServiceCollection();
        var builder = services.AddIngestion().UsePostgres(o => o.ConnectionString = db.ConnectionString);
        configure(builder);
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task UsePostgres_replaces_the_in_memory_defaults()
    {
        await using var sp = Services(db, _ => { });
        Assert.IsType<Ingestion.Postgres.Sinks.PostgresSink>(sp.GetRequiredService<Ingestion.Sinks.IIngestionSink>());
        Assert.IsType<Ingestion.Postgres.Stores.PostgresImportJobStore>(sp.GetRequiredService<IImportJobStore>());
        Assert.IsType<Ingestion.Postgres.Stores.PostgresSourceStateStore>(sp.GetRequiredService<ISourceStateStore>());
        Assert.IsType<Ingestion.Postgres.Stores.PostgresRunLockProvider>(sp.GetRequiredService<IRunLockProvider>());
    }

    [Fact]
    public async Task A_run_through_the_runner_writes_rows_state_and_its_job()
    {
        await using var sp = Services(db, b => b.AddSource("runner-rows", _ => new RowSource((c, ct) => RowSource.Rows(c, 1, 25, every: 5, ct: ct)), o =>
        {
            o.Table = "runner_rows";
            o.CreateTable = true;
            o.BatchSize = 10;
        }));
        var runner = sp.GetRequiredService<IIngestionRunner>();
        var result = await runner.RunAsync("runner-rows", null, default);
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(25L, result.Counts.Created);
        Assert.True(result.Counts.AddsUp);

        var again = await runner.RunAsync("runner-rows", null, default);
        Assert.Equal((0L, 25L), (again.Counts.Created, again.Counts.Unchanged));

        Assert.Equal(25L, await db.ScalarAsync<long>("SELECT count(*) FROM runner_rows"));
        var state = await sp.GetRequiredService<ISourceStateStore>().GetAsync("runner-rows", default);
        Assert.Equal("25", state.Cursor);
        Assert.NotNull(state.LastSuccess);
        Assert.NotNull(state.LastImported);

        var jobs = await sp.GetRequiredService<IImportJobStore>().ListRecentAsync(10, "runner-rows", default);
        Assert.Equal(2, jobs.Count);
        Assert.Equal((IngestionStatus.Succeeded, 25L, 25L), (jobs[0].Status, jobs[0].Counts.Read, jobs[0].Counts.Unchanged));
        Assert.Equal(25L, jobs[1].Counts.Created);
        Assert.Equal(1L, await db.ScalarAsync<long>($"SELECT count(*) FROM ingestion.import_jobs WHERE id = '{result.RunId}' AND status = 'Succeeded' AND created = 25 AND read = 25 AND finished_at IS NOT NULL"));
    }

    [Fact]
    public async Task A_first_load_past_the_key_index_reports_exact_counts_in_its_result_and_job_row()
    {
        // k0001-k0020, then k0011-k0015 again (k0013 changed): the writer remembers 4 keys, so the repeats are copied as
        // new rows and sorted out when the key is built; the run's counts are the exact ones all the same.
        static async IAsyncEnumerable<Row> Read([EnumeratorCancellation] CancellationToken ct = default)
        {
            await Task.Yield();
            for (var i = 1; i <= 20; i++)
            {
                yield return new Row { Id = $"k{i:D4}", Value = i };
            }

            for (var i = 11; i <= 15; i++)
            {
                yield return new Row { Id = $"k{i:D4}", Value = i == 13 ? 130 : i };
            }
        }

        await using var sp = Services(db, b => b
            .ConfigurePostgresSink(o => o.KeyIndexMaxRows = 4)
            .AddSource("runner-past-index", _ => new RowSource((_, ct) => Read(ct)), o =>
            {
                o.Table = "runner_past_index";
                o.CreateTable = true;
                o.BatchSize = 10;
            }));
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("runner-past-index", null, default);

        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal((25L, 20L, 1L, 4L), (result.Counts.Read, result.Counts.Created, result.Counts.Updated, result.Counts.Unchanged));
        Assert.Equal(20L, await db.ScalarAsync<long>("SELECT count(*) FROM runner_past_index"));
        Assert.Equal(130, await db.ScalarAsync<int>("SELECT value FROM runner_past_index WHERE id = 'k0013'"));
        Assert.Equal(1L, await db.ScalarAsync<long>($"SELECT count(*) FROM ingestion.import_jobs WHERE id = '{result.RunId}' AND created = 20 AND updated = 1 AND unchanged = 4"));
    }

    [Theory]
    [InlineData(null, null, null, false, "first-default", "off,off,off,on,on", "2MB,2MB,2MB,2MB,0")]
    [InlineData(null, false, 0, false, "first-sync", "on,on,on,on,on", "0,0,0,0,0")]
    [InlineData(null, null, 512, false, "first-flush-512", "off,off,off,on,on", "512kB,512kB,512kB,512kB,0")]
    [InlineData(null, null, null, true, "keyed-default", "on,on,on,on,on", "0,0,0,0,0")]
    [InlineData(true, null, null, true, "keyed-async", "off,off,off,off,on", "0,0,0,0,0")]
    [InlineData(false, false, null, false, "first-all-sync", "on,on,on,on,on", "2MB,2MB,2MB,2MB,0")]
    public async Task Batch_transactions_commit_asynchronously_and_flush_early_in_a_first_load_or_when_asked(bool? asynchronous, bool? firstLoad, int? flushAfter, bool keyedTable, string name, string expected, string expectedFlush)
    {
        // A deferred constraint trigger on the job row fires at each batch's commit and notes the settings then in force
        // (synchronous_commit, and backend_flush_after, which the writer sets on its sessions during a first load): four
        // batch transactions (three of rows, then the last checkpoint, which writes no row), then the job's completion
        // by the job store on a session of its own. A first load fills a table the sink made, whose key it builds at
        // the end; a table made with its key beforehand is no first load.
        var source = $"runner-sync-{name}";
        var table = source.Replace('-', '_');
        await db.ExecuteAsync("""
            CREATE TABLE IF NOT EXISTS commit_settings (id bigserial PRIMARY KEY, source text, setting text, flush text);
            CREATE OR REPLACE FUNCTION note_commit_setting() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO commit_settings (source, setting, flush) VALUES (NEW.source, current_setting('synchronous_commit'), current_setting('backend_flush_after'));
              RETURN NULL;
            END $$;
            """);
        if (keyedTable)
        {
            await db.ExecuteAsync($"CREATE TABLE {table} (id text PRIMARY KEY, value int NOT NULL, note text, at timestamptz)");
        }

        await using var sp = Services(db, b => b
            .ConfigurePostgresSink(o =>
            {
                o.AsynchronousBatchCommits = asynchronous ?? o.AsynchronousBatchCommits;
                o.AsynchronousFirstLoadCommits = firstLoad ?? o.AsynchronousFirstLoadCommits;
                o.FirstLoadFlushAfterKilobytes = flushAfter ?? o.FirstLoadFlushAfterKilobytes;
            })
            .AddSource(source, _ => new RowSource((c, ct) => RowSource.Rows(c, 1, 30, every: 10, ct: ct)), o =>
            {
                o.Table = table;
                o.CreateTable = true;
                o.BatchSize = 10;
            }));
        await sp.GetRequiredService<Ingestion.Postgres.Hosting.IngestionDatabase>().EnsureMigratedAsync(default);
        await db.ExecuteAsync("""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'note_commit_setting') THEN
                CREATE CONSTRAINT TRIGGER note_commit_setting AFTER UPDATE OF read ON ingestion.import_jobs
                  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION note_commit_setting();
              END IF;
            END $$;
            """);

        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync(source, null, default);

        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(expected, await db.ScalarAsync<string>($"SELECT string_agg(setting, ',' ORDER BY id) FROM commit_settings WHERE source = '{source}'"));
        Assert.Equal(expectedFlush, await db.ScalarAsync<string>($"SELECT string_agg(flush, ',' ORDER BY id) FROM commit_settings WHERE source = '{source}'"));
        Assert.Equal(30L, await db.ScalarAsync<long>($"SELECT count(*) FROM {table}"));
        Assert.True(await db.ScalarAsync<bool>($"SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = '{table}'::regclass AND indisprimary)"));
    }

    [Fact]
    public async Task Batches_prepared_ahead_keep_exact_counts_duplicates_and_rejects()
    {
        // Batches 2-4 are checked and hashed on the reading thread while the previous batch is written.
        static async IAsyncEnumerable<Row> Read([EnumeratorCancellation] CancellationToken ct = default)
        {
            for (var i = 1; i <= 32; i++)
            {
                await Task.Yield();
                yield return i switch
                {
                    15 => new Row { Id = "k0011", Value = 999 },
                    23 => new Row { Id = "k0023", Value = 23, Note = "bad\0note" },
                    _ => new Row { Id = $"k{i:D4}", Value = i },
                };
            }
        }

        await using var sp = Services(db, b => b.AddSource("prepared-rows", _ => new RowSource((_, ct) => Read(ct)), o =>
        {
            o.Table = "prepared_rows";
            o.CreateTable = true;
            o.BatchSize = 10;
            o.MaxRejected = 5;
        }));
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("prepared-rows", null, default);

        Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);
        Assert.Equal((32L, 30L, 1L, 1L), (result.Counts.Read, result.Counts.Created, result.Counts.Duplicates, result.Counts.Rejected));
        Assert.Equal(30L, await db.ScalarAsync<long>("SELECT count(*) FROM prepared_rows"));
        Assert.Equal(999L, await db.ScalarAsync<long>("SELECT value::bigint FROM prepared_rows WHERE id = 'k0011'"));
        Assert.Equal("record 23|note", await db.ScalarAsync<string>($"SELECT position || '|' || field FROM ingestion.rejected_records WHERE job_id = '{result.RunId}'"));
    }

    [Fact]
    public async Task Two_hosts_never_run_a_source_at_once_the_second_reports_already_running()
    {
        var release = new TaskCompletionSource();
        var started = new TaskCompletionSource();
        await using var hostA = Services(db, b => b.AddSource("locked", _ => new RowSource((c, ct) => RowSource.Rows(c, 1, 3, before: async i =>
        {
            started.TrySetResult();
            await release.Task;
        }, ct: ct)), o => { o.Table = "locked_rows"; o.CreateTable = true; }));
        await using var hostB = Services(db, b => b.AddSource("locked", _ => new RowSource((c, ct) => RowSource.Rows(c, 1, 3, ct: ct)), o => { o.Table = "locked_rows"; o.CreateTable = true; }));

        var runA = hostA.GetRequiredService<IIngestionRunner>().RunAsync("locked", null, default);
        await started.Task;
        var b = await hostB.GetRequiredService<IIngestionRunner>().RunAsync("locked", null, default);
        Assert.Equal(IngestionStatus.AlreadyRunning, b.Status);
        Assert.True(b.IsSuccess);
        release.SetResult();
        Assert.Equal(IngestionStatus.Succeeded, (await runA).Status);

        // Released: host B can run it now.
        Assert.Equal(IngestionStatus.Succeeded, (await hostB.GetRequiredService<IIngestionRunner>().RunAsync("locked", null, default)).Status);
    }
}
