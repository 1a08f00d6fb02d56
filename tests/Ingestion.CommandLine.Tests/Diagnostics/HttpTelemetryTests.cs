using System.Collections.Concurrent;
using System.Text.Json;
using Ingestion.Operations;
using Ingestion.Running;
using Ingestion.Sources.JsonApi;
using Ingestion.Sources.Mapping;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.CommandLine.Tests.Diagnostics;

/// <summary>A JSON API source against a real HTTP server: its requests and bytes on the meter, a span per request under the run, and its announced total in the progress events.</summary>
public sealed class HttpTelemetryTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task Requests_and_bytes_are_counted_per_source_with_a_span_each_and_the_api_total_reaches_progress()
    {
        var source = $"http-{Guid.NewGuid():N}"[..16];
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            var page = int.Parse(ctx.Request.Query["page"]!, System.Globalization.CultureInfo.InvariantCulture);
            ctx.Response.ContentType = "application/json";
            return ctx.Response.WriteAsync(JsonSerializer.Serialize(new
            {
                meta = new { total = 6 },
                data = Enumerable.Range(1, 2).Select(i => new { id = $"p{page}-{i}" }),
            }));
        });

        using var capture = new TelemetryCapture(source);

        using var host = TestHost.Build(db, b => b.AddJsonApiSource(
            source,
            o =>
            {
                o.Url = server.Url("items").AbsoluteUri;
                o.Pagination = JsonApiPagination.PageNumber;
                o.PageSize = 2;
                o.TotalPath = "meta.total";
                o.ItemsPath = "data";
                o.Columns.Add(new ColumnMappingOptions { Name = "id" });
                o.Key.Add("id");
            },
            s =>
            {
                s.Table = source.Replace('-', '_');
                s.CreateTable = true;
                s.BatchSize = 2;
            }), "http_telemetry");
        var progress = new ConcurrentQueue<IngestionProgress>();
        var summary = await host.Services.GetRequiredService<IIngestionOperations>().RunAsync(
            new RunSourcesRequest { Sources = [source], Trigger = "test", Progress = new Collect(progress) },
            default);
        Assert.Equal(IngestionStatus.Succeeded, Assert.Single(summary.Results).Status);

        Assert.Equal(3, capture.Sum("ingestion.http.requests", "http.response.status_code", 200));
        Assert.True(capture.Sum("ingestion.http.bytes") > 3 * 40);
        var run = Assert.Single(capture.Spans, s => s.OperationName == "ingestion.run");
        var requests = capture.Spans.Where(s => s.OperationName == "ingestion.http").ToList();
        Assert.Equal(3, requests.Count);
        Assert.All(requests, r => Assert.Equal((run.TraceId, "GET", 200), (r.TraceId, r.GetTagItem("http.request.method"), r.GetTagItem("http.response.status_code"))));
        Assert.Contains(progress, p => p.TotalRecords == 6 && p.Fraction is > 0);
        Assert.Equal(1.0, progress.Last().Fraction);
    }

    private sealed class Collect(ConcurrentQueue<IngestionProgress> into) : IProgress<IngestionProgress>
    {
        public void Report(IngestionProgress value) => into.Enqueue(value);
    }
}
