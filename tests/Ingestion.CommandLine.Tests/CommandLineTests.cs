using System.CommandLine;
using Ingestion.Postgres.Hosting;
using Ingestion.Hosting;
using Ingestion.Stores;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.CommandLine.Tests;

/// <summary>The command line against a real PostgreSQL: exit codes, the plain (non-terminal) output, help, host commands.</summary>
public sealed class CommandLineTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task Run_succeeds_with_exit_code_0_and_plain_parseable_lines_without_escape_codes()
    {
        using var host = TestHost.Build(db, b => b.Items("cli-good", 12));
        var (code, output, error) = await TestHost.RunAsync(host, "run", "cli-good", "--requested-by", "ops-team");

        Assert.True(code == ExitCodes.Success, $"{code}: {output}{error}");
        Assert.DoesNotContain('\u001b', output);
        var result = Assert.Single(output.Split('\n'), l => l.StartsWith("result ", StringComparison.Ordinal));
        Assert.Contains("source=cli-good status=Succeeded", result, StringComparison.Ordinal);
        Assert.Contains("read=12 created=12", result, StringComparison.Ordinal);
        Assert.Contains("summary sources=1 failed=0 exit=0", output, StringComparison.Ordinal);
        Assert.Equal(12L, await db.ScalarAsync<long>("SELECT count(*) FROM cli_good"));
        Assert.Equal("cli ops-team", await db.ScalarAsync<string>("SELECT trigger || ' ' || requested_by FROM ingestion.import_jobs WHERE source = 'cli-good'"));
    }

    [Fact]
    public async Task A_failed_source_gives_exit_code_1_and_the_others_still_run()
    {
        using var host = TestHost.Build(db, b => b
            .Items("cli-fine", 3)
            .AddSource("cli-broken", _ => new ItemSource((c, ct) => ItemSource.Failing(c, ct)), o =>
            {
                o.Table = "cli_broken";
                o.CreateTable = true;
                o.MaxRetryAttempts = 0;
            }));
        var (code, output, _) = await TestHost.RunAsync(host, "run", "cli-broken", "cli-fine");

        Assert.Equal(ExitCodes.Failed, code);
        Assert.Contains("source=cli-broken status=Failed", output, StringComparison.Ordinal);
        Assert.Contains("error=\"IngestionException: Source 'cli-broken': the feed is broken at record 2. (at record 2)\"", output, StringComparison.Ordinal);
        Assert.Contains("source=cli-fine status=Succeeded", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rejected_records_beyond_the_budget_fail_the_run_with_exit_code_1_within_it_exit_code_0()
    {
        // A host runs one command line: a fresh host per run, as per process.
        void Configure(IIngestionBuilder b) => b
            .Items("cli-over-budget", 10, rejected: [3, 7], maxRejected: 1)
            .Items("cli-within-budget", 10, rejected: [3, 7], maxRejected: 2);
        using var first = TestHost.Build(db, Configure);
        using var second = TestHost.Build(db, Configure);
        var over = await TestHost.RunAsync(first, "run", "cli-over-budget");
        var within = await TestHost.RunAsync(second, "run", "cli-within-budget");

        Assert.Equal(ExitCodes.Failed, over.ExitCode);
        Assert.Contains("status=Failed", over.Output, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Success, within.ExitCode);
        Assert.Contains("status=PartiallySucceeded", within.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("run", "no-such-source")]
    [InlineData("run", "--parallel", "0")]
    [InlineData("run", "--no-such-option")]
    [InlineData("no-such-command")]
    [InlineData("jobs", "--status", "Sideways")]
    [InlineData("state", "cli-args", "--reset", "--set-cursor", "5")]
    [InlineData("job", "not-a-guid")]
    public async Task Bad_arguments_give_exit_code_2_with_a_message_and_run_nothing(params string[] args)
    {
        using var host = TestHost.Build(db, b => b.Items("cli-args", 2));
        var (code, output, error) = await TestHost.RunAsync(host, args);

        Assert.True(code == ExitCodes.BadArguments, $"{code}: {output}{error}");
        Assert.False(string.IsNullOrWhiteSpace(error));
        Assert.DoesNotContain("result ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_configuration_gives_exit_code_2_naming_the_setting()
    {
        using var host = TestHost.Build(db, b => b.AddSource("cli-bad-config", _ => new ItemSource((c, ct) => ItemSource.Items(c, 1, ct: ct)), o => o.BatchSize = 0));
        var (code, _, error) = await TestHost.RunAsync(host, "run", "cli-bad-config");

        Assert.Equal(ExitCodes.BadArguments, code);
        Assert.Contains("Ingestion:Sources:cli-bad-config:BatchSize must be positive", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_run_lock_held_by_another_run_gives_exit_code_3()
    {
        // The lock is taken by another host of the same database (a PostgreSQL advisory lock).
        using var other = TestHost.Build(db, b => b.Items("cli-locked", 2));
        using var host = TestHost.Build(db, b => b.Items("cli-locked", 2));
        using var after = TestHost.Build(db, b => b.Items("cli-locked", 2));
        var locks = other.Services.GetRequiredService<IRunLockProvider>();
        await using (await locks.TryAcquireAsync("cli-locked", Guid.NewGuid(), default))
        {
            var (code, output, _) = await TestHost.RunAsync(host, "run", "cli-locked");
            Assert.Equal(ExitCodes.Locked, code);
            Assert.Contains("status=AlreadyRunning", output, StringComparison.Ordinal);
        }

        Assert.Equal(ExitCodes.Success, (await TestHost.RunAsync(after, "run", "cli-locked")).ExitCode);
    }

    [Fact]
    public async Task Jobs_job_and_state_show_the_history_rejected_records_and_cursor_as_plain_lines()
    {
        using var host = TestHost.Build(db, b => b.Items("cli-history", 6, rejected: [4], maxRejected: 5));
        Assert.Equal(ExitCodes.Success, (await TestHost.RunAsync(host, "run", "cli-history")).ExitCode);

        var jobs = await TestHost.RunAsync(host, "jobs", "--source", "cli-history", "--status", "PartiallySucceeded");
        Assert.Equal(ExitCodes.Success, jobs.ExitCode);
        var lines = jobs.Output.Trim().Split('\n');
        Assert.StartsWith("job\tstarted (UTC)\tsource", lines[0], StringComparison.Ordinal);
        var row = Assert.Single(lines.Skip(1)).Split('\t');
        Assert.Equal(("cli-history", "PartiallySucceeded", "6", "1"), (row[2], row[6], row[8], row[13]));
        Assert.Single((await TestHost.RunAsync(host, "jobs", "--source", "cli-history", "--status", "Failed")).Output.Trim().Split('\n'));

        var job = await TestHost.RunAsync(host, "job", row[0]);
        Assert.Equal(ExitCodes.Success, job.ExitCode);
        Assert.Contains("record 4\tvalue\tvalue 4 is not a number\tbad-4", job.Output, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.BadArguments, (await TestHost.RunAsync(host, "job", Guid.NewGuid().ToString())).ExitCode);

        var set = await TestHost.RunAsync(host, "state", "cli-history", "--set-cursor", "i42", "--requested-by", "tester");
        Assert.Contains("state source=cli-history cursor=i42", set.Output, StringComparison.Ordinal);
        Assert.Contains("state-edit by tester", await db.ScalarAsync<string>("SELECT trigger FROM ingestion.import_jobs WHERE trigger LIKE 'state-edit%' ORDER BY started_at DESC LIMIT 1"), StringComparison.Ordinal);
        var reset = await TestHost.RunAsync(host, "state", "cli-history", "--reset");
        Assert.DoesNotContain("cursor=", reset.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_command_has_help_and_a_host_command_runs_beside_the_built_in_ones()
    {
        var called = false;
        using var host = TestHost.Build(db, b => b.Services.AddIngestionCommand(_ =>
        {
            var command = new Command("hello", "A command of the host.");
            command.SetAction(_ =>
            {
                called = true;
                return 7;
            });
            return command;
        }));

        foreach (var args in new[] { new[] { "--help" }, ["run", "--help"], ["sources", "--help"], ["jobs", "--help"], ["job", "--help"], ["state", "--help"], ["schedules", "--help"], ["schedule-runs", "--help"], ["queue", "--help"], ["queue", "stats", "--help"], ["queue", "dead", "--help"], ["queue", "requeue", "--help"], ["queue", "reconcile", "--help"], ["plugins", "--help"], ["serve", "--help"], ["hello", "--help"] })
        {
            var (code, output, error) = await TestHost.RunAsync(host, args);
            Assert.True(code == ExitCodes.Success, $"{string.Join(' ', args)}: {code} {error}");
            Assert.Contains("Usage:", output, StringComparison.Ordinal);
        }

        var root = await TestHost.RunAsync(host, "--help");
        Assert.Contains("hello", root.Output, StringComparison.Ordinal);
        Assert.Equal(7, (await TestHost.RunAsync(host, "hello")).ExitCode);
        Assert.True(called);
    }

    [Fact]
    public async Task Configuration_overrides_are_left_to_the_host()
    {
        using var host = TestHost.Build(db, b => b.Items("cli-overrides", 1));
        var (code, output, error) = await TestHost.RunAsync(host, "sources", "--Ingestion:Sources:cli-overrides:Enabled=false");
        Assert.True(code == ExitCodes.Success, error);
        Assert.Contains("cli-overrides\tHost\tyes", output, StringComparison.Ordinal);
    }
}
