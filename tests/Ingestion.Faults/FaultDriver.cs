using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace Ingestion.Faults;

/// <summary>
/// Runs the crash matrix: for each fault kind, rounds of a first load of the "faults" source into a fresh database with
/// faults injected, then a run to completion, then the checks of <see cref="RoundChecks"/>. Prints one line per kind
/// and the summary line; exits 1 when any check found a problem.
/// </summary>
internal static class FaultDriver
{
    public static async Task<int> RunAsync(long rows, int kills, int seed)
    {
        var admin = Environment.GetEnvironmentVariable("INGESTION_TEST_PG")
            ?? throw new InvalidOperationException("INGESTION_TEST_PG is not set: run scripts/faults.sh, which starts a throwaway PostgreSQL.");
        var random = new Random(seed);
        var canary = $"CANARY{Guid.NewGuid():N}";
        var kinds = new FaultKind[]
        {
            new("kill -9 at a random moment", r => KillAsync(r, random, Trigger.Random)),
            new("kill -9 during COPY", r => KillAsync(r, random, Trigger.Copy)),
            new("kill -9 inside a batch transaction", r => KillAsync(r, random, Trigger.InTransaction)),
            new("kill -9 during the key build", r => KillAsync(r, random, Trigger.KeyBuild)),
            new("kill -9 at a random moment, load past the key index", r =>
            {
                r.KeyIndexMaxRows = (int)(r.Rows / 3);
                return KillAsync(r, random, Trigger.Random);
            }),
            new("kill -9 during an unchanged re-run", r => KillDuringRereadAsync(r, random)),
            new("kill -9 during a re-run that changes every row", r => KillDuringChangingRerunAsync(r, random)),
            new("terminate the data connection", r => TerminateDataAsync(r)),
            new("terminate the lock connection, second host", r => TerminateLockAsync(r)),
            new("immediate server restart", r => RestartAsync(r, random)),
            new("two hosts at once", r => TwoHostsAsync(r, random)),
        };
        var perKind = Math.Max(1, (int)Math.Ceiling(kills / (double)kinds.Length));
        var total = new Tally();
        var roundNumber = 0;
        foreach (var kind in kinds)
        {
            var tally = new Tally();
            var rounds = 0;
            while (tally.Faults < perKind && rounds < perKind * 3)
            {
                rounds++;
                await using var round = await Round.CreateAsync(admin, ++roundNumber, rows, canary);
                tally.Faults += await kind.Inject(round);
                if (!await round.CompleteAsync())
                {
                    tally.Incomplete++;
                }

                await RoundChecks.CheckAsync(round, tally);
            }

            Console.WriteLine($"{kind.Name}: {tally.Faults} faults in {rounds} rounds; {tally}");
            total.Add(tally);
        }

        Console.WriteLine($"faults: {total.Faults} kills, {total.Lost} lost, {total.Duplicated} duplicated, {total.Ahead} ahead, {total.Stuck} stuck jobs, {total.Leaked} leaked secrets");
        if (total.Problems > 0)
        {
            Console.WriteLine($"faults: FAILED ({total})");
            return 1;
        }

        return 0;
    }

    private enum Trigger
    {
        Random,
        Copy,
        InTransaction,
        KeyBuild,
    }

    /// <summary>Kills hosts (up to three times in a round) when the trigger is seen; returns the kills done.</summary>
    private static async Task<int> KillAsync(Round round, Random random, Trigger trigger)
    {
        var done = 0;
        for (var i = 0; i < 3; i++)
        {
            var host = round.StartHost("host-k", keepAliveMs: 1000);
            var fired = trigger switch
            {
                Trigger.Random => await WaitOrExitAsync(host, Task.Delay(random.Next(200, 3500))),
                Trigger.Copy => await WaitOrExitAsync(host, round.WaitForQueryAsync("state = 'active' AND query ILIKE 'COPY %'", host.Exited)),
                Trigger.InTransaction => await WaitOrExitAsync(host, round.WaitForQueryAsync("state = 'idle in transaction'", host.Exited)),
                _ => await WaitOrExitAsync(host, round.WaitForQueryAsync("state = 'active' AND query ILIKE '%ADD PRIMARY KEY%'", host.Exited)),
            };
            if (!fired)
            {
                break; // the load finished before the moment came
            }

            host.Kill();
            await host.Exited;
            done++;
            await RoundChecks.CheckNotAheadAsync(round);
        }

        return done;
    }

