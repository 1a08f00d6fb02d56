using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Ingestion.Diagnostics;

namespace Ingestion.CommandLine.Tests.Diagnostics;

/// <summary>Listens to the "Ingestion" meter and activity source and keeps what concerns one source (tests run in parallel).</summary>
internal sealed class TelemetryCapture : IDisposable
{
    private readonly string _source;
    private readonly MeterListener _meters = new();
    private readonly ActivityListener _spans;

    public TelemetryCapture(string source)
    {
        _source = source;
        _meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == IngestionTelemetry.Name)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _meters.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        _meters.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        _meters.Start();
        _spans = new ActivityListener
        {
            ShouldListenTo = s => s.Name == IngestionTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (Equals(a.GetTagItem("ingestion.source"), _source))
                {
                    Spans.Enqueue(a);
                }
            },
        };
        ActivitySource.AddActivityListener(_spans);
    }

    /// <summary>The measurements tagged with the source: instrument name, value, tags.</summary>
    public ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)> Measurements { get; } = new();

    /// <summary>The stopped spans tagged with the source.</summary>
    public ConcurrentQueue<Activity> Spans { get; } = new();

    /// <summary>The sum of an instrument's measurements, optionally only those with a tag value.</summary>
    public double Sum(string instrument, string? tag = null, object? value = null) => Measurements
        .Where(m => m.Instrument == instrument && (tag is null || Equals(m.Tags.GetValueOrDefault(tag), value)))
        .Sum(m => m.Value);

    public void Dispose()
    {
        _meters.Dispose();
        _spans.Dispose();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var map = new Dictionary<string, object?>();
        foreach (var t in tags)
        {
            map[t.Key] = t.Value;
        }

        if (Equals(map.GetValueOrDefault("ingestion.source"), _source))
        {
            Measurements.Enqueue((instrument.Name, value, map));
        }
    }
}
