using System.Net;
using System.Net.Http.Json;
using Ingestion.AspNetCore.Endpoints;
using Ingestion.AspNetCore.Hosting;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.AspNetCore.Tests.Hosting;

public class IngestionWebServerTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task A_console_host_serves_the_dashboard_and_routes_on_its_own_server_over_its_own_services()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = "Production" });
        builder.Services.AddIngestion().UsePostgres(o => o.ConnectionString = db.ConnectionString)
            .AddSource("served-rows", _ => new ItemSource(_ => ItemSource.Rows(3)), o => { o.Table = "served_rows"; o.CreateTable = true; });
        using var host = builder.Build();
        await host.StartAsync();

        await using (var server = await IngestionWebServer.StartAsync(host.Services, o => o.Url = "http://127.0.0.1:0", default))
        {
            using var client = new HttpClient { BaseAddress = server.BaseAddress };
            var page = await client.GetStringAsync(server.DashboardAddress);
            Assert.Contains("<meta name=\"ingestion-base\" content=\"/ingestion\">", page, StringComparison.Ordinal);
            Assert.Equal("served-rows", Assert.Single((await client.GetFromJsonAsync<List<SourceResponse>>("ingestion/sources"))!).Name);
            Assert.Equal(HttpStatusCode.Forbidden, (await client.PostAsync("ingestion/sources/served-rows/run?wait=true", null)).StatusCode); // Production, no policy
        }

        await using var development = await IngestionWebServer.StartAsync(host.Services, o => { o.Url = "http://127.0.0.1:0"; o.EnvironmentName = "Development"; o.Prefix = "/ops"; }, default);
        using var devClient = new HttpClient { BaseAddress = development.BaseAddress };
        var run = (await (await devClient.PostAsync("ops/sources/served-rows/run?wait=true", null)).Content.ReadFromJsonAsync<RunCompletedResponse>())!;
        Assert.Equal(("http", "Succeeded", 3L), (run.Trigger, run.Results[0].Status, run.Results[0].Counts.Created));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM ingestion.import_jobs WHERE source = 'served-rows' AND trigger = 'http'"));
        await host.StopAsync();
    }
}
