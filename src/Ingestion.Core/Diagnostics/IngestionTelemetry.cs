using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Ingestion.Diagnostics;

/// <summary>
/// The library's metrics and traces, with nothing but <c>System.Diagnostics</c>: a <see cref="Meter"/> and an
/// <see cref="ActivitySource"/> both named <see cref="Name"/>, ready for OpenTelemetry (<c>AddMeter("Ingestion")</c>,
/// <c>AddSource("Ingestion")</c>) or any <see cref="MeterListener"/>/<see cref="ActivityListener"/>.
/// The names are listed in docs/telemetry.md. <c>AddIngestion</c> registers one per container.
/// </summary>
public sealed class IngestionTelemetry : IDisposable
{
    /// <summary>The name of the meter and of the activity source.</summary>
    public const string Name = "Ingestion";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _records;
    private readonly Counter<long> _runs;
    private readonly Histogram<double> _runDuration;
    private readonly Histogram<double> _batchDuration;
    private readonly Counter<long> _httpRequests;
    private readonly Counter<long> _httpBytes;
    private readonly Histogram<double> _scheduleLag;
    private readonly ConcurrentDictionary<string, (long Pending, long Running, long Dead)> _queues = new(StringComparer.Ordinal);

    /// <summary>Creates the instruments.</summary>
    /// <param name="meterFactory">The host's meter factory, or <see langword="null"/> to own the meter.</param>
    public IngestionTelemetry(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(Name) ?? new Meter(Name);
        ActivitySource = new ActivitySource(Name, typeof(IngestionTelemetry).Assembly.GetName().Version?.ToString());
        _records = _meter.CreateCounter<long>("ingestion.records", "{record}", "Records processed, by source and outcome (created, updated, unchanged, duplicate, rejected, deleted).");
        _runs = _meter.CreateCounter<long>("ingestion.runs", "{run}", "Finished runs, by source and status.");
        _runDuration = _meter.CreateHistogram<double>("ingestion.run.duration", "s", "Duration of source runs, by source and status.");
        _batchDuration = _meter.CreateHistogram<double>("ingestion.batch.duration", "s", "Duration of batch writes to the sink, by source.");
        _httpRequests = _meter.CreateCounter<long>("ingestion.http.requests", "{request}", "HTTP requests sent by sources, by source and response status code.");
        _httpBytes = _meter.CreateCounter<long>("ingestion.http.bytes", "By", "Response bytes received by sources (as sent on the wire), by source.");
        _scheduleLag = _meter.CreateHistogram<double>("ingestion.schedule.lag", "s", "Delay between a schedule slot and the start of its run, by schedule.");
        _meter.CreateObservableGauge("ingestion.queue.depth", ObserveDepth, "{item}", "Items waiting or running in each work queue (last sampled), by queue and state.");
        _meter.CreateObservableGauge("ingestion.queue.dead", ObserveDead, "{item}", "Dead items in each work queue (last sampled), by queue.");
    }

    /// <summary>The activity source: spans <c>ingestion.run</c>, <c>ingestion.batch</c> and <c>ingestion.http</c>.</summary>
    public ActivitySource ActivitySource { get; }

    /// <summary>Starts the span of a run (the current activity until disposed).</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="runId">The run.</param>
    /// <param name="mode">Incremental or full refresh.</param>
    /// <param name="dryRun">Whether nothing is committed.</param>
    /// <param name="trigger">What triggered it.</param>
    /// <returns>The activity, or <see langword="null"/> when nobody listens.</returns>
    public Activity? StartRun(string sourceName, Guid runId, IngestionMode mode, bool dryRun, string trigger)
    {
        var activity = ActivitySource.StartActivity("ingestion.run", ActivityKind.Internal);
        if (activity is not null)
        {
            activity.DisplayName = $"ingestion.run {sourceName}";
            activity.SetTag("ingestion.source", sourceName);
            activity.SetTag("ingestion.run.id", runId.ToString());
            activity.SetTag("ingestion.run.mode", mode.ToString());
            activity.SetTag("ingestion.run.dry_run", dryRun);
            activity.SetTag("ingestion.run.trigger", trigger);
        }

        return activity;
    }

    /// <summary>Records a finished run: its counts, status and duration, on the meters and on its span.</summary>
    /// <param name="result">The result.</param>
    /// <param name="activity">The run's span, or <see langword="null"/>.</param>
    public void RunCompleted(IngestionResult result, Activity? activity)
    {
        ArgumentNullException.ThrowIfNull(result);
        var source = new KeyValuePair<string, object?>("ingestion.source", result.SourceName);
        var status = new KeyValuePair<string, object?>("ingestion.run.status", result.Status.ToString());
        _runs.Add(1, source, status);
        _runDuration.Record(result.Duration.TotalSeconds, source, status);
        if (!result.IsDryRun)
        {
            var c = result.Counts;
            foreach (var (outcome, n) in new[] { ("created", c.Created), ("updated", c.Updated), ("unchanged", c.Unchanged), ("duplicate", c.Duplicates), ("rejected", c.Rejected), ("deleted", c.Deleted) })
            {
                if (n > 0)
                {
                    _records.Add(n, source, new KeyValuePair<string, object?>("ingestion.record.outcome", outcome));
                }
            }
        }

        if (activity is null)
        {
            return;
        }

        activity.SetTag("ingestion.run.status", result.Status.ToString());
        activity.SetTag("ingestion.run.attempts", result.Attempts);
        activity.SetTag("ingestion.records.read", result.Counts.Read);
        activity.SetTag("ingestion.records.created", result.Counts.Created);
        activity.SetTag("ingestion.records.updated", result.Counts.Updated);
        activity.SetTag("ingestion.records.unchanged", result.Counts.Unchanged);
        activity.SetTag("ingestion.records.rejected", result.Counts.Rejected);
        activity.SetTag("ingestion.records.deleted", result.Counts.Deleted);
        if (result.Status == IngestionStatus.Failed)
        {
            activity.SetTag("error.type", result.Error?.Type ?? "Failed");
            activity.SetStatus(ActivityStatusCode.Error, result.Error?.Message);
        }
        else
        {
            activity.SetStatus(ActivityStatusCode.Ok);
        }
    }

