using System.Diagnostics;
using Ingestion.TestSupport;

namespace Ingestion.Testing.Tests;

/// <summary>
/// The README's main job, end to end: the sample host's <c>run</c> command ingests every bundled source into a fresh
/// PostgreSQL database, and a second run finds nothing new. Catches a sample source that no longer works with the
/// library (a missing table, a changed option) before a user does.
/// </summary>
public sealed class SampleHostTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task The_sample_host_ingests_every_bundled_source_and_a_second_run_creates_nothing()
    {
        var first = await RunSampleAsync("run");
        Assert.True(first.ExitCode == 0, $"exit code {first.ExitCode}:\n{first.Output}");

        // Every source has a job, none failed, and the first run created rows.
        var sources = await database.ScalarAsync<long>("SELECT count(DISTINCT source) FROM ingestion.import_jobs");
        Assert.True(sources >= 11, $"only {sources} sources ran:\n{first.Output}");
        var failed = await database.ScalarAsync<string>("SELECT coalesce(string_agg(source || ': ' || coalesce(error, ''), '; '), '') FROM ingestion.import_jobs WHERE status = 'Failed'");
        Assert.True(failed.Length == 0, $"failed jobs: {failed}\n{first.Output}");
        Assert.True(await database.ScalarAsync<long>("SELECT sum(created) FROM ingestion.import_jobs") > 0);

        var second = await RunSampleAsync("run");
        Assert.True(second.ExitCode == 0, $"exit code {second.ExitCode}:\n{second.Output}");
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM ingestion.import_jobs WHERE status = 'Failed'"));
        var createdAgain = await database.ScalarAsync<string>("""
            SELECT coalesce(string_agg(source || '=' || created, ', '), '') FROM (
                SELECT DISTINCT ON (source) source, created FROM ingestion.import_jobs ORDER BY source, started_at DESC) last
            WHERE created <> 0
            """);
        Assert.True(createdAgain.Length == 0, $"the second run created rows again: {createdAgain}\n{second.Output}");
    }

    [Fact]
    public async Task An_unreachable_database_exits_non_zero_naming_the_setting_without_the_password()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var (exitCode, output) = await RunSampleOnAsync($"Host=127.0.0.1;Port={port};Username=ingest;Password=canary-pw-77d3;Database=tickets;Timeout=5", "run");
        Assert.True(exitCode == 2, $"exit code {exitCode} (2: bad configuration):\n{output}");
        Assert.Contains("Ingestion:Postgres:ConnectionString", output, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", output, StringComparison.Ordinal);
        Assert.DoesNotContain("canary-pw-77d3", output, StringComparison.Ordinal);
    }

    private Task<(int ExitCode, string Output)> RunSampleAsync(params string[] args) => RunSampleOnAsync(database.ConnectionString, args);

    /// <summary>Runs the built sample host with <c>INGESTION_PG</c> set to the connection string.</summary>
    internal static async Task<(int ExitCode, string Output)> RunSampleOnAsync(string connectionString, params string[] args)
    {
        var root = Packaging.Processes.RepoRoot();
        var dll = Path.Combine(root, "samples", "Ingestion.Sample.Host", "bin", "Release", "net10.0", "Ingestion.Sample.Host.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution in Release first (scripts/test.sh does).");
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["INGESTION_PG"] = connectionString;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the sample host did not finish within 3 minutes:\n{await stdout}\n{await stderr}");
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}

/// <summary>
/// <c>run-sample.sh</c> keeps its database between runs, so the sample must run on tables made by an older sample:
/// an ICS table with the old <c>start</c>/<c>end</c> columns (before <c>starts_at</c>/<c>ends_at</c>) is upgraded in
/// place, its rows kept, instead of failing every run of the source.
/// </summary>
public sealed class SampleHostUpgradeTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task A_calendar_table_from_an_older_sample_is_upgraded_and_keeps_its_rows()
    {
        await database.ExecuteAsync("""
            CREATE TABLE public.city_events (
                source text NOT NULL, source_id text NOT NULL, uid text NOT NULL, recurrence_id text, summary text,
                description text, location text, url text, status text, is_cancelled boolean NOT NULL,
                start timestamp with time zone NOT NULL, "end" timestamp with time zone NOT NULL,
                local_start timestamp without time zone NOT NULL, is_all_day boolean NOT NULL, is_floating boolean NOT NULL,
                time_zone text, is_recurring boolean NOT NULL, recurrence_rule text, categories jsonb NOT NULL, organizer text,
                sequence integer, last_modified timestamp with time zone, _ingestion_hash bigint,
                PRIMARY KEY (source, source_id));
            INSERT INTO public.city_events (source, source_id, uid, summary, is_cancelled, start, "end", local_start, is_all_day, is_floating, is_recurring, categories)
            VALUES ('city-events', 'old-row@example.org', 'old-row@example.org', 'Kept from the old sample', false,
                    '2026-01-15 14:00+00', '2026-01-15 16:00+00', '2026-01-15 09:00', false, false, false, '[]');
            """);

        var (exitCode, output) = await SampleHostTests.RunSampleOnAsync(database.ConnectionString, "run", "city-events");
        Assert.True(exitCode == 0, $"exit code {exitCode}:\n{output}");
        Assert.Equal("Succeeded", await database.ScalarAsync<string>("SELECT status FROM ingestion.import_jobs WHERE source = 'city-events'"));
        Assert.True(await database.ScalarAsync<long>("SELECT created FROM ingestion.import_jobs WHERE source = 'city-events'") > 0, output);
        Assert.Equal(
            "2026-01-15 14:00 2026-01-15 16:00",
            await database.ScalarAsync<string>("""
                SELECT to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' ' || to_char(ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
                FROM public.city_events WHERE source_id = 'old-row@example.org'
                """));
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM information_schema.columns WHERE table_name = 'city_events' AND column_name IN ('start', 'end')"));
    }
}
