using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Tests.Sinks;
using Ingestion.Running;
using Ingestion.Stores;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Ingestion.Postgres.Tests.Stores;

/// <summary>
/// Two hosts, one source: the first loses its run lock mid-run (its lock connection is terminated, or would be closed
/// by the server's <c>idle_session_timeout</c>). The source's table must end with exactly its rows, its primary key, and
/// one successful run.
/// </summary>
public class RunLockFencingTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private const int Rows = 3000;

    private static ServiceProvider Host(string connectionString, string hostName, Func<IngestionContext, CancellationToken, IAsyncEnumerable<Row>> read, string table, int retries = 0, TimeSpan? keepAlive = null)
    {
        var services = new ServiceCollection();
        services.AddIngestion(configure: o => { o.HostName = hostName; o.HeartbeatInterval = TimeSpan.FromMilliseconds(200); })
            .UsePostgres(o => { o.ConnectionString = connectionString; o.RunLockKeepAliveInterval = keepAlive ?? TimeSpan.FromMilliseconds(300); })
            .AddSource(table, _ => new RowSource(read), o =>
            {
                o.Table = table;
                o.CreateTable = true;
                o.BatchSize = 100;
                o.MaxRetryAttempts = retries;
                o.RetryDelay = TimeSpan.FromMilliseconds(100);
            });
        return services.BuildServiceProvider();
    }

    /// <summary>Rows k0001..k{Rows}, a checkpoint after each, pausing before <paramref name="pauseAt"/> until <paramref name="gate"/> opens.</summary>
    private static async IAsyncEnumerable<Row> Paused(IngestionContext context, int pauseAt, TaskCompletionSource reached, Task gate, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var row in RowSource.Rows(context, 1, Rows, ct: ct, before: async i =>
        {
            if (i == pauseAt)
            {
                reached.TrySetResult();
                await gate.WaitAsync(ct);
            }
        }))
        {
            yield return row;
        }
    }

    [Fact]
    public async Task A_run_whose_lock_connection_is_terminated_and_taken_over_writes_nothing_more()
    {
        const string table = "fenced_terminated";
        var aReached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var aGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bReached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Host A's keep-alive is slow on purpose: it cannot notice the loss (nor take the lock back) before host B takes it
        // over, so what stops A is the fencing check inside its next batch transaction.
        await using var hostA = Host(db.ConnectionString, "host-a", (c, ct) => Paused(c, 1001, aReached, aGate.Task, ct), table, keepAlive: TimeSpan.FromHours(1));
        await using var hostB = Host(db.ConnectionString, "host-b", (c, ct) => Paused(c, 1501, bReached, bGate.Task, ct), table);

        var runA = hostA.GetRequiredService<IIngestionRunner>().RunAsync(table, null, default);
        await aReached.Task.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, await TerminateLockConnectionsAsync());

        // Host B takes the lock over and writes half the source while host A is paused ...
        var runB = hostB.GetRequiredService<IIngestionRunner>().RunAsync(table, null, default);
        await bReached.Task.WaitAsync(TimeSpan.FromSeconds(60));

        // ... then host A goes on reading while B is mid-run: it must not commit a single row more.
        aGate.SetResult();
        var a = await runA.WaitAsync(TimeSpan.FromSeconds(60));
        bGate.SetResult();
        var b = await runB.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(IngestionStatus.Failed, a.Status);
        Assert.Equal(nameof(RunLockLostException), a.Error!.Type);
        Assert.Contains("no longer holds the source's run lock", a.Error.Message);
        Assert.Contains("host-b", a.Error.Message);
        Assert.Equal(IngestionStatus.Succeeded, b.Status);
        await AssertExactlyTheSourceAsync(table);
    }

    [Fact]
    public async Task A_run_lock_survives_the_servers_idle_session_timeout()
    {
        const string table = "fenced_idle";
        var dbName = new NpgsqlConnectionStringBuilder(db.ConnectionString).Database;
        await ScalarAsync<int>($"SELECT 1; ALTER DATABASE \"{dbName}\" SET idle_session_timeout = '3s'");
        try
        {
            // Without pooling, every connection is a new session that gets the database's setting.
            var cs = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Pooling = false }.ConnectionString;
            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await using var hostA = Host(cs, "host-a", (c, ct) => Paused(c, 1001, reached, gate.Task, ct), table, retries: 3);
            await using var hostB = Host(cs, "host-b", (c, ct) => RowSource.Rows(c, 1, Rows, ct: ct), table);

            var runA = hostA.GetRequiredService<IIngestionRunner>().RunAsync(table, null, default);
            await reached.Task.WaitAsync(TimeSpan.FromSeconds(60));
            await Task.Delay(TimeSpan.FromSeconds(5)); // longer than idle_session_timeout: an idle lock session would be gone

            var b = await hostB.GetRequiredService<IIngestionRunner>().RunAsync(table, null, default);
            gate.SetResult();
            var a = await runA.WaitAsync(TimeSpan.FromSeconds(90));

            Assert.Equal(IngestionStatus.AlreadyRunning, b.Status);
            Assert.Equal(IngestionStatus.Succeeded, a.Status);
            await AssertExactlyTheSourceAsync(table);
        }
        finally
        {
            await ScalarAsync<int>($"ALTER DATABASE \"{dbName}\" RESET idle_session_timeout; SELECT 1");
        }
    }

    [Fact]
    public async Task A_fencing_token_taken_by_another_run_fails_the_batch_before_it_commits()
    {
        const string table = "fenced_token";
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = Host(db.ConnectionString, "host-a", (c, ct) => Paused(c, 501, reached, gate.Task, ct), table);
        var run = host.GetRequiredService<IIngestionRunner>().RunAsync(table, null, default);
        await reached.Task.WaitAsync(TimeSpan.FromSeconds(60));
        await Task.Delay(500); // the batch in flight commits
        var before = await ScalarAsync<long>($"SELECT count(*) FROM {table}");

        // What another host's takeover leaves in the lock's record, without touching the run's connections.
        await ScalarAsync<int>($"WITH u AS (UPDATE ingestion.run_locks SET generation = generation + 1, host = 'intruder', run_id = gen_random_uuid() WHERE source = '{table}' RETURNING 1) SELECT count(*)::int FROM u");
        gate.SetResult();
        var result = await run.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Equal(nameof(RunLockLostException), result.Error!.Type);
        Assert.Contains("intruder", result.Error.Message);
        Assert.Equal(before, await ScalarAsync<long>($"SELECT count(*) FROM {table}"));
        var job = (await host.GetRequiredService<IImportJobStore>().ListRecentAsync(1, table, default)).Single();
        Assert.Equal(before, job.Counts.Created);
    }

    /// <summary>A query on a connection of its own (no pool: pooled sessions may have been closed by an idle timeout).</summary>
    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(db.ConnectionString) { Pooling = false }.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)Convert.ChangeType((await cmd.ExecuteScalarAsync())!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<int> TerminateLockConnectionsAsync() =>
        await ScalarAsync<int>(
            """
            SELECT count(pg_terminate_backend(l.pid))::int FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """);

    private async Task AssertExactlyTheSourceAsync(string table)
    {
        Assert.Equal((long)Rows, await ScalarAsync<long>($"SELECT count(*) FROM {table}"));
        Assert.Equal((long)Rows, await ScalarAsync<long>($"SELECT count(DISTINCT id) FROM {table}"));
        Assert.Equal(1L, await ScalarAsync<long>($"SELECT count(*) FROM pg_index WHERE indrelid = 'public.{table}'::regclass AND indisprimary"));
        Assert.Equal(1L, await ScalarAsync<long>($"SELECT count(*) FROM ingestion.import_jobs WHERE source = '{table}' AND status = 'Succeeded'"));
        Assert.Equal(0L, await ScalarAsync<long>($"SELECT count(*) FROM ingestion.import_jobs WHERE source = '{table}' AND status = 'Running'"));
    }
}
