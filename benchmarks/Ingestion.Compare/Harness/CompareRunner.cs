using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using Npgsql;

namespace Ingestion.Compare.Harness;

/// <summary>Runs the selected cases against a throwaway database and prints one line per case, then the goals.</summary>
public static class CompareRunner
{
    private const long WarmUpRows = 50_000;
    private const int MaxWarmUpPasses = 14;
    private const long SteadyJitMethods = 20;

    /// <summary>Runs the comparison.</summary>
    /// <param name="args">The command line.</param>
    /// <param name="output">Where the result lines go.</param>
    /// <param name="errors">Where usage and failures go.</param>
    /// <param name="cancellationToken">Stops the run.</param>
    /// <returns>0 when every case ran and verified (missed goals do not fail the run), 1 when a case failed, 2 for a bad command line or no server.</returns>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, TextWriter errors, CancellationToken cancellationToken)
    {
        CompareOptions options;
        try
        {
            options = CompareOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            await errors.WriteLineAsync($"compare: {e.Message}");
            await errors.WriteLineAsync(CompareOptions.Usage);
            return 2;
        }

        if (options.Help)
        {
            await output.WriteLineAsync(CompareOptions.Usage);
            return 0;
        }

        var cases = CaseRegistry.All();
        if (options.List)
        {
            foreach (var c in cases)
            {
                await output.WriteLineAsync(c.Name);
            }

            return 0;
        }

        if (options.Cases is { } wanted)
        {
            var unknown = wanted.Where(w => cases.All(c => c.Name != w)).ToList();
            if (unknown.Count > 0)
            {
                await errors.WriteLineAsync($"compare: unknown case(s) {string.Join(", ", unknown)}; known: {string.Join(", ", cases.Select(c => c.Name))}");
                return 2;
            }

            cases = cases.Where(c => wanted.Contains(c.Name)).ToList();
        }

        var server = new[] { options.Connection, Environment.GetEnvironmentVariable("INGESTION_TEST_PG"), Environment.GetEnvironmentVariable("INGESTION_PG") }
            .FirstOrDefault(s => !string.IsNullOrWhiteSpace(s));
        if (server is null)
        {
            await errors.WriteLineAsync("compare: no PostgreSQL: pass --connection, set INGESTION_TEST_PG or INGESTION_PG, or use benchmarks/compare.sh, which starts one.");
            return 2;
        }

        var database = $"ingestion_bench_{Guid.NewGuid():N}"[..32];
        var workDirectory = Directory.CreateTempSubdirectory("ingestion-bench-").FullName;
        var builder = new NpgsqlConnectionStringBuilder(server);
        try
        {
            await using (var admin = new NpgsqlConnection(builder.ConnectionString))
            {
                await admin.OpenAsync(cancellationToken);
                await using var create = new NpgsqlCommand($"CREATE DATABASE \"{database}\"", admin);
                await create.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        catch (NpgsqlException e)
        {
            await errors.WriteLineAsync($"compare: cannot create the benchmark database on {builder.Host}:{builder.Port}: {e.Message}");
            Directory.Delete(workDirectory, recursive: true);
            return 2;
        }

        var benchBuilder = new NpgsqlConnectionStringBuilder(builder.ConnectionString) { Database = database, CommandTimeout = 0 };
        var failed = 0;
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(benchBuilder.ConnectionString);
            var context = new CaseContext(options, benchBuilder.ConnectionString, dataSource, workDirectory);
            await PrintMachineAsync(output, context, cancellationToken);
            var states = cases.Select(c => new CaseState(c)).ToList();
            foreach (var state in states)
            {
                cancellationToken.ThrowIfCancellationRequested();
                await WarmUpCaseAsync(state, context, errors, cancellationToken);
            }

            // Round after round, each case once per round: a slow spell of the machine (±15-30% run to run here)
            // then lands on neighbouring runs of the cases compared, not on every run of one case.
            for (var round = 1; round <= options.Repeat; round++)
            {
                foreach (var state in states.Where(s => !s.Failed))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    await RunRoundAsync(state, round, context, errors, cancellationToken);
                }
            }

            var results = new List<CaseResult>();
            foreach (var state in states)
            {
                if (state.Failed)
                {
                    failed++;
                    await output.WriteLineAsync($"case={state.Case.Name} error={state.Error}");
                }
                else
                {
                    // The median time stands for the case, with the highest peak of its runs.
                    var median = state.Runs.OrderBy(x => x.Seconds).ElementAt(state.Runs.Count / 2);
                    var result = median with { PeakWorkingSetBytes = state.Runs.Max(x => x.PeakWorkingSetBytes) };
                    results.Add(result);
                    await output.WriteLineAsync(Format(result));
                }

                foreach (var note in state.Notes.Distinct(StringComparer.Ordinal))
                {
                    await output.WriteLineAsync($"# {state.Case.Name}: {note}");
                }
            }

            await PrintGoalsAsync(output, states, cases, cancellationToken);
            await output.WriteLineAsync($"# loadavg at end: {LoadAverage()}");
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            try
            {
                await using var admin = new NpgsqlConnection(builder.ConnectionString);
                await admin.OpenAsync(CancellationToken.None);
                await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)", admin);
                await drop.ExecuteNonQueryAsync(CancellationToken.None);
            }
            catch (NpgsqlException e)
            {
                await errors.WriteLineAsync($"compare: could not drop database {database}: {e.Message}");
            }

            Directory.Delete(workDirectory, recursive: true);
        }

