using System.Text.Json;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Running;
using Ingestion.Sources.Ckan;
using Ingestion.Sources.Csv;
using Ingestion.Sources.JsonApi;
using Ingestion.Sources.Mapping;
using Ingestion.Sources.Tests.Wfs;
using Ingestion.Sources.Wfs;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Sources.Tests.EndToEnd;

/// <summary>Each source ingests into PostgreSQL through the runner (real HTTP servers on 127.0.0.1, a throwaway database).</summary>
public sealed class PostgresEndToEndTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private async Task<IngestionResult> RunAsync(Action<IIngestionBuilder> configure, string source)
    {
        var services = new ServiceCollection();
        configure(services.AddIngestion().UsePostgres(o => o.ConnectionString = db.ConnectionString));
        await using var sp = services.BuildServiceProvider();
        return await sp.GetRequiredService<IIngestionRunner>().RunAsync(source, null, default);
    }

    [Fact]
    public async Task Csv_file_into_postgres()
    {
        var path = Path.Combine(Path.GetTempPath(), $"ingestion-e2e-{Guid.NewGuid():N}.csv");
        await File.WriteAllTextAsync(path, "Id,Date,Amount,Place\nT1,2024-01-05,150,\"Rue Sainte-Catherine, Montréal\"\nT2,2024-01-06,x,Lévis\nT3,2024-01-07,7,\n");
        try
        {
            var result = await RunAsync(b => b.AddCsvSource("e2e-csv", o =>
            {
                o.Location = path;
                o.Columns.Add(new ColumnMappingOptions { Name = "id", From = "Id" });
                o.Columns.Add(new ColumnMappingOptions { Name = "issued_on", From = "Date", Type = ColumnType.Date });
                o.Columns.Add(new ColumnMappingOptions { Name = "amount", From = "Amount", Type = ColumnType.Int32 });
                o.Columns.Add(new ColumnMappingOptions { Name = "place", From = "Place" });
                o.Key.Add("id");
            }, s =>
            {
                s.Table = "e2e_csv";
                s.CreateTable = true;
                s.MaxRejected = 1;
            }), "e2e-csv");
            Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);
            Assert.Equal(2L, result.Counts.Created);
            Assert.Equal(157L, await db.ScalarAsync<long>("SELECT sum(amount) FROM e2e_csv"));
            Assert.Equal("Rue Sainte-Catherine, Montréal", await db.ScalarAsync<string>("SELECT place FROM e2e_csv WHERE id = 'T1'"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Json_api_ckan_and_wfs_into_postgres()
    {
        await db.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS postgis");
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            ctx.Response.ContentType = "application/json";
            if (ctx.Request.Path == "/api/items")
            {
                var page = int.Parse(ctx.Request.Query["page"]!, System.Globalization.CultureInfo.InvariantCulture);
                return ctx.Response.WriteAsync(JsonSerializer.Serialize(new { data = page > 2 ? [] : new[] { new { id = $"i{page}", n = page } } }));
            }

            if (ctx.Request.Path == "/api/3/action/datastore_search")
            {
                return ctx.Response.WriteAsync("{\"success\":true,\"result\":{\"total\":2,\"fields\":[{\"id\":\"_id\",\"type\":\"int\"},{\"id\":\"Rue\",\"type\":\"text\"},{\"id\":\"montant\",\"type\":\"numeric\"}],\"records\":[{\"_id\":1,\"Rue\":\"Saint-Denis\",\"montant\":\"12.50\"},{\"_id\":2,\"Rue\":\"Sherbrooke\",\"montant\":\"3\"}]}}");
            }

            return ctx.Response.WriteAsync(WfsSourceTests.Features(1, 3, 3));
        });

        var json = await RunAsync(b => b.AddJsonApiSource("e2e-json", o =>
        {
            o.Url = server.Url("api/items").AbsoluteUri;
            o.Pagination = JsonApiPagination.PageNumber;
            o.PageSize = 1;
            o.ItemsPath = "data";
            o.Columns.Add(new ColumnMappingOptions { Name = "id" });
            o.Columns.Add(new ColumnMappingOptions { Name = "n", Type = ColumnType.Int32 });
            o.Key.Add("id");
        }, s =>
        {
            s.Table = "e2e_json";
            s.CreateTable = true;
        }), "e2e-json");
        Assert.Equal(IngestionStatus.Succeeded, json.Status);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT sum(n) FROM e2e_json"));

        var ckan = await RunAsync(b => b.AddCkanSource("e2e-ckan", o =>
        {
            o.BaseUrl = server.BaseAddress.AbsoluteUri;
            o.ResourceId = "r1";
        }, s =>
        {
            s.Table = "e2e_ckan";
            s.CreateTable = true;
        }), "e2e-ckan");
        Assert.Equal(IngestionStatus.Succeeded, ckan.Status);
        Assert.Equal(15.5m, await db.ScalarAsync<decimal>("SELECT sum(montant) FROM e2e_ckan"));
        Assert.Equal("Saint-Denis", await db.ScalarAsync<string>("SELECT rue FROM e2e_ckan WHERE _id = 1"));

        var wfs = await RunAsync(b => b.AddWfsSource("e2e-wfs", o =>
        {
            o.Url = server.Url("wfs").AbsoluteUri;
            o.TypeName = "ns:radars";
        }, s =>
        {
            s.Table = "e2e_wfs";
            s.CreateTable = true;
        }), "e2e-wfs");
        Assert.Equal(IngestionStatus.Succeeded, wfs.Status);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM e2e_wfs WHERE ST_SRID(geom) = 4326 AND GeometryType(geom) = 'POINT'"));
        Assert.Equal("Ville 2", await db.ScalarAsync<string>("SELECT municipalite FROM e2e_wfs WHERE feature_id = 'radar.2'"));
    }
}