    /// <summary>
    /// Loads the source, then kills hosts that read every row again, 0-0.8 s after each starts reading the table's keys:
    /// batches that write nothing defer their commit (QuietBatchCommitInterval), so a kill lands between deferred
    /// batches; the final run resumes incrementally.
    /// </summary>
    private static async Task<int> KillDuringRereadAsync(Round round, Random random)
    {
        if (!await round.CompleteAsync())
        {
            return 0;
        }

        round.FullRefresh = true;
        try
        {
            // Killed a moment after the host starts reading the table's keys (its first batch), while it re-reads.
            return await KillRerunsAsync(round, random, "host-u", "state = 'active' AND query ILIKE 'COPY (SELECT%'");
        }
        finally
        {
            round.FullRefresh = false;
        }
    }

    /// <summary>
    /// The load completed, then the source's next version (every value changed) read from the start: killed a moment
    /// after the host's first merge began (batches of changed rows may be merged ahead on its second connection), three
    /// times; each later host resumes from the saved cursor, so a checkpoint ahead of its updates leaves old values.
    /// </summary>
    private static async Task<int> KillDuringChangingRerunAsync(Round round, Random random)
    {
        if (!await round.CompleteAsync())
        {
            return 0;
        }

        round.Version = 1;
        await round.ScalarAsync<int>("WITH s AS (UPDATE ingestion.source_state SET cursor = NULL WHERE source = 'faults' RETURNING 1) SELECT count(*)::int FROM s");
        return await KillRerunsAsync(round, random, "host-c", "query ILIKE 'UPDATE %\"fault_items\"%'");
    }

    /// <summary>Up to three times: starts a host, kills it 0-0.8 s after one of its backends matches <paramref name="query"/>, and checks the checkpoint; gives the kills.</summary>
    private static async Task<int> KillRerunsAsync(Round round, Random random, string hostName, string query)
    {
        var done = 0;
        for (var i = 0; i < 3; i++)
        {
            var host = round.StartHost(hostName, keepAliveMs: 1000);
            if (!await WaitOrExitAsync(host, round.WaitForQueryAsync(query, host.Exited))
                || !await WaitOrExitAsync(host, Task.Delay(random.Next(0, 800))))
            {
                break; // the re-run finished first
            }

            host.Kill();
            await host.Exited;
            done++;
            await RoundChecks.CheckNotAheadAsync(round);
        }

        return done;
    }

    private static async Task<int> TerminateDataAsync(Round round)
    {
        var host = round.StartHost("host-t", keepAliveMs: 1000);
        var fired = await WaitOrExitAsync(host, round.WaitForQueryAsync("state = 'active' AND query ILIKE 'COPY %'", host.Exited));
        if (fired)
        {
            await round.TerminateAsync("state = 'active' AND query ILIKE 'COPY %'");
        }

        await host.Exited;
        await RoundChecks.CheckNotAheadAsync(round);
        return fired ? 1 : 0;
    }

    /// <summary>The lock connection of host A dies while A is writing; host B starts at once. A must be fenced.</summary>
    private static async Task<int> TerminateLockAsync(Round round)
    {
        var a = round.StartHost("host-a", keepAliveMs: 60_000);
        var fired = await WaitOrExitAsync(a, round.WaitForQueryAsync("state = 'active' AND query ILIKE 'COPY %'", a.Exited));
        if (!fired)
        {
            return 0;
        }

        await round.TerminateLockHolderAsync();
        var b = round.StartHost("host-b", keepAliveMs: 1000);
        await Task.WhenAll(a.Exited, b.Exited);
        await RoundChecks.CheckNotAheadAsync(round);
        return 1;
    }