        return failed == 0 ? 0 : 1;
    }

    private static async Task WarmUpCaseAsync(CaseState state, CaseContext context, TextWriter errors, CancellationToken cancellationToken)
    {
        var c = state.Case;
        context.ClearNotes();
        try
        {
            state.WarmUps = c.WarmsUp ? await WarmUpAsync(c, context, cancellationToken) : 0;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            state.Fail(e);
            await errors.WriteLineAsync($"compare: case {c.Name} failed while warming up: {e}");
        }

        state.Notes.AddRange(context.Notes);
    }

    private static async Task RunRoundAsync(CaseState state, int round, CaseContext context, TextWriter errors, CancellationToken cancellationToken)
    {
        var c = state.Case;
        context.ClearNotes();
        try
        {
            await c.SetUpAsync(context, cancellationToken);
            await SettleAsync(context, cancellationToken);
            var jitMethods = JitInfo.GetCompiledMethodCount();
            var jitTime = JitInfo.GetCompilationTime();
            var cpu = CpuMeter.Start();
            using var peak = c.MeasuresMemory ? PeakWorkingSet.Start() : null;
            var gc = GcMeter.Start();
            var watch = Stopwatch.StartNew();
            var count = await c.RunAsync(context, cancellationToken);
            watch.Stop();
            var peakBytes = peak?.Stop();
            var used = cpu.Stop();
            var run = context.Options.Repeat > 1 ? $"round {round}: " : string.Empty;
            context.Note(string.Create(CultureInfo.InvariantCulture, $"{run}{watch.Elapsed.TotalSeconds:0.000} s; cpu {used}; {gc.Stop()}; jit {JitInfo.GetCompiledMethodCount() - jitMethods} methods, {(JitInfo.GetCompilationTime() - jitTime).TotalMilliseconds:0} ms (after {state.WarmUps} warm-up passes of up to {WarmUpRows} rows)"));
            await c.VerifyAsync(context, cancellationToken);
            state.Runs.Add(new CaseResult(c.Name, c.Unit, count, watch.Elapsed.TotalSeconds, peakBytes));
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            state.Fail(e);
            await errors.WriteLineAsync($"compare: case {c.Name} failed in round {round}: {e}");
        }
        finally
        {
            try
            {
                await c.TearDownAsync(context, CancellationToken.None);
            }
            catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException)
            {
                await errors.WriteLineAsync($"compare: tear-down of {c.Name} failed: {e.Message}");
            }
        }

        state.Notes.AddRange(context.Notes);
    }

    /// <summary>Formats a result line: <c>case=&lt;name&gt; rows=&lt;n&gt; seconds=&lt;s&gt; rows_per_s=&lt;r&gt;</c> [<c>peak_ws_mb=&lt;m&gt;</c>].</summary>
    /// <param name="r">The result.</param>
    /// <returns>The line.</returns>
    public static string Format(CaseResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var line = string.Create(CultureInfo.InvariantCulture, $"case={r.Name} {r.Unit}={r.Count} seconds={r.Seconds:0.000} {r.Unit}_per_s={r.Rate:0}");
        return r.PeakWorkingSetBytes is { } b ? string.Create(CultureInfo.InvariantCulture, $"{line} peak_ws_mb={b / (1024.0 * 1024.0):0}") : line;
    }

    /// <summary>
    /// Prints each goal's ratio of rates, then each reference ratio whose two cases ran. With several rounds the ratio is
    /// the median of the rounds' own ratios (each case against its baseline's run of the same round), each round's ratio
    /// in a note.
    /// </summary>
    private static async Task PrintGoalsAsync(TextWriter output, IReadOnlyList<CaseState> states, IReadOnlyList<CompareCase> ran, CancellationToken cancellationToken)
    {
        var ratios = CaseRegistry.Goals.Select(g => (g.Case, Baseline: g.Baseline, Minimum: (double?)g.Minimum))
            .Concat(CaseRegistry.References.Select(r => (r.Case, Baseline: r.Reference, Minimum: (double?)null)));
        foreach (var (name, baselineName, minimum) in ratios)
        {
            if (ran.All(c => c.Name != name) || (minimum is null && ran.All(c => c.Name != baselineName)))
            {
                continue;
            }

            var prefix = string.Create(CultureInfo.InvariantCulture, $"ratio {name}/{baselineName}");
            var verdict = minimum is { } min ? string.Create(CultureInfo.InvariantCulture, $"goal>={min:0.00}") : "reference (no goal)";
            var measured = states.FirstOrDefault(s => s.Case.Name == name);
            var baseline = states.FirstOrDefault(s => s.Case.Name == baselineName);
            string line;
            string? rounds = null;
            if (measured is null || measured.Failed)
            {
                line = $"{prefix}=n/a {verdict}{(minimum is null ? string.Empty : " MISS")} ({name} failed)";
            }
            else if (baseline is null || baseline.Failed)
            {
                line = $"{prefix}=n/a {verdict}{(minimum is null ? string.Empty : " SKIP")} ({baselineName} {(baseline is null ? "not run" : "failed")})";
            }
            else
            {
                var perRound = measured.Runs.Zip(baseline.Runs, (m, b) => b.Rate > 0 ? m.Rate / b.Rate : 0).ToList();
                var ratio = Median(perRound);
                line = string.Create(CultureInfo.InvariantCulture, $"{prefix}={ratio:0.00} {verdict}{(minimum is { } m ? ratio >= m ? " PASS" : " MISS" : string.Empty)}");
                if (perRound.Count > 1)
                {
                    rounds = string.Create(CultureInfo.InvariantCulture, $"# {name}/{baselineName} by round: {string.Join(' ', perRound.Select(r => r.ToString("0.00", CultureInfo.InvariantCulture)))} (median {ratio:0.00})");
                }
            }

            await output.WriteLineAsync(line.AsMemory(), cancellationToken);
            if (rounds is not null)
            {
                await output.WriteLineAsync(rounds.AsMemory(), cancellationToken);
            }
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static async Task PrintMachineAsync(TextWriter output, CaseContext context, CancellationToken cancellationToken)
    {
        var pg = await context.ScalarAsync<string>("SHOW server_version", cancellationToken);
        var memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024);
        await output.WriteLineAsync(string.Create(
            CultureInfo.InvariantCulture,
            $"# machine: nproc={Environment.ProcessorCount} memory_gib={memory:0.0} postgres={pg.Split(' ')[0]} dotnet={Environment.Version} os={System.Runtime.InteropServices.RuntimeInformation.OSDescription}"));
        await output.WriteLineAsync($"# rows={context.Rows} loadavg at start: {LoadAverage()}");
    }

    /// <summary>
    /// Runs untimed passes until the code the case runs is compiled at its final tier: the runtime compiles hot
    /// methods again in the background (tiered compilation, dynamic PGO), and a compile queue still draining
    /// when the timer starts would take a core from the case (and from PostgreSQL) on a 2-core machine. A pass
    /// that compiles fewer than <see cref="SteadyJitMethods"/> methods ends the warm-up.
    /// </summary>
    private static async Task<int> WarmUpAsync(CompareCase c, CaseContext context, CancellationToken cancellationToken)
    {
        var warm = context.WarmUp(WarmUpRows);
        var passes = 0;
        while (passes < MaxWarmUpPasses)
        {
            var before = JitInfo.GetCompiledMethodCount();
            try
            {
                await c.SetUpAsync(warm, cancellationToken);
                await c.RunAsync(warm, cancellationToken);
                await c.VerifyAsync(warm, cancellationToken);
            }
            finally
            {
                await c.TearDownAsync(warm, CancellationToken.None);
            }

            passes++;

            // Give the background compiler time to pick up what the pass made hot, then look at what it did.
            await Task.Delay(TimeSpan.FromMilliseconds(300), cancellationToken);
            if (passes > 1 && JitInfo.GetCompiledMethodCount() - before < SteadyJitMethods)
            {
                break;
            }
        }

        return passes;
    }

    private static async Task SettleAsync(CaseContext context, CancellationToken cancellationToken)
    {
        // Start every case from the same place: no garbage of the previous case, no dirty pages waiting
        // for a checkpoint that would land in the middle of the timed part.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        try
        {
            await context.ExecuteAsync("CHECKPOINT", cancellationToken);
        }
        catch (PostgresException)
        {
            // Not allowed for this role: the case runs without it.
        }
    }

    private static string LoadAverage()
    {
        try
        {
            return File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
        }
        catch (IOException)
        {
            return "n/a";
        }
    }

    /// <summary>One case's progress through the rounds: its warm-up passes, timed runs, notes, and the first failure.</summary>
    private sealed class CaseState(CompareCase c)
    {
        public CompareCase Case { get; } = c;

        public int WarmUps { get; set; }

        public List<CaseResult> Runs { get; } = [];

        public List<string> Notes { get; } = [];

        public string? Error { get; private set; }

        public bool Failed => Error is not null;

        public void Fail(Exception e) => Error ??= e.GetType().Name;
    }
}
