using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingestion.Testing;

/// <summary>
/// An <see cref="IngestionContext"/> for tests: every property is settable, and what the source reports
/// (rejected records, checkpoints, not-modified, stopped-early, progress) is collected in order.
/// </summary>
public sealed class SourceTestContext : IngestionContext
{
    private readonly List<RejectedRecord> _rejected = [];
    private readonly List<SourceTestCheckpoint> _checkpoints = [];
    private readonly List<string> _progress = [];

    /// <summary>Creates a context for a first incremental run of a source named <c>test</c>.</summary>
    public SourceTestContext()
    {
    }

    /// <inheritdoc />
    public override string SourceName => Name;

    /// <summary>The source name the context reports (<see cref="SourceName"/>).</summary>
    public string Name { get; init; } = "test";

    /// <inheritdoc />
    public override Guid RunId => Id;

    /// <summary>The run identifier the context reports (<see cref="RunId"/>).</summary>
    public Guid Id { get; init; } = Guid.NewGuid();

    /// <inheritdoc />
    public override IngestionMode Mode => RunMode;

    /// <summary>The mode the context reports (<see cref="Mode"/>).</summary>
    public IngestionMode RunMode { get; init; } = IngestionMode.Incremental;

    /// <inheritdoc />
    public override bool IsDryRun => DryRun;

    /// <summary>Whether the context reports a dry run (<see cref="IsDryRun"/>).</summary>
    public bool DryRun { get; init; }

    /// <inheritdoc />
    public override string Trigger => RunTrigger;

    /// <summary>The trigger the context reports (<see cref="Trigger"/>).</summary>
    public string RunTrigger { get; init; } = "test";

    /// <inheritdoc />
    public override SourceState State => SavedState;

    /// <summary>The saved state the source starts from (<see cref="State"/>): empty for a first run.</summary>
    public SourceState SavedState { get; init; } = SourceState.Empty;

    /// <inheritdoc />
    public override IngestionLimits Limits => RunLimits;

    /// <summary>The limits the context reports (<see cref="Limits"/>).</summary>
    public IngestionLimits RunLimits { get; init; } = IngestionLimits.None;

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, string> Parameters => RunParameters;

    /// <summary>The run parameters the context reports (<see cref="Parameters"/>).</summary>
    public IReadOnlyDictionary<string, string> RunParameters { get; init; } = new Dictionary<string, string>();

    /// <inheritdoc />
    public override ILogger Logger => RunLogger;

    /// <summary>The logger handed to the source (<see cref="Logger"/>); nothing is logged by default.</summary>
    public ILogger RunLogger { get; init; } = NullLogger.Instance;

    /// <inheritdoc />
    public override TimeProvider TimeProvider => Clock;

    /// <summary>The clock handed to the source (<see cref="TimeProvider"/>): pass a controllable one to test time-dependent sources.</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>How many records the source had yielded so far; set by <see cref="SourceTester"/> as it reads.</summary>
    public long RecordsYielded { get; internal set; }

    /// <summary>The rejected records, in the order reported.</summary>
    public IReadOnlyList<RejectedRecord> Rejected => _rejected;

    /// <summary>The checkpoints, in the order reported, each with the number of records it covers.</summary>
    public IReadOnlyList<SourceTestCheckpoint> Checkpoints => _checkpoints;

    /// <summary>The progress messages, in the order reported.</summary>
    public IReadOnlyList<string> Progress => _progress;

    /// <summary>Whether the source reported <see cref="IngestionContext.NotModified(SourceCheckpoint?)"/>.</summary>
    public bool IsNotModified { get; private set; }

    /// <summary>Why the source stopped early, when it reported <see cref="IngestionContext.StoppedEarly(string)"/>.</summary>
    public string? StoppedEarlyReason { get; private set; }

    /// <inheritdoc />
    public override void Reject(RejectedRecord rejected)
    {
        ArgumentNullException.ThrowIfNull(rejected);
        if (string.IsNullOrWhiteSpace(rejected.Position))
        {
            throw new SourceAssertionException($"Source '{SourceName}' rejected a record without a position (reason: {rejected.Reason}); every rejected record must say where it is in the input.");
        }

        if (string.IsNullOrWhiteSpace(rejected.Reason))
        {
            throw new SourceAssertionException($"Source '{SourceName}' rejected the record at {rejected.Position} without a reason.");
        }

        _rejected.Add(rejected);
    }

    /// <inheritdoc />
    public override void Checkpoint(SourceCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        _checkpoints.Add(new SourceTestCheckpoint(checkpoint, RecordsYielded, _rejected.Count));
    }

    /// <inheritdoc />
    public override void NotModified(SourceCheckpoint? checkpoint = null)
    {
        if (RecordsYielded > 0)
        {
            throw new SourceAssertionException($"Source '{SourceName}' reported NotModified after yielding {RecordsYielded} records; it may only do so before the first record.");
        }

        IsNotModified = true;
        if (checkpoint is not null)
        {
            _checkpoints.Add(new SourceTestCheckpoint(checkpoint, 0, _rejected.Count));
        }
    }

    /// <inheritdoc />
    public override void StoppedEarly(string reason) => StoppedEarlyReason = reason;

    /// <inheritdoc />
    public override void ReportProgress(string message) => _progress.Add(message);
}

/// <summary>A checkpoint a source reported, with how much of the run it covers.</summary>
/// <param name="Checkpoint">The checkpoint.</param>
/// <param name="RecordsBefore">How many records had been yielded when it was reported (it covers exactly those).</param>
/// <param name="RejectedBefore">How many records had been rejected when it was reported.</param>
public sealed record SourceTestCheckpoint(SourceCheckpoint Checkpoint, long RecordsBefore, int RejectedBefore);
