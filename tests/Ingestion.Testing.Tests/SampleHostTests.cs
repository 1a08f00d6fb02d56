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

    private async Task<(int ExitCode, string Output)> RunSampleAsync(params string[] args)
    {
        var root = Packaging.PackagingTests.RepoRoot();
        var dll = Path.Combine(root, "samples", "Ingestion.Sample.Host", "bin", "Release", "net10.0", "Ingestion.Sample.Host.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution in Release first (scripts/test.sh does).");
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["INGESTION_PG"] = database.ConnectionString;
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
