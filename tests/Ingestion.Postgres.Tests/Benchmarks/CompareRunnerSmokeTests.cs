using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Ingestion.TestSupport;

namespace Ingestion.Postgres.Tests.Benchmarks;

/// <summary>
/// Runs the built comparison runner (benchmarks/Ingestion.Compare, built by scripts/test.sh with the
/// solution) on a few thousand rows: every case line parses, counts match, goals are judged. Speed is
/// not asserted; this only proves the harness and its cases work end to end.
/// </summary>
public partial class CompareRunnerSmokeTests
{
    private const int Rows = 2000;

    private const string CompareCases = "raw_copy_pk,psql_copy_csv,dapper_unnest_upsert,ours_first_load,ours_mixed,ours_unchanged,ours_update_all,ours_csv_file";

    [Fact]
    public async Task Runs_the_cases_and_prints_one_parsable_line_each()
    {
        var (code, stdout, stderr) = await RunAsync("--rows", Rows.ToString(CultureInfo.InvariantCulture), "--ef-rows", "500", "--repeat", "2", "--cases", CompareCases + ",efcore_insert", "--connection", PostgresDatabase.ServerConnectionString);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        foreach (var name in CompareCases.Split(','))
        {
            var line = stdout.Split('\n').SingleOrDefault(l => l.StartsWith($"case={name} ", StringComparison.Ordinal));
            Assert.True(line is not null, $"no line for {name}:\n{stdout}");
            var parsed = CaseLine().Match(line!);
            Assert.True(parsed.Success, $"unparsable: {line}");
            Assert.Equal(Rows, long.Parse(parsed.Groups["n"].Value, CultureInfo.InvariantCulture));
            Assert.True(double.Parse(parsed.Groups["r"].Value, CultureInfo.InvariantCulture) > 0, line);
        }

        var ef = CaseLine().Match(stdout.Split('\n').Single(l => l.StartsWith("case=efcore_insert ", StringComparison.Ordinal)));
        Assert.Equal("500", ef.Groups["n"].Value);
        Assert.Contains("# efcore_insert: ran on 500 rows", stdout, StringComparison.Ordinal);
        Assert.Contains("peak_ws_mb=", stdout.Split('\n').Single(l => l.StartsWith("case=raw_copy_pk ", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains("# ours_mixed: read=2000 created=667 updated=667 unchanged=666 duplicates=0 rejected=0", stdout, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^ratio ours_first_load/raw_copy_pk=\d+\.\d\d goal>=0\.95 (PASS|MISS)$", stdout);
        Assert.Matches(@"(?m)^ratio ours_mixed/raw_copy_pk=\d+\.\d\d goal>=0\.50 (PASS|MISS)$", stdout);
        Assert.DoesNotContain("peak_ws_mb=", stdout.Split('\n').Single(l => l.StartsWith("case=psql_copy_csv ", StringComparison.Ordinal)), StringComparison.Ordinal);

        // --repeat 2: each round's run is noted with its time and CPU split, the case line is one of them;
        // each goal's ratio is the median of the two rounds' ratios, both noted.
        Assert.Matches(@"(?m)^# ours_csv_file: round 1: \d+\.\d{3} s; cpu client \d+\.\d s", stdout);
        Assert.Matches(@"(?m)^# ours_csv_file: round 2: \d+\.\d{3} s; cpu client \d+\.\d s", stdout);
        var byRound = Regex.Match(stdout, @"(?m)^# ours_first_load/raw_copy_pk by round: (?<a>\d+\.\d\d) (?<b>\d+\.\d\d) \(median (?<m>\d+\.\d\d)\)$");
        Assert.True(byRound.Success, stdout);
        var mean = (double.Parse(byRound.Groups["a"].Value, CultureInfo.InvariantCulture) + double.Parse(byRound.Groups["b"].Value, CultureInfo.InvariantCulture)) / 2;
        Assert.InRange(double.Parse(byRound.Groups["m"].Value, CultureInfo.InvariantCulture), mean - 0.011, mean + 0.011);
        Assert.Contains($"ratio ours_first_load/raw_copy_pk={byRound.Groups["m"].Value} ", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--rows", "0", "--rows must be a positive whole number")]
    [InlineData("--rows", "ten", "--rows must be a positive whole number")]
    [InlineData("--cases", "raw_copy_pk,nope", "unknown case(s) nope")]
    [InlineData("--repeat", "0", "--repeat must be a positive whole number")]
    [InlineData("--repeat", "50", "--repeat must be at most 20")]
    [InlineData("--fillfactor", "5", "--fillfactor must be between 10 and 100")]
    [InlineData("--frobnicate", "1", "Unknown argument '--frobnicate'")]
    public async Task Bad_arguments_exit_2_naming_the_argument(string name, string value, string message)
    {
        var (code, _, stderr) = await RunAsync(name, value, "--connection", PostgresDatabase.ServerConnectionString);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_that_does_not_answer_exits_2_naming_it()
    {
        var (code, _, stderr) = await RunAsync("--rows", "10", "--cases", "raw_copy_pk", "--connection", "Host=127.0.0.1;Port=1;Username=postgres;Timeout=3");
        Assert.Equal(2, code);
        Assert.Contains("cannot create the benchmark database on 127.0.0.1:1", stderr, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^case=(?<name>[a-z0-9_]+) rows=(?<n>\d+) seconds=(?<s>\d+\.\d{3}) rows_per_s=(?<r>\d+)( peak_ws_mb=\d+)?$")]
    private static partial Regex CaseLine();

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(CompareDll());
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, (await stdout).Replace("\r", string.Empty, StringComparison.Ordinal), await stderr);
    }

    // The runner is built with the solution (scripts/test.sh builds Ingestion.sln) into
    // benchmarks/Ingestion.Compare/bin/<configuration>/net10.0; this test project does not reference it,
    // so EF Core and Dapper stay out of the library's tests.
    private static string CompareDll()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = dir.Parent?.Name ?? "Release";
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Ingestion.sln")))
        {
            dir = dir.Parent;
        }

        Assert.True(dir is not null, $"Ingestion.sln not found above {AppContext.BaseDirectory}");
        var dll = Path.Combine(dir!.FullName, "benchmarks", "Ingestion.Compare", "bin", configuration, "net10.0", "Ingestion.Compare.dll");
        Assert.True(File.Exists(dll), $"{dll} does not exist: build the solution (scripts/test.sh does) or 'dotnet build benchmarks/Ingestion.Compare -c {configuration}'.");
        return dll;
    }
}
