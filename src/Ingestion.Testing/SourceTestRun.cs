namespace Ingestion.Testing;

/// <summary>What one test run of a source produced.</summary>
/// <typeparam name="TRecord">The record type.</typeparam>
public sealed class SourceTestRun<TRecord>
    where TRecord : class
{
    internal SourceTestRun(SourceTestContext context, IReadOnlyList<TRecord> records, bool stoppedByCap, Exception? failure = null)
    {
        Context = context;
        Failure = failure;
        Records = records;
        StoppedByCap = stoppedByCap;
        var state = context.SavedState;
        foreach (var checkpoint in context.Checkpoints)
        {
            state = state.Apply(checkpoint.Checkpoint);
        }

        State = state;
    }

    /// <summary>The context the source ran against (its rejected records, checkpoints, progress...).</summary>
    public SourceTestContext Context { get; }

    /// <summary>The records yielded, in order.</summary>
    public IReadOnlyList<TRecord> Records { get; }

    /// <summary>The rejected records, in order.</summary>
    public IReadOnlyList<RejectedRecord> Rejected => Context.Rejected;

    /// <summary>The checkpoints, in order, each with the number of records it covers.</summary>
    public IReadOnlyList<SourceTestCheckpoint> Checkpoints => Context.Checkpoints;

    /// <summary>The last checkpoint, or <see langword="null"/> when the source reported none.</summary>
    public SourceTestCheckpoint? LastCheckpoint => Context.Checkpoints.Count > 0 ? Context.Checkpoints[^1] : null;

    /// <summary>The state the runtime would save at the end of the run: the starting state with every checkpoint applied.</summary>
    public SourceState State { get; }

    /// <summary>Whether the source reported that nothing changed.</summary>
    public bool NotModified => Context.IsNotModified;

    /// <summary>What the source threw, or <see langword="null"/> when it read to its end (or to the cap).</summary>
    public Exception? Failure { get; }

    /// <summary>Whether the run stopped at <see cref="SourceTestOptions.MaxRecords"/> (as an interrupted run would).</summary>
    public bool StoppedByCap { get; }

    /// <summary>The records not covered by any checkpoint: a run that failed now would read them again.</summary>
    public IReadOnlyList<TRecord> RecordsAfterLastCheckpoint => Records.Skip((int)(LastCheckpoint?.RecordsBefore ?? 0)).ToList();

    /// <summary>The state saved at one checkpoint: the starting state with the checkpoints up to it applied.</summary>
    /// <param name="index">The checkpoint's index in <see cref="Checkpoints"/>.</param>
    /// <returns>The state a run resuming from that checkpoint starts with.</returns>
    public SourceState StateAt(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Checkpoints.Count);
        var state = Context.SavedState;
        for (var i = 0; i <= index; i++)
        {
            state = state.Apply(Checkpoints[i].Checkpoint);
        }

        return state;
    }
}

/// <summary>How <see cref="SourceTester"/> runs a source.</summary>
public sealed record SourceTestOptions
{
    /// <summary>The saved state to start from (empty: a first run).</summary>
    public SourceState State { get; init; } = SourceState.Empty;

    /// <summary>Incremental or full refresh (a full refresh hides the saved cursor and validators, as the runtime does).</summary>
    public IngestionMode Mode { get; init; } = IngestionMode.Incremental;

    /// <summary>Stop reading after this many records, as an interrupted run (or the runtime's record cap) would.</summary>
    public long? MaxRecords { get; init; }

    /// <summary>The source name the context reports.</summary>
    public string SourceName { get; init; } = "test";

    /// <summary>Run parameters.</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();

    /// <summary>Limits the context reports to the source.</summary>
    public IngestionLimits Limits { get; init; } = IngestionLimits.None;

    /// <summary>The clock handed to the source.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Whether the context reports a dry run.</summary>
    public bool DryRun { get; init; }

    /// <summary>The most time the run may take; the source's token is cancelled then and the run fails. Default 30 seconds.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// The source threw during a test run. <see cref="Run"/> keeps what it produced before (records, rejected records,
/// checkpoints, the state the runtime would have saved), and <see cref="Exception.InnerException"/> is what it threw.
/// </summary>
/// <typeparam name="TRecord">The record type.</typeparam>
public sealed class SourceRunFailedException<TRecord> : Exception
    where TRecord : class
{
    /// <summary>Creates the exception.</summary>
    public SourceRunFailedException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong.</param>
    public SourceRunFailedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">What the source threw.</param>
    public SourceRunFailedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    internal SourceRunFailedException(SourceTestRun<TRecord> run, Exception failure)
        : base($"Source '{run.Context.SourceName}' failed after {run.Records.Count} records and {run.Rejected.Count} rejected records: {failure.Message}", failure)
    {
        Run = run;
    }

    /// <summary>What the run produced before the source threw (<see cref="SourceTestRun{TRecord}.Failure"/> is the exception).</summary>
    public SourceTestRun<TRecord>? Run { get; }
}

/// <summary>A source did not behave as its test expected; the message says what, where.</summary>
public sealed class SourceAssertionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SourceAssertionException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong.</param>
    public SourceAssertionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public SourceAssertionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