    /// <summary>Starts the span of one batch write.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="records">Records in the batch.</param>
    /// <param name="firstRecordNumber">The 1-based number of its first record.</param>
    /// <returns>The activity, or <see langword="null"/> when nobody listens.</returns>
    public Activity? StartBatch(string sourceName, int records, long firstRecordNumber)
    {
        var activity = ActivitySource.StartActivity("ingestion.batch", ActivityKind.Internal);
        activity?.SetTag("ingestion.source", sourceName);
        activity?.SetTag("ingestion.batch.records", records);
        activity?.SetTag("ingestion.batch.first_record", firstRecordNumber);
        return activity;
    }

    /// <summary>Records the duration of a batch write.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="duration">How long the write took.</param>
    public void BatchWritten(string sourceName, TimeSpan duration) =>
        _batchDuration.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("ingestion.source", sourceName));

    /// <summary>Starts the span of one HTTP request a source sends.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="method">The HTTP method.</param>
    /// <param name="redactedUrl">The URL with its secrets masked.</param>
    /// <returns>The activity, or <see langword="null"/> when nobody listens.</returns>
    public Activity? StartHttp(string sourceName, string method, string redactedUrl)
    {
        var activity = ActivitySource.StartActivity("ingestion.http", ActivityKind.Client);
        if (activity is not null)
        {
            activity.DisplayName = $"ingestion.http {method}";
            activity.SetTag("ingestion.source", sourceName);
            activity.SetTag("http.request.method", method);
            activity.SetTag("url.full", redactedUrl);
        }

        return activity;
    }

    /// <summary>Records an HTTP request's outcome on the meters and on its span.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="statusCode">The response status, or <see langword="null"/> when no response came.</param>
    /// <param name="error">The failure when no response came.</param>
    /// <param name="activity">The request's span, or <see langword="null"/>.</param>
    public void HttpCompleted(string sourceName, int? statusCode, Exception? error, Activity? activity)
    {
        _httpRequests.Add(
            1,
            new KeyValuePair<string, object?>("ingestion.source", sourceName),
            new KeyValuePair<string, object?>("http.response.status_code", statusCode));
        if (activity is null)
        {
            return;
        }

        activity.SetTag("http.response.status_code", statusCode);
        if (error is not null || statusCode >= 400)
        {
            activity.SetTag("error.type", error?.GetType().FullName ?? statusCode?.ToString(System.Globalization.CultureInfo.InvariantCulture));
            activity.SetStatus(ActivityStatusCode.Error, error?.Message);
        }
    }

    /// <summary>Counts response bytes received by a source.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="bytes">The bytes.</param>
    public void HttpBytes(string sourceName, long bytes)
    {
        if (bytes > 0)
        {
            _httpBytes.Add(bytes, new KeyValuePair<string, object?>("ingestion.source", sourceName));
        }
    }

    /// <summary>Records how late a schedule slot started.</summary>
    /// <param name="schedule">The schedule.</param>
    /// <param name="lag">The delay after the slot time.</param>
    public void ScheduleLag(string schedule, TimeSpan lag) =>
        _scheduleLag.Record(Math.Max(0, lag.TotalSeconds), new KeyValuePair<string, object?>("ingestion.schedule", schedule));

    /// <summary>Updates the sampled counts of a queue, read by the observable gauges.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="pending">Items waiting.</param>
    /// <param name="running">Items claimed.</param>
    /// <param name="dead">Dead items.</param>
    public void QueueSampled(string queue, long pending, long running, long dead) => _queues[queue] = (pending, running, dead);

    /// <inheritdoc />
    public void Dispose()
    {
        ActivitySource.Dispose();
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private IEnumerable<Measurement<long>> ObserveDepth()
    {
        foreach (var (queue, (pending, running, _)) in _queues)
        {
            yield return new Measurement<long>(pending, new KeyValuePair<string, object?>("ingestion.queue", queue), new KeyValuePair<string, object?>("ingestion.queue.state", "pending"));
            yield return new Measurement<long>(running, new KeyValuePair<string, object?>("ingestion.queue", queue), new KeyValuePair<string, object?>("ingestion.queue.state", "running"));
        }
    }

    private IEnumerable<Measurement<long>> ObserveDead() =>
        _queues.Select(q => new Measurement<long>(q.Value.Dead, new KeyValuePair<string, object?>("ingestion.queue", q.Key)));
}
