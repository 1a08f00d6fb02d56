using System.Globalization;
using Ingestion.Compare.Data;
using Ingestion.Compare.Harness;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Running;
using Ingestion.Sources.Ckan;
using Ingestion.Sources.Csv;
using Ingestion.Sources.Feeds;
using Ingestion.Sources.Ics;
using Ingestion.Sources.JsonApi;
using Ingestion.Sources.Mapping;
using Ingestion.Sources.Wfs;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Compare.Cases;

/// <summary>
/// The seeds' real shape (issue 19 §3): one <c>RunMany</c> (parallel, the library's default degree) of seven sources of
/// different shapes, about <c>--rows</c> rows in all (<see cref="SeedShapeData"/>: two CSV files, a paged JSON API and a
/// CKAN datastore served by a Kestrel server on 127.0.0.1 from pages rendered before the timing, a GeoJSON file with
/// point geometries into PostGIS, an RSS feed and an ICS calendar), into seven tables the sink creates.
/// <c>seed_shape</c> times the first load; <c>seed_shape_unchanged</c> loads once untimed and times the unchanged
/// re-run (files unchanged since the last run end as not modified, the APIs are read again and found unchanged). The
/// rate counts the sources' total rows, compared with <c>raw_copy_pk</c> on the same <c>--rows</c>.
/// </summary>
/// <param name="unchanged">Whether the timed run is the unchanged re-run.</param>
public sealed class SeedShapeCase(bool unchanged) : CompareCase
{
    private static readonly string[] Suffixes = ["csv_a", "csv_b", "json", "ckan", "geojson", "rss", "ics"];
    private SeedShapeData? _data;
    private TestHttpServer? _server;
    private ServiceProvider? _services;
    private IngestionRunSummary? _summary;
    private int _passes;
    private string _prefix = "seed";

    /// <inheritdoc />
    public override string Name => unchanged ? "seed_shape_unchanged" : "seed_shape";

    /// <inheritdoc />
    public override async Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await TearDownAsync(context, cancellationToken);
        await context.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS postgis", cancellationToken);
        _data = SeedShapeData.Create(context.WorkDirectory, context.Rows);
        var data = _data;
        _server = await TestHttpServer.StartAsync(ctx =>
        {
            ctx.Response.ContentType = "application/json";
            var pages = ctx.Request.Path == "/api/items" ? data.JsonPages : data.CkanPages;
            var index = ctx.Request.Path == "/api/items"
                ? int.Parse(ctx.Request.Query["page"]!, CultureInfo.InvariantCulture) - 1
                : (int)(long.Parse(ctx.Request.Query["offset"]!, CultureInfo.InvariantCulture) / SeedShapeData.PageSize);
            return ctx.Response.Body.WriteAsync(pages[Math.Min(index, pages.Count - 1)]).AsTask();
        });