    private static async Task<int> RestartAsync(Round round, Random random)
    {
        var host = round.StartHost("host-r", keepAliveMs: 1000);
        if (!await WaitOrExitAsync(host, Task.Delay(random.Next(500, 3000))))
        {
            return 0;
        }

        await PgControl.RestartImmediateAsync();
        await host.Exited;
        await RoundChecks.CheckNotAheadAsync(round);
        return 1;
    }

    private static async Task<int> TwoHostsAsync(Round round, Random random)
    {
        var a = round.StartHost("host-1", keepAliveMs: 1000);
        var b = round.StartHost("host-2", keepAliveMs: 1000);
        var faults = 1;
        if (random.Next(2) == 0 && await WaitOrExitAsync(a, Task.Delay(random.Next(300, 3000))))
        {
            a.Kill();
            faults++;
        }

        await Task.WhenAll(a.Exited, b.Exited);
        await RoundChecks.CheckNotAheadAsync(round);
        return faults;
    }

    /// <summary>Waits for <paramref name="moment"/>; <see langword="false"/> when the host exited first.</summary>
    private static async Task<bool> WaitOrExitAsync(HostProcess host, Task moment)
    {
        var first = await Task.WhenAny(moment, host.Exited);
        return first == moment && !host.Exited.IsCompleted && (moment is not Task<bool> seen || seen.Result);
    }

    private sealed record FaultKind(string Name, Func<Round, Task<int>> Inject);
}

/// <summary>Counts of one fault kind (or of all).</summary>
internal sealed class Tally
{
    public int Faults { get; set; }

    public long Lost { get; set; }

    public long Duplicated { get; set; }

    public long Ahead { get; set; }

    public long Stuck { get; set; }

    public long Leaked { get; set; }

    public long NoKey { get; set; }

    public long BadCounts { get; set; }

    public long Incomplete { get; set; }

    public long Problems => Lost + Duplicated + Ahead + Stuck + Leaked + NoKey + BadCounts + Incomplete;

    public void Add(Tally t)
    {
        Faults += t.Faults;
        Lost += t.Lost;
        Duplicated += t.Duplicated;
        Ahead += t.Ahead;
        Stuck += t.Stuck;
        Leaked += t.Leaked;
        NoKey += t.NoKey;
        BadCounts += t.BadCounts;
        Incomplete += t.Incomplete;
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"lost {Lost}, duplicated {Duplicated}, ahead {Ahead}, stuck jobs {Stuck}, counts not adding up {BadCounts}, tables without key {NoKey}, never completed {Incomplete}, leaked secrets {Leaked}");
}

/// <summary>Restarts the throwaway server the way a crash would (<c>pg_ctl restart -m immediate</c>).</summary>
internal static class PgControl
{
    public static async Task RestartImmediateAsync()
    {
        var bin = Environment.GetEnvironmentVariable("PG_BIN") ?? throw new InvalidOperationException("PG_BIN is not set (scripts/pg.sh sets it).");
        var data = Path.Combine(Environment.GetEnvironmentVariable("PG_WORK_DIR") ?? throw new InvalidOperationException("PG_WORK_DIR is not set."), "data");
        var asRoot = Environment.UserName == "root";
        var psi = new ProcessStartInfo(asRoot ? "runuser" : Path.Combine(bin, "pg_ctl")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (asRoot ? ["-u", "postgres", "--", Path.Combine(bin, "pg_ctl")] : Array.Empty<string>()).Concat(["-D", data, "-m", "immediate", "-w", "-t", "60", "restart"]))
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"pg_ctl restart failed: {await p.StandardError.ReadToEndAsync()}");
        }

        NpgsqlConnection.ClearAllPools();
    }
}
