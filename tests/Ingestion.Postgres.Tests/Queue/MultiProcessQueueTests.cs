using System.Diagnostics;
using System.Globalization;
using System.Text;
using Ingestion.TestSupport;

namespace Ingestion.Postgres.Tests.Queue;

/// <summary>
/// Three worker processes (tests/Ingestion.Queue.TestWorker) drain one queue of 10,000 items. Each handler
/// records every processing (key, worker, attempt, server time) in a table without a unique constraint, so
/// a duplicate processing shows up as a second row for the key.
/// </summary>
public class MultiProcessQueueTests(PostgresDatabase db, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<PostgresDatabase>
{
    private const int Items = 10_000;
    private const int LeaseMs = 6_000;

    [Fact]
    public async Task Three_worker_processes_do_every_one_of_10000_items_exactly_once()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        var table = await CreateResultsTableAsync(q);
        var clock = Stopwatch.StartNew();
        var workers = await StartWorkersAsync(q, table, 30_000);
        output.WriteLine($"workers ready after {clock.Elapsed.TotalSeconds:0.0} s");
        try
        {
            await q.Store.EnqueueManyAsync("docs", QueueTestStore.Items(Enumerable.Range(0, Items).Select(i => $"bucket/doc-{i:D5}.xml")), CancellationToken.None);
            await WaitOrDescribeAsync(q, table, workers, async () => await q.CountAsync("queue_done") == Items);
            output.WriteLine($"all done after {clock.Elapsed.TotalSeconds:0.0} s; processing took {await q.Db.ScalarAsync<double>($"SELECT extract(epoch FROM max(at) - min(at)) FROM {table}"):0.0} s");
            foreach (var w in workers)
            {
                await w.StopGracefullyAsync();
                Assert.Equal(0, w.Process.ExitCode);
            }

            output.WriteLine($"workers stopped after {clock.Elapsed.TotalSeconds:0.0} s");
        }
        finally
        {
            foreach (var w in workers)
            {
                w.Dispose();
            }
        }

        // Exactly once: one processing row per key, every key present, nothing left in the queue, no retry.
        Assert.Equal((long)Items, await q.Db.ScalarAsync<long>($"SELECT count(*) FROM {table}"));
        Assert.Equal((long)Items, await q.Db.ScalarAsync<long>($"SELECT count(DISTINCT key) FROM {table}"));
        Assert.Equal(0L, await q.CountAsync("queue_items"));
        Assert.Equal(0L, await q.CountAsync("queue_done WHERE attempts <> 1"));

        // The work was shared: every process did some.
        Assert.Equal(3L, await q.Db.ScalarAsync<long>($"SELECT count(DISTINCT worker) FROM {table}"));
    }

    [Fact]
    public async Task A_worker_killed_mid_batch_loses_nothing_and_its_items_are_rescued_after_their_lease()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        var table = await CreateResultsTableAsync(q);
        var workers = await StartWorkersAsync(q, table, LeaseMs);
        HashSet<string> held;
        try
        {
            await q.Store.EnqueueManyAsync("docs", QueueTestStore.Items(Enumerable.Range(0, Items).Select(i => $"bucket/doc-{i:D5}.xml")), CancellationToken.None);
            await WaitOrDescribeAsync(q, table, workers, async () => await q.Db.ScalarAsync<long>($"SELECT count(*) FROM {table} WHERE worker = 'w0'") >= 1_000);

            // SIGKILL: no shutdown, no release, no final completion.
            workers[0].Process.Kill();
            await workers[0].Process.WaitForExitAsync();
            await Task.Delay(200); // a statement the dead worker had sent finishes on the server

            // What the killed worker held (claimed, not completed): its lease is still on these rows.
            await q.Db.ExecuteAsync($"CREATE TABLE held AS SELECT key, lease_until FROM \"{q.Schema}\".queue_items WHERE lease_owner = 'w0' AND state = 1");
            held = [.. (await ReadKeysAsync("SELECT key FROM held"))];
            Assert.NotEmpty(held);

            await WaitOrDescribeAsync(q, table, workers, async () => await q.CountAsync("queue_done") == Items);
        }
        finally
        {
            foreach (var w in workers)
            {
                w.Dispose();
            }
        }

        // None lost: every key was processed and is done; nothing is left pending, running or dead.
        Assert.Equal((long)Items, await q.Db.ScalarAsync<long>($"SELECT count(DISTINCT key) FROM {table}"));
        Assert.Equal(0L, await q.CountAsync("queue_items"));

        // Duplicates only among the killed worker's held items (at-least-once: it may have processed one
        // without completing it); every other item was processed exactly once.
        var duplicated = await ReadKeysAsync($"SELECT key FROM {table} GROUP BY key HAVING count(*) > 1");
        Assert.All(duplicated, k => Assert.Contains(k, held));
        Assert.Equal(0L, await q.Db.ScalarAsync<long>($"SELECT count(*) FROM (SELECT key FROM {table} WHERE key NOT IN (SELECT key FROM held) GROUP BY key HAVING count(*) <> 1) x"));
        Assert.Equal(0L, await q.Db.ScalarAsync<long>($"SELECT count(*) FROM (SELECT key FROM {table} r WHERE r.key IN (SELECT key FROM held) GROUP BY key HAVING count(*) FILTER (WHERE worker <> 'w0') <> 1 OR count(*) FILTER (WHERE worker = 'w0') > 1) x"));

        // Rescued after their lease: each held item was done by another worker on a later attempt, and
        // that processing started only after the killed worker's lease on it had expired.
        Assert.Equal((long)held.Count, await q.Db.ScalarAsync<long>($"SELECT count(*) FROM \"{q.Schema}\".queue_done d JOIN held h USING (key) WHERE d.attempts >= 2"));
        Assert.Equal(0L, await q.Db.ScalarAsync<long>($"SELECT count(*) FROM {table} r JOIN held h USING (key) WHERE r.worker <> 'w0' AND (r.at < h.lease_until OR r.attempt < 2)"));
    }

    /// <summary>
    /// Waits up to 120 s for the condition; when it does not hold, fails with what the queue and each worker
    /// were doing (items by state and owner, leases, processing per worker, each worker's exit and errors).
    /// </summary>
    private async Task WaitOrDescribeAsync(QueueTestStore q, string table, List<WorkerProcess> workers, Func<Task<bool>> condition)
    {
        try
        {
            await WorkQueueWorkerTests.WaitUntilAsync(condition, 120);
        }
        catch (TimeoutException e)
        {
            var state = new StringBuilder();
            state.AppendLine(CultureInfo.InvariantCulture, $"done: {await q.CountAsync("queue_done")} of {Items}; server now {await q.Db.ScalarAsync<DateTime>("SELECT now()"):O}");
            foreach (var line in await ReadKeysAsync($"SELECT concat_ws(' ', 'state', state, 'owner', coalesce(lease_owner, '-'), 'items', count(*), 'attempts', min(attempts), '-', max(attempts), 'lease until', min(lease_until), '-', max(lease_until), 'run after', min(run_after), 'error', min(last_error)) FROM \"{q.Schema}\".queue_items GROUP BY state, lease_owner"))
            {
                state.AppendLine(line);
            }

            foreach (var line in await ReadKeysAsync($"SELECT concat_ws(' ', 'worker', worker, 'processed', count(*), 'last at', max(at)) FROM {table} GROUP BY worker"))
            {
                state.AppendLine(line);
            }

            foreach (var w in workers)
            {
                state.AppendLine(CultureInfo.InvariantCulture, $"process {w.Process.Id}: {(w.Process.HasExited ? $"exited {w.Process.ExitCode}" : "running")}; output: {w.Errors}");
            }

            output.WriteLine(state.ToString());
            throw new TimeoutException($"{e.Message}{Environment.NewLine}{state}", e);
        }
    }

    private async Task<List<string>> ReadKeysAsync(string sql)
    {
        var keys = new List<string>();
        await using var cmd = db.DataSource.CreateCommand(sql);
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            keys.Add(r.GetString(0));
        }

        return keys;
    }

    private static async Task<string> CreateResultsTableAsync(QueueTestStore q)
    {
        var table = $"\"{q.Schema}\".processed";
        await q.Db.ExecuteAsync($"CREATE TABLE {table} (key text NOT NULL, worker text NOT NULL, attempt int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())");
        return table;
    }

    private static async Task<List<WorkerProcess>> StartWorkersAsync(QueueTestStore q, string table, int leaseMs)
    {
        var workers = Enumerable.Range(0, 3).Select(i => WorkerProcess.Start(q.Db.ConnectionString, q.Schema, "docs", table, $"w{i}", leaseMs)).ToList();
        try
        {
            await Task.WhenAll(workers.Select(w => w.Ready));
        }
        catch
        {
            foreach (var w in workers)
            {
                w.Dispose();
            }

            throw;
        }

        return workers;
    }

    private sealed class WorkerProcess : IDisposable
    {
        private readonly StringBuilder _stderr = new();
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private WorkerProcess(Process process) => Process = process;

        public Process Process { get; }

        public Task Ready => _ready.Task.WaitAsync(TimeSpan.FromSeconds(90));

        public static WorkerProcess Start(string conn, string schema, string queue, string table, string name, int leaseMs)
        {
            var psi = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Ingestion.Queue.TestWorker.dll"), conn, schema, queue, table, name, "4", "50", leaseMs.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            {
                psi.ArgumentList.Add(a);
            }

            var w = new WorkerProcess(new Process { StartInfo = psi, EnableRaisingEvents = true });
            w.Process.OutputDataReceived += (_, e) =>
            {
                if (e.Data == "ready")
                {
                    w._ready.TrySetResult();
                }
                else if (e.Data is not null)
                {
                    // The worker logs its warnings (a failed claim, lost leases) to standard output.
                    lock (w._stderr)
                    {
                        w._stderr.AppendLine(e.Data);
                    }
                }
            };
            w.Process.ErrorDataReceived += (_, e) =>
            {
                lock (w._stderr)
                {
                    w._stderr.AppendLine(e.Data);
                }
            };
            w.Process.Exited += (_, _) => w._ready.TrySetException(new InvalidOperationException($"Worker {name} exited with {w.Process.ExitCode} before it was ready: {w.Errors}"));
            w.Process.Start();
            w.Process.BeginOutputReadLine();
            w.Process.BeginErrorReadLine();
            return w;
        }

        public string Errors
        {
            get
            {
                lock (_stderr)
                {
                    return _stderr.ToString();
                }
            }
        }

        public async Task StopGracefullyAsync()
        {
            using (var kill = Process.Start("kill", ["-TERM", Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            await Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill();
                Process.WaitForExit(10_000);
            }

            Process.Dispose();
        }
    }
}
