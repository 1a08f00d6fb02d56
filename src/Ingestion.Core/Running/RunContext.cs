using Microsoft.Extensions.Logging;

namespace Ingestion.Running;

/// <summary>The runtime's context for one attempt: collects rejects and the latest checkpoint between batches.</summary>
internal sealed class RunContext(
    string sourceName,
    Guid runId,
    RunRequest request,
    SourceState state,
    IngestionLimits limits,
    ILogger logger,
    TimeProvider timeProvider) : IngestionContext
{
    private readonly List<RejectedRecord> _pendingRejects = [];

    public override string SourceName { get; } = sourceName;

    public override Guid RunId { get; } = runId;

    public override IngestionMode Mode => request.Mode;

    public override bool IsDryRun => request.DryRun;

    public override string Trigger => request.Trigger;

    public override SourceState State { get; } = state;

    public override IngestionLimits Limits { get; } = limits;

    public override IReadOnlyDictionary<string, string> Parameters => request.Parameters;

    public override ILogger Logger { get; } = logger;

    public override TimeProvider TimeProvider { get; } = timeProvider;

    /// <summary>The latest checkpoint not yet handed to the sink.</summary>
    public SourceCheckpoint? PendingCheckpoint { get; private set; }

    /// <summary>Whether the source called <see cref="NotModified"/>.</summary>
    public bool IsNotModified { get; private set; }

    /// <summary>Rejects not yet handed to the sink.</summary>
    public IReadOnlyList<RejectedRecord> PendingRejects => _pendingRejects;

    /// <summary>Rejects reported in this attempt.</summary>
    public long RejectedCount { get; private set; }

    /// <summary>The run's secrets, masked in rejected records, logs and the error.</summary>
    public Diagnostics.SecretMask Secrets { get; init; } = new();

    public override void AddSecret(string value) => _ = Secrets.Add(value);

    public override string? Redact(string? text) => Secrets.Redact(text);

    public override void Reject(RejectedRecord rejected)
    {
        ArgumentNullException.ThrowIfNull(rejected);
        rejected = Secrets.Redact(rejected);
        _pendingRejects.Add(rejected);
        RejectedCount++;
        Diagnostics.Log.RecordRejected(Logger, SourceName, rejected.Position, rejected.Field, rejected.Reason);
    }

    public override void Checkpoint(SourceCheckpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        PendingCheckpoint = checkpoint;
    }

    public override void NotModified(SourceCheckpoint? checkpoint = null)
    {
        IsNotModified = true;
        if (checkpoint is not null)
        {
            PendingCheckpoint = checkpoint;
        }
    }

    /// <summary>Why the source stopped early, when it did (see <see cref="IngestionContext.StoppedEarly(string)"/>).</summary>
    public string? StoppedEarlyReason { get; private set; }

    public override void StoppedEarly(string reason)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        StoppedEarlyReason = reason;
        Diagnostics.Log.StoppedEarly(Logger, SourceName, reason);
    }

    /// <summary>Where the input-size hints go (shared by the attempts of a run), or <see langword="null"/>.</summary>
    public ProgressHints? Hints { get; init; }

    public override void ReportInputSize(long? totalRecords, long? totalBytes = null, Func<long>? bytesRead = null) =>
        Hints?.Set(totalRecords, totalBytes, bytesRead);

    public override void ReportProgress(string message) => Logger.LogDebug("{SourceName}: {Message}", SourceName, message);

    /// <summary>Takes the pending rejects and checkpoint for the next batch.</summary>
    public (IReadOnlyList<RejectedRecord> Rejects, SourceCheckpoint? Checkpoint) TakePending()
    {
        var rejects = _pendingRejects.ToArray();
        _pendingRejects.Clear();
        var cp = PendingCheckpoint;
        PendingCheckpoint = null;
        return (rejects, cp);
    }
}
