using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingestion.Sources.Tests;

/// <summary>A context for calling a source or the HTTP layer directly, recording what they report.</summary>
internal sealed class TestIngestionContext : IngestionContext
{
    public TestIngestionContext(string sourceName = "test-source", SourceState? state = null, IngestionMode mode = IngestionMode.Incremental, TimeProvider? time = null, IngestionLimits? limits = null)
    {
        SourceName = sourceName;
        State = state ?? SourceState.Empty;
        Mode = mode;
        TimeProvider = time ?? TimeProvider.System;
        Limits = limits ?? IngestionLimits.None;
    }

    public override string SourceName { get; }

    public override Guid RunId { get; } = Guid.NewGuid();

    public override IngestionMode Mode { get; }

    public override bool IsDryRun => false;

    public override string Trigger => "test";

    public override SourceState State { get; }

    public override IngestionLimits Limits { get; }

    public override IReadOnlyDictionary<string, string> Parameters { get; } = new Dictionary<string, string>();

    public override ILogger Logger { get; } = NullLogger.Instance;

    public override TimeProvider TimeProvider { get; }

    public List<RejectedRecord> Rejected { get; } = [];

    public List<SourceCheckpoint> Checkpoints { get; } = [];

    public bool IsNotModified { get; private set; }

    public SourceCheckpoint? NotModifiedCheckpoint { get; private set; }

    public string? StoppedEarlyReason { get; private set; }

    public override void Reject(RejectedRecord rejected) => Rejected.Add(rejected);

    public override void Checkpoint(SourceCheckpoint checkpoint) => Checkpoints.Add(checkpoint);

    public override void NotModified(SourceCheckpoint? checkpoint = null)
    {
        IsNotModified = true;
        NotModifiedCheckpoint = checkpoint;
    }

    public override void StoppedEarly(string reason) => StoppedEarlyReason = reason;
}

/// <summary>A clock whose timers run faster than real time (delays scaled down), recording the delays asked for.</summary>
internal sealed class ScaledTimeProvider(double scale) : TimeProvider
{
    private readonly List<TimeSpan> _delays = [];

    public IReadOnlyList<TimeSpan> Delays
    {
        get
        {
            lock (_delays)
            {
                return _delays.ToList();
            }
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        if (dueTime > TimeSpan.Zero && dueTime != Timeout.InfiniteTimeSpan)
        {
            lock (_delays)
            {
                _delays.Add(dueTime);
            }
        }

        return base.CreateTimer(callback, state, Scale(dueTime), Scale(period));
    }

    private TimeSpan Scale(TimeSpan t) => t <= TimeSpan.Zero || t == Timeout.InfiniteTimeSpan ? t : TimeSpan.FromTicks(Math.Max(1, (long)(t.Ticks * scale)));
}
