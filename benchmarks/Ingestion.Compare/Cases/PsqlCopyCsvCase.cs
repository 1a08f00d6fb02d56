using System.Diagnostics;
using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;
using Npgsql;

namespace Ingestion.Compare.Cases;

/// <summary>
/// <c>psql \copy ... csv</c> of the generated rows, from a CSV file written beforehand (not timed), into a
/// fresh table with the primary key: the usual command-line way of loading a CSV download.
/// </summary>
public sealed class PsqlCopyCsvCase : CompareCase
{
    private const string Table = "bench_psql_copy_csv";
    private string? _file;
    private string? _psql;

    /// <inheritdoc />
    public override string Name => "psql_copy_csv";

    /// <inheritdoc />
    public override bool MeasuresMemory => false;

    /// <inheritdoc />
    public override bool WarmsUp => false;

    /// <inheritdoc />
    public override async Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        _psql = FindPsql() ?? throw new InvalidOperationException("psql was not found on PATH nor under /usr/lib/postgresql/*/bin; install postgresql-client.");
        _file = await context.GetCsvFileAsync(context.Rows);
        if (_file.Contains('\'', StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"The CSV path {_file} contains a quote; set TMPDIR to a plain folder.");
        }

        context.Note($"{new FileInfo(_file).Length / (1024 * 1024)} MB CSV file read by {_psql}");
        await context.CreateFreshTableAsync(Table, cancellationToken);
    }

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        var cs = new NpgsqlConnectionStringBuilder(context.ConnectionString);
        var start = new ProcessStartInfo(_psql!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", $"\\copy {Table} ({BenchTable.ColumnList}) FROM '{_file}' WITH (FORMAT csv, HEADER true)" })
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["PGHOST"] = cs.Host;
        start.Environment["PGPORT"] = cs.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["PGUSER"] = cs.Username;
        start.Environment["PGDATABASE"] = cs.Database;
        if (!string.IsNullOrEmpty(cs.Password))
        {
            start.Environment["PGPASSWORD"] = cs.Password;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {_psql}.");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"psql exited with {process.ExitCode}: {await stderr}{await stdout}");
        }

        return context.Rows;
    }

    /// <inheritdoc />
    public override Task VerifyAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExpectRowCountAsync(Table, context.Rows, cancellationToken);

    /// <inheritdoc />
    public override Task TearDownAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);

    /// <summary>Finds psql on PATH, else the newest under <c>/usr/lib/postgresql/*/bin</c>.</summary>
    /// <returns>Its path, or <see langword="null"/>.</returns>
    public static string? FindPsql()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "psql");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        const string root = "/usr/lib/postgresql";
        if (!Directory.Exists(root))
        {
            return null;
        }

        return Directory.GetDirectories(root)
            .Select(d => (Version: int.TryParse(Path.GetFileName(d), out var v) ? v : 0, Path: Path.Combine(d, "bin", "psql")))
            .Where(x => File.Exists(x.Path))
            .OrderByDescending(x => x.Version)
            .Select(x => x.Path)
            .FirstOrDefault();
    }
}
