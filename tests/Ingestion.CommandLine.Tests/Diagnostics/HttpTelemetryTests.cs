using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Ingestion.Diagnostics;
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

        var measurements = new ConcurrentQueue<(string Instrument, long Value, object? Status)>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == IngestionTelemetry.Name && instrument.Name.StartsWith("ingestion.http", StringComparison.Ordinal))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            object? status = null;
            var ours = false;
            foreach (var t in tags)
            {
                ours |= t.Key == "ingestion.source" && Equals(t.Value, source);
                status = t.Key == "http.response.status_code" ? t.Value : status;
            }

            if (ours)
            {
                measurements.Enqueue((instrument.Name, value, status));
            }
        });
        meters.Start();
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == IngestionTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (Equals(a.GetTagItem("ingestion.source"), source))
                {
                    spans.Enqueue(a);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

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

        Assert.Equal(3, measurements.Where(m => m.Instrument == "ingestion.http.requests" && Equals(m.Status, 200)).Sum(m => m.Value));
        Assert.True(measurements.Where(m => m.Instrument == "ingestion.http.bytes").Sum(m => m.Value) > 3 * 40);
        var run = Assert.Single(spans, s => s.OperationName == "ingestion.run");
        var requests = spans.Where(s => s.OperationName == "ingestion.http").ToList();
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
