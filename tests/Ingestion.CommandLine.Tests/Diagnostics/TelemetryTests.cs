using System.Diagnostics;
using Ingestion.Operations;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.CommandLine.Tests.Diagnostics;

/// <summary>The Meter and ActivitySource named "Ingestion", read with the BCL listeners during a real run on PostgreSQL.</summary>
public sealed class TelemetryTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task A_run_records_its_counts_status_durations_and_spans_with_the_batches_under_the_run()
    {
        var source = $"telemetry-{Guid.NewGuid():N}"[..20];
        using var capture = new TelemetryCapture(source);
        var measurements = capture.Measurements;
        var activities = capture.Spans;

        using var host = TestHost.Build(db, b => b.Items(source, 12, rejected: [5], maxRejected: 3), "telemetry");
        var summary = await host.Services.GetRequiredService<IIngestionOperations>().RunAsync(new RunSourcesRequest { Sources = [source], Trigger = "test" }, default);
        var result = Assert.Single(summary.Results);
        Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);

        Assert.Equal(11, capture.Sum("ingestion.records", "ingestion.record.outcome", "created"));
        Assert.Equal(1, capture.Sum("ingestion.records", "ingestion.record.outcome", "rejected"));
        var run = Assert.Single(measurements, m => m.Instrument == "ingestion.runs");
        Assert.Equal("PartiallySucceeded", run.Tags["ingestion.run.status"]);
        Assert.Single(measurements, m => m.Instrument == "ingestion.run.duration");
        Assert.Equal(3, measurements.Count(m => m.Instrument == "ingestion.batch.duration"));

        var runSpan = Assert.Single(activities, a => a.OperationName == "ingestion.run");
        Assert.Equal(("Incremental", "PartiallySucceeded", 12L, 11L, 1L), (runSpan.GetTagItem("ingestion.run.mode"), runSpan.GetTagItem("ingestion.run.status"), runSpan.GetTagItem("ingestion.records.read"), runSpan.GetTagItem("ingestion.records.created"), runSpan.GetTagItem("ingestion.records.rejected")));
        Assert.Equal(ActivityStatusCode.Ok, runSpan.Status);
        var batches = activities.Where(a => a.OperationName == "ingestion.batch").ToList();
        Assert.Equal(3, batches.Count);
        Assert.All(batches, b => Assert.Equal(runSpan.SpanId, b.ParentSpanId));
    }

    [Fact]
    public async Task A_failed_run_records_the_error_on_its_span()
    {
        var source = $"telemetry-f-{Guid.NewGuid():N}"[..20];
        using var capture = new TelemetryCapture(source);
        using var host = TestHost.Build(db, b => b.AddSource(source, _ => new ItemSource((c, ct) => ItemSource.Failing(c, ct)), o =>
        {
            o.Table = "telemetry_failing";
            o.CreateTable = true;
            o.MaxRetryAttempts = 0;
        }), "telemetry");
        await host.Services.GetRequiredService<IIngestionOperations>().RunAsync(new RunSourcesRequest { Sources = [source], Trigger = "test" }, default);

        var span = Assert.Single(capture.Spans, a => a.OperationName == "ingestion.run");
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Contains("the feed is broken at record 2", span.StatusDescription, StringComparison.Ordinal);
        Assert.Equal("IngestionException", span.GetTagItem("error.type"));
    }
}