        // Each pass reads under names of its own, so no state saved by an earlier pass makes its files not modified.
        _passes++;
        _prefix = $"seed{(context.IsWarmUp ? "w" : string.Empty)}{_passes}";
        var services = new ServiceCollection();
        var builder = services.AddIngestion()
            .UsePostgres(o => o.ConnectionString = context.ConnectionString)
            .ConfigurePostgresSink(context.BenchSinkOptions);
        builder.AddCsvSource(Source("csv_a"), o =>
        {
            o.Location = data.CsvA;
            foreach (var (name, type) in OursCsvFileCase.Columns)
            {
                o.Columns.Add(new ColumnMappingOptions { Name = name, Type = type });
            }

            o.Key.Add("region");
            o.Key.Add("code");
        }, context.BenchSourceOptions(Table("csv_a")));
        builder.AddCsvSource(Source("csv_b"), o =>
        {
            o.Location = data.CsvB;
            o.Columns.Add(new ColumnMappingOptions { Name = "ticket_id" });
            o.Columns.Add(new ColumnMappingOptions { Name = "issued_on", Type = ColumnType.Date });
            o.Columns.Add(new ColumnMappingOptions { Name = "amount", Type = ColumnType.Int32 });
            o.Columns.Add(new ColumnMappingOptions { Name = "place" });
            o.Key.Add("ticket_id");
        }, context.BenchSourceOptions(Table("csv_b")));
        builder.AddJsonApiSource(Source("json"), o =>
        {
            o.Url = _server.Url("api/items").AbsoluteUri;
            o.Pagination = JsonApiPagination.PageNumber;
            o.PageSize = SeedShapeData.PageSize;
            o.ItemsPath = "data";
            o.Columns.Add(new ColumnMappingOptions { Name = "id" });
            o.Columns.Add(new ColumnMappingOptions { Name = "title" });
            o.Columns.Add(new ColumnMappingOptions { Name = "amount", Type = ColumnType.Int32 });
            o.Columns.Add(new ColumnMappingOptions { Name = "updated_at", Type = ColumnType.TimestampTz });
            o.Key.Add("id");
        }, context.BenchSourceOptions(Table("json")));
        builder.AddCkanSource(Source("ckan"), o =>
        {
            o.BaseUrl = _server.BaseAddress.AbsoluteUri;
            o.ResourceId = "r1";
            o.PageSize = SeedShapeData.PageSize;
        }, context.BenchSourceOptions(Table("ckan")));
        builder.AddWfsSource(Source("geojson"), o => o.Url = data.GeoJson, context.BenchSourceOptions(Table("geojson")));
        builder.AddFeedSource(Source("rss"), o => o.Url = data.Rss, context.BenchSourceOptions(Table("rss")));
        builder.AddIcsSource(Source("ics"), o => o.Url = data.Ics, context.BenchSourceOptions(Table("ics")));
        _services = services.BuildServiceProvider();
        await _services.GetRequiredService<IngestionDatabase>().EnsureMigratedAsync(cancellationToken);
        if (unchanged)
        {
            var first = await RunAllAsync(cancellationToken);
            if (first.Results.FirstOrDefault(r => r.Status != IngestionStatus.Succeeded) is { } failed)
            {
                throw new InvalidOperationException($"The first load before the unchanged re-run failed: {failed}");
            }
        }
    }

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        _summary = await RunAllAsync(cancellationToken);
        if (_summary.Results.FirstOrDefault(r => r.Status is not (IngestionStatus.Succeeded or IngestionStatus.NotModified)) is { } failed)
        {
            throw new InvalidOperationException($"A source of the seed run failed: {failed}");
        }

        return _data!.Total;
    }

    /// <inheritdoc />
    public override async Task VerifyAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        foreach (var suffix in Suffixes)
        {
            await context.ExpectRowCountAsync(Table(suffix), _data!.Counts[suffix], cancellationToken);
        }

        var changed = _summary!.Results.Sum(r => r.Counts.Created + r.Counts.Updated);
        if (unchanged && changed != 0)
        {
            throw new InvalidOperationException($"The unchanged re-run created or updated {changed} rows.");
        }

        if (!context.IsWarmUp)
        {
            context.Note(string.Join("; ", _summary.Results.Select((r, i) => $"{Suffixes[i]} {r.Status.ToString().ToLowerInvariant()} read={r.Counts.Read} created={r.Counts.Created} unchanged={r.Counts.Unchanged}")));
            context.Note(string.Create(CultureInfo.InvariantCulture, $"{_data!.Total} rows in seven sources ({string.Join(", ", Suffixes.Select(s => $"{s} {_data.Counts[s]}"))}); RunMany parallel, default degree {Environment.ProcessorCount}"));
        }
    }

    /// <inheritdoc />
    public override async Task TearDownAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_services is not null)
        {
            await _services.DisposeAsync();
            _services = null;
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
            _server = null;
        }

        foreach (var suffix in Suffixes)
        {
            await context.ExecuteAsync($"DROP TABLE IF EXISTS {Table(suffix)}", cancellationToken);
        }
    }

    private Task<IngestionRunSummary> RunAllAsync(CancellationToken cancellationToken) =>
        _services!.GetRequiredService<IIngestionRunner>().RunManyAsync(new RunManyRequest { Sources = Suffixes.Select(Source).ToList(), Parallel = true, Run = new RunRequest { Trigger = "benchmark" } }, cancellationToken);

    private string Source(string suffix) => $"{_prefix}-{suffix.Replace('_', '-')}";

    private string Table(string suffix) => $"bench_{Name}_{suffix}";
}
