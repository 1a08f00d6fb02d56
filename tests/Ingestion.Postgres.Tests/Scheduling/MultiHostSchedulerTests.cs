using System.Diagnostics;
using System.Globalization;
using System.Text;
using Ingestion.TestSupport;

namespace Ingestion.Postgres.Tests.Scheduling;

/// <summary>
/// Three host processes (tests/Ingestion.Scheduling.TestHost) share one database and run a schedule firing every
/// second. Asserts exactly-once and no overlap, never timing.
/// </summary>
public class MultiHostSchedulerTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task Three_hosts_run_every_slot_exactly_once_and_never_concurrently()
    {
        const string schema = "sched_multi";
        await CreateProbeTableAsync();
        var hosts = Enumerable.Range(1, 3).Select(i => HostProcess.Start(db.ConnectionString, schema, $"host-{i}", seconds: 7, workMs: 150, attempts: 1, leaseMs: 3000)).ToList();
        try
        {
            await Task.WhenAll(hosts.Select(h => h.Ready));
            await Task.WhenAll(hosts.Select(h => h.ExitAsync(TimeSpan.FromSeconds(120))));
        }
        finally
        {
            hosts.ForEach(h => h.Dispose());
        }

        var slots = await SlotsAsync(schema);
        Assert.True(slots.Count >= 4, $"only {slots.Count} slots were claimed");

        // Every second from the first claimed slot to the last has exactly one claim (the primary key forbids two).
        var first = slots[0].Slot;
        var last = slots[^1].Slot;
        Assert.Equal((int)(last - first).TotalSeconds + 1, slots.Count);
        Assert.All(slots, s => Assert.Contains(s.Status, new[] { "succeeded", "skipped" }));

        // Each succeeded slot ran the source once; no two runs of the source overlapped in time.
        var probes = await ProbesAsync();
        var succeeded = slots.Count(s => s.Status == "succeeded");
        Assert.Equal(succeeded, probes.Count);
        Assert.Equal(succeeded, (int)await db.ScalarAsync<long>($"SELECT count(*) FROM {schema}.schedule_runs WHERE status = 'succeeded'"));
        AssertNoOverlap(probes);
        Assert.Equal(0L, await db.ScalarAsync<long>($"SELECT count(*) FROM {schema}.schedule_runs WHERE status = 'running'"));
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "ingestion-multihost-result.txt"), Summary(slots, probes));
    }

    [Fact]
    public async Task A_host_killed_mid_run_leaves_a_claim_another_host_retries_without_overlap()
    {
        const string schema = "sched_kill";
        await CreateProbeTableAsync("sched_probe");
        // host-1 starts first and is killed inside a long run, once the two other hosts are up: while its claim is
        // renewed their slots are skipped as overlapping; when it expires one of them retries the slot.
        var victim = HostProcess.Start(db.ConnectionString, schema, "host-1", seconds: 120, workMs: 60_000, attempts: 2, leaseMs: 1500);
        var others = new List<HostProcess>();
        DateTime killedAt;
        try
        {
            await victim.Ready;
            var until = DateTime.UtcNow.AddSeconds(60);
            while (await db.ScalarAsync<long>("SELECT count(*) FROM public.sched_probe WHERE host = 'host-1'") == 0)
            {
                Assert.True(DateTime.UtcNow < until, "host-1 never started a run");
                await Task.Delay(20);
            }

            others.AddRange(Enumerable.Range(2, 2).Select(i => HostProcess.Start(db.ConnectionString, schema, $"host-{i}", seconds: 8, workMs: 300, attempts: 2, leaseMs: 1500)));
            await Task.WhenAll(others.Select(h => h.Ready));
            Assert.False(victim.Process.HasExited);
            victim.Process.Kill(entireProcessTree: true);
            await victim.Process.WaitForExitAsync();
            killedAt = await db.ScalarAsync<DateTime>("SELECT clock_timestamp()");
            await Task.WhenAll(others.Select(h => h.ExitAsync(TimeSpan.FromSeconds(120))));
        }
        finally
        {
            victim.Dispose();
            others.ForEach(h => h.Dispose());
        }

        // The killed run's attempt is abandoned and the slot has a final outcome recorded by another host.
        var abandoned = await db.ScalarAsync<long>($"SELECT count(*) FROM {schema}.schedule_runs WHERE host = 'host-1' AND status = 'abandoned'");
        Assert.Equal(1L, abandoned);
        var outcome = await db.ScalarAsync<string>($"""
            SELECT s.status || ' by ' || s.host || ' attempt ' || s.attempt FROM {schema}.schedule_slots s
            JOIN {schema}.schedule_runs r ON r.schedule = s.schedule AND r.slot_time = s.slot_time AND r.status = 'abandoned'
            """);
        // Superseded when the retry found the source busy with a newer slot's live run on the other host (issue 14 §6):
        // then its error names that run.
        Assert.Matches("^(succeeded|failed|superseded) by host-[23] attempt 2$", outcome);
        if (outcome.StartsWith("superseded", StringComparison.Ordinal))
        {
            var error = await db.ScalarAsync<string>($"SELECT error FROM {schema}.schedule_runs WHERE status = 'superseded'");
            Assert.Matches("^superseded: source '.+' is being run for the newer slot .+ by host 'host-[23]'", error);
        }

        Assert.Equal(0L, await db.ScalarAsync<long>($"SELECT count(*) FROM {schema}.schedule_slots WHERE status = 'running'"));

        // Nothing ran concurrently: the killed run counts as running until the kill.
        var probes = (await ProbesAsync()).Select(p => p.Finished is null ? p with { Finished = new DateTimeOffset(DateTime.SpecifyKind(killedAt, DateTimeKind.Utc)) } : p).ToList();
        AssertNoOverlap(probes);
    }

    private static void AssertNoOverlap(List<ProbeRow> probes)
    {
        var ordered = probes.OrderBy(p => p.Started).ToList();
        for (var i = 1; i < ordered.Count; i++)
        {
            Assert.True(ordered[i].Started >= ordered[i - 1].Finished, $"run on {ordered[i].Host} started at {ordered[i].Started:O} before the run on {ordered[i - 1].Host} finished at {ordered[i - 1].Finished:O}");
        }
    }

    private static string Summary(List<(DateTimeOffset Slot, string Status, string Host)> slots, List<ProbeRow> probes)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{slots.Count} slots from {slots[0].Slot:HH:mm:ss} to {slots[^1].Slot:HH:mm:ss}, each claimed once; {probes.Count} runs, none overlapping");
        foreach (var g in slots.GroupBy(s => (s.Host, s.Status)).OrderBy(g => g.Key.Host))
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {g.Key.Host}: {g.Count()} {g.Key.Status}");
        }

        return sb.ToString();
    }

    private async Task CreateProbeTableAsync(string name = "sched_probe")
    {
        await db.ExecuteAsync($"DROP TABLE IF EXISTS public.{name}; CREATE TABLE public.{name} (run_id uuid PRIMARY KEY, host text NOT NULL, started_at timestamptz NOT NULL, finished_at timestamptz)");
    }

    private async Task<List<(DateTimeOffset Slot, string Status, string Host)>> SlotsAsync(string schema)
    {
        var list = new List<(DateTimeOffset, string, string)>();
        await using var cmd = db.DataSource.CreateCommand($"SELECT slot_time, status, host FROM {schema}.schedule_slots WHERE trigger = 'schedule' ORDER BY slot_time");
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            list.Add((r.GetFieldValue<DateTimeOffset>(0), r.GetString(1), r.GetString(2)));
        }

        return list;
    }

    private async Task<List<ProbeRow>> ProbesAsync()
    {
        var list = new List<ProbeRow>();
        await using var cmd = db.DataSource.CreateCommand("SELECT host, started_at, finished_at FROM public.sched_probe");
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            list.Add(new ProbeRow(r.GetString(0), r.GetFieldValue<DateTimeOffset>(1), r.IsDBNull(2) ? null : r.GetFieldValue<DateTimeOffset>(2)));
        }

        return list;
    }

    private sealed record ProbeRow(string Host, DateTimeOffset Started, DateTimeOffset? Finished);

    private sealed class HostProcess : IDisposable
    {
        private readonly StringBuilder _output = new();
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private HostProcess(Process process) => Process = process;

        public Process Process { get; }

        public Task Ready => _ready.Task.WaitAsync(TimeSpan.FromSeconds(90));

        public static HostProcess Start(string conn, string schema, string name, int seconds, int workMs, int attempts, int leaseMs)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Ingestion.Scheduling.TestHost.dll"), conn, schema, name, Str(seconds), Str(workMs), Str(attempts), Str(leaseMs) })
            {
                psi.ArgumentList.Add(a);
            }

            var h = new HostProcess(new Process { StartInfo = psi, EnableRaisingEvents = true });
            h.Process.OutputDataReceived += (_, e) =>
            {
                if (e.Data == "ready")
                {
                    h._ready.TrySetResult();
                }
                else if (e.Data is not null)
                {
                    h.Append(e.Data);
                }
            };
            h.Process.ErrorDataReceived += (_, e) => h.Append(e.Data);
            h.Process.Exited += (_, _) => h._ready.TrySetException(new InvalidOperationException($"Host {name} exited with {h.Process.ExitCode} before it was ready: {h.Output}"));
            h.Process.Start();
            h.Process.BeginOutputReadLine();
            h.Process.BeginErrorReadLine();
            return h;
        }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public async Task ExitAsync(TimeSpan timeout)
        {
            await Process.WaitForExitAsync().WaitAsync(timeout);
            Assert.True(Process.ExitCode == 0, $"host exited with {Process.ExitCode}: {Output}");
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
            }

            Process.Dispose();
        }

        private static string Str(int i) => i.ToString(CultureInfo.InvariantCulture);

        private void Append(string? line)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
