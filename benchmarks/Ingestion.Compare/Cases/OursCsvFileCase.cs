using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Running;
using Ingestion.Sources.Csv;
using Ingestion.Sources.Mapping;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Compare.Cases;

/// <summary>
/// Our CSV source reading the same CSV file as <c>psql_copy_csv</c>, end to end through the runner into
/// PostgreSQL: parse (RFC 4180, typed columns from configuration), batch, COPY, merge into a table the sink
/// creates with the (region, code) key. Configured the way a host's <c>appsettings.json</c> would.
/// </summary>
public sealed class OursCsvFileCase : CompareCase
{
    private const string Table = "bench_ours_csv_file";

    /// <summary>The typed columns of the benchmark rows' CSV file, as a host would configure them.</summary>
    internal static readonly (string Name, ColumnType Type)[] Columns =
    [
        ("region", ColumnType.Text), ("code", ColumnType.Text), ("observed_at", ColumnType.TimestampTz), ("name", ColumnType.Text),
        ("category", ColumnType.Int16), ("quantity", ColumnType.Int32), ("latitude", ColumnType.Float64), ("longitude", ColumnType.Float64),
        ("description", ColumnType.Text), ("active", ColumnType.Boolean),
    ];

    private ServiceProvider? _services;
    private IngestionResult? _result;
    private const string SourceName = "bench-csv-file";

    /// <inheritdoc />
    public override string Name => "ours_csv_file";

    /// <inheritdoc />
    public override async Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        await context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);
        var file = await context.GetCsvFileAsync(context.Rows);

        // One service provider for every pass and round, as a host keeps one for its lifetime (see OursRunnerCase):
        // the source reads a fixed path, re-pointed at this pass's file, and its saved state is cleared so the same
        // file is read again rather than found not modified.
        var current = Path.Combine(Path.GetDirectoryName(file)!, "bench-csv-current.csv");
        File.Delete(current);
        File.CreateSymbolicLink(current, file);
        if (_services is null)
        {
            _services = BuildServices(context, current);
            await _services.GetRequiredService<IngestionDatabase>().EnsureMigratedAsync(cancellationToken);
        }

        await context.ExecuteAsync($"DELETE FROM ingestion.source_state WHERE source = '{SourceName}'", cancellationToken);
    }

    private static ServiceProvider BuildServices(CaseContext context, string current)
    {
        var services = new ServiceCollection();
        services.AddIngestion()
            .UsePostgres(o => o.ConnectionString = context.ConnectionString)
            .ConfigurePostgresSink(context.BenchSinkOptions)
            .AddCsvSource(
                SourceName,
                csv =>
                {
                    csv.Location = current;
                    foreach (var (name, type) in Columns)
                    {
                        csv.Columns.Add(new ColumnMappingOptions { Name = name, Type = type });
                    }

                    csv.Key.Add("region");
                    csv.Key.Add("code");
                },
                context.BenchSourceOptions(Table));
        return services.BuildServiceProvider();
    }

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        _result = await _services!.GetRequiredService<IIngestionRunner>().RunAsync(SourceName, new RunRequest { Trigger = "benchmark" }, cancellationToken);
        if (_result.Status != IngestionStatus.Succeeded)
        {
            throw new InvalidOperationException($"The run failed: {_result}");
        }

        return _result.Counts.Read;
    }

    /// <inheritdoc />
    public override async Task VerifyAsync(CaseContext context, CancellationToken cancellationToken)
    {
        var counts = _result!.Counts;
        if (counts.Read != context.Rows || counts.Created != context.Rows || !counts.AddsUp)
        {
            throw new InvalidOperationException($"Wrong counts: {counts}; expected read={context.Rows} created={context.Rows}.");
        }

        await context.ExpectRowCountAsync(Table, context.Rows, cancellationToken);
        var expected = RowGenerator.Rows(RowPlan.Initial, context.Rows).Sum(r => (decimal)r.Quantity);
        var actual = await context.ScalarAsync<decimal>($"SELECT sum(quantity::numeric) FROM {Table}", cancellationToken);
        if (actual != expected)
        {
            throw new InvalidOperationException($"Table {Table} has sum(quantity) = {actual}; the file makes {expected}.");
        }

        if (!context.IsWarmUp)
        {
            context.Note($"{counts}; dynamic records, columns typed by configuration");
        }
    }

    /// <inheritdoc />
    public override async Task TearDownAsync(CaseContext context, CancellationToken cancellationToken)
    {
        await context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);
    }
}
