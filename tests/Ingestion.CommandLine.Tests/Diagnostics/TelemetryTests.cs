using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Ingestion.Diagnostics;
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
        var measurements = new ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == IngestionTelemetry.Name)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var map = new Dictionary<string, object?>();
            foreach (var t in tags)
            {
                map[t.Key] = t.Value;
            }

            if (Equals(map.GetValueOrDefault("ingestion.source"), source))
            {
                measurements.Enqueue((instrument.Name, value, map));
            }
        }

        meters.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        meters.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        meters.Start();
        var activities = new ConcurrentQueue<Activity>();
        using var spans = new ActivityListener
        {
            ShouldListenTo = s => s.Name == IngestionTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (Equals(a.GetTagItem("ingestion.source"), source))
                {
                    activities.Enqueue(a);
                }
            },
        };
        ActivitySource.AddActivityListener(spans);

        using var host = TestHost.Build(db, b => b.Items(source, 12, rejected: [5], maxRejected: 3), "telemetry");
        var summary = await host.Services.GetRequiredService<IIngestionOperations>().RunAsync(new RunSourcesRequest { Sources = [source], Trigger = "test" }, default);
        var result = Assert.Single(summary.Results);
        Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);

        double Sum(string instrument, string? outcome = null) => measurements
            .Where(m => m.Instrument == instrument && (outcome is null || Equals(m.Tags.GetValueOrDefault("ingestion.record.outcome"), outcome)))
            .Sum(m => m.Value);
        Assert.Equal(11, Sum("ingestion.records", "created"));
        Assert.Equal(1, Sum("ingestion.records", "rejected"));
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
        var stopped = new ConcurrentQueue<Activity>();
        using var spans = new ActivityListener
        {
            ShouldListenTo = s => s.Name == IngestionTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (Equals(a.GetTagItem("ingestion.source"), source))
                {
                    stopped.Enqueue(a);
                }
            },
        };
        ActivitySource.AddActivityListener(spans);
        using var host = TestHost.Build(db, b => b.AddSource(source, _ => new ItemSource((c, ct) => ItemSource.Failing(c, ct)), o =>
        {
            o.Table = "telemetry_failing";
            o.CreateTable = true;
            o.MaxRetryAttempts = 0;
        }), "telemetry");
        await host.Services.GetRequiredService<IIngestionOperations>().RunAsync(new RunSourcesRequest { Sources = [source], Trigger = "test" }, default);

        var span = Assert.Single(stopped, a => a.OperationName == "ingestion.run");
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Contains("the feed is broken at record 2", span.StatusDescription, StringComparison.Ordinal);
        Assert.Equal("IngestionException", span.GetTagItem("error.type"));
    }
}
