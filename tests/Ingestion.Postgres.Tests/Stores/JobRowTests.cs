using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Tests.Sinks;
using Ingestion.Running;
using Ingestion.Stores;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.Postgres.Tests.Stores;

/// <summary>Import-job rows tell the truth during a run, after a crash, and when the target lost its key.</summary>
public class JobRowTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private ServiceProvider Host(string source, Func<IngestionContext, CancellationToken, IAsyncEnumerable<Row>> read, string host = "host-a")
    {
        var services = new ServiceCollection();
        services.AddIngestion(configure: o => { o.HostName = host; o.HeartbeatInterval = TimeSpan.FromMilliseconds(100); o.AbandonAfter = TimeSpan.FromSeconds(30); })
            .UsePostgres(o => o.ConnectionString = db.ConnectionString)
            .AddSource(source, _ => new RowSource(read), o =>
            {
                o.Table = source.Replace('-', '_');
                o.CreateTable = true;
                o.BatchSize = 100;
                o.MaxRetryAttempts = 0;
            });
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task A_running_job_row_shows_its_committed_counts_and_a_heartbeat()
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var sp = Host("job-live", (c, ct) => RowSource.Rows(c, 1, 1000, ct: ct, before: async i =>
        {
            if (i == 501)
            {
                reached.TrySetResult();
                await gate.Task.WaitAsync(ct);
            }
        }));
        var run = sp.GetRequiredService<IIngestionRunner>().RunAsync("job-live", null, default);
        await reached.Task.WaitAsync(TimeSpan.FromSeconds(60));
        await Task.Delay(700); // the batch in flight commits; heartbeats tick

        var live = await db.ScalarAsync<string>(
            "SELECT status || ' ' || read || ' ' || created || ' ' || (heartbeat_at > started_at) FROM ingestion.import_jobs WHERE source = 'job-live'");
        var rows = await db.ScalarAsync<long>("SELECT count(*) FROM job_live");
        Assert.Equal($"Running {rows} {rows} true", live);
        Assert.True(rows >= 400, $"{rows} rows committed before the pause");

        gate.SetResult();
        var result = await run.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal("Succeeded 1000 1000", await db.ScalarAsync<string>("SELECT status || ' ' || read || ' ' || created FROM ingestion.import_jobs WHERE source = 'job-live'"));
    }

    [Fact]
    public async Task A_job_left_running_by_a_dead_host_is_closed_by_the_next_run_as_abandoned_with_its_counts()
    {
        // What a host killed mid-run leaves: a running job with the counts of its committed batches.
        var dead = Guid.NewGuid();
        await MigrateAsync();
        await db.ExecuteAsync($"""
            INSERT INTO ingestion.import_jobs (id, source, trigger, mode, host, started_at, heartbeat_at, read, created)
            VALUES ('{dead}', 'job-dead', 'schedule', 'Incremental', 'dead-host:42', now() - interval '10 minutes', '2026-01-02 03:04:05+00', 300, 300)
            """);
        await using var sp = Host("job-dead", (c, ct) => RowSource.Rows(c, 1, 10, ct: ct));

        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("job-dead", null, default);

        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        var jobs = await sp.GetRequiredService<IImportJobStore>().ListRecentAsync(10, "job-dead", default);
        var old = Assert.Single(jobs, j => j.Id == dead);
        Assert.Equal(IngestionStatus.Abandoned, old.Status);
        Assert.Equal((300L, 300L), (old.Counts.Read, old.Counts.Created));
        Assert.Equal(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero), old.FinishedAt);
        Assert.Contains("dead-host:42", old.Error);
        Assert.Contains("last alive 2026-01-02 03:04:05Z", old.Error);

        // The sentence filled in on the server is the one the in-process store writes.
        Assert.Equal(AbandonedJob.Error("dead-host:42", new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero)), old.Error);
    }

    [Fact]
    public async Task The_start_up_sweep_closes_silent_jobs_whose_source_lock_is_free_and_keeps_the_others()
    {
        await MigrateAsync();
        Guid silent = Guid.NewGuid(), locked = Guid.NewGuid(), recent = Guid.NewGuid();
        await db.ExecuteAsync($"""
            INSERT INTO ingestion.import_jobs (id, source, trigger, mode, host, started_at, heartbeat_at) VALUES
            ('{silent}', 'sweep-a', 'manual', 'Incremental', 'gone', now() - interval '1 hour', now() - interval '1 hour'),
            ('{locked}', 'sweep-b', 'manual', 'Incremental', 'slow', now() - interval '1 hour', now() - interval '1 hour'),
            ('{recent}', 'sweep-c', 'manual', 'Incremental', 'alive', now(), now())
            """);
        await using var sp = Host("sweep-a", (c, ct) => RowSource.Rows(c, 1, 1, ct: ct));
        await using var held = await sp.GetRequiredService<IRunLockProvider>().TryAcquireAsync("sweep-b", locked, default);
        Assert.NotNull(held);

        foreach (var service in sp.GetServices<IHostedService>())
        {
            await service.StartAsync(default);
        }

        Assert.Equal("Abandoned", await db.ScalarAsync<string>($"SELECT status FROM ingestion.import_jobs WHERE id = '{silent}'"));
        Assert.Equal("Running", await db.ScalarAsync<string>($"SELECT status FROM ingestion.import_jobs WHERE id = '{locked}'"));
        Assert.Equal("Running", await db.ScalarAsync<string>($"SELECT status FROM ingestion.import_jobs WHERE id = '{recent}'"));
    }

    [Fact]
    public async Task A_run_with_nothing_to_write_is_not_a_success_while_its_table_holds_a_key_twice()
    {
        // A first load that failed half-way leaves its table without the key (built at the end of a first load).
        await using (var first = Host("keyless", (c, ct) => Failing(c, 250, ct)))
        {
            var failed = await first.GetRequiredService<IIngestionRunner>().RunAsync("keyless", null, default);
            Assert.Equal(IngestionStatus.Failed, failed.Status);
        }

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_index WHERE indrelid = 'public.keyless'::regclass AND indisprimary"));
        await db.ExecuteAsync("INSERT INTO keyless (id, value) VALUES ('k0007', 7), ('k0009', 9)");

        await using var sp = Host("keyless", (c, ct) => RowSource.Rows(c, 1, 0, ct: ct));
        var runner = sp.GetRequiredService<IIngestionRunner>();
        var result = await runner.RunAsync("keyless", null, default);

        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("table public.keyless holds 2 key value(s) of (id) stored more than once", result.Error!.Message);
        Assert.Equal("id", result.Error.Field);

        await db.ExecuteAsync("DELETE FROM keyless WHERE _ingestion_hash IS NULL");
        var repaired = await runner.RunAsync("keyless", null, default);
        Assert.Equal(IngestionStatus.Succeeded, repaired.Status);
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_index WHERE indrelid = 'public.keyless'::regclass AND indisprimary"));
    }

    private static async IAsyncEnumerable<Row> Failing(IngestionContext context, int failAfter, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var row in RowSource.Rows(context, 1, failAfter, ct: ct))
        {
            yield return row;
        }

        throw new InvalidDataException("the source broke");
    }

    private async Task MigrateAsync()
    {
        await using var sp = Host("migrate", (c, ct) => RowSource.Rows(c, 1, 0, ct: ct));
        await sp.GetRequiredService<IngestionDatabase>().EnsureMigratedAsync(default);
    }
}
