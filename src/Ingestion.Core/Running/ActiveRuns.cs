using System.Collections.Concurrent;
using Ingestion.Operations;

namespace Ingestion.Running;

/// <summary>
/// The runs going on in this host process, with their latest progress, each cancellable on its own.
/// The runner registers every run here (see <see cref="IngestionRunner"/>); <see cref="IIngestionOperations"/> reads it.
/// </summary>
public sealed class ActiveRuns : IIngestionObserver
{
    private readonly ConcurrentDictionary<Guid, Entry> _runs = new();

    /// <summary>The runs going on now, oldest first.</summary>
    /// <returns>A snapshot.</returns>
    public IReadOnlyList<ActiveRun> List() =>
        _runs.Values.Select(e => e.Snapshot()).OrderBy(r => r.StartedAt).ThenBy(r => r.Source, StringComparer.Ordinal).ToList();

    /// <summary>Whether a run of a source is going on in this process.</summary>
    /// <param name="sourceName">The source.</param>
    /// <returns><see langword="true"/> when one is.</returns>
    public bool IsRunning(string sourceName) => _runs.Values.Any(e => string.Equals(e.Source, sourceName, StringComparison.Ordinal));

    /// <summary>Asks a run of this process to stop; it ends as <see cref="IngestionStatus.Cancelled"/>, its committed batches kept.</summary>
    /// <param name="runId">The run.</param>
    /// <returns><see langword="false"/> when no run of this process has that identifier (it ended, or runs elsewhere).</returns>
    public bool Cancel(Guid runId)
    {
        if (!_runs.TryGetValue(runId, out var entry))
        {
            return false;
        }

        entry.Cancel();
        return true;
    }

    /// <summary>Registers a run; dispose the handle when the run ends.</summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="runId">The run.</param>
    /// <param name="request">The run's settings.</param>
    /// <param name="startedAt">When it started.</param>
    /// <param name="cancellationToken">The caller's token; the handle's token also fires on <see cref="Cancel"/>.</param>
    /// <returns>The handle.</returns>
    internal Handle Register(string sourceName, Guid runId, RunRequest request, DateTimeOffset startedAt, CancellationToken cancellationToken)
    {
        var entry = new Entry(sourceName, runId, request, startedAt, cancellationToken);
        _runs[runId] = entry;
        return new Handle(this, entry);
    }

    /// <inheritdoc />
    void IIngestionObserver.OnProgress(IngestionProgress progress)
    {
        ArgumentNullException.ThrowIfNull(progress);
        if (_runs.TryGetValue(progress.RunId, out var entry))
        {
            entry.Progress = progress;
        }
    }

    /// <summary>A registered run: its cancellation token; disposing it unregisters the run.</summary>
    internal sealed class Handle(ActiveRuns owner, Entry entry) : IDisposable
    {
        /// <summary>Fires when the caller cancels or <see cref="Cancel"/> is called.</summary>
        public CancellationToken Token => entry.Token;

        /// <summary>
        /// Takes the run off the list once its outcome is decided: from then on it is neither listed nor cancellable,
        /// while the runner records that outcome (state, job row, observers).
        /// </summary>
        public void Ended() => owner._runs.TryRemove(new KeyValuePair<Guid, Entry>(entry.RunId, entry));

        public void Dispose()
        {
            Ended();
            entry.Dispose();
        }
    }

    internal sealed class Entry(string source, Guid runId, RunRequest request, DateTimeOffset startedAt, CancellationToken callerToken) : IDisposable
    {
        private readonly CancellationTokenSource _cts = CancellationTokenSource.CreateLinkedTokenSource(callerToken);
        private volatile IngestionProgress? _progress;

        public string Source { get; } = source;

        public Guid RunId { get; } = runId;

        public CancellationToken Token => _cts.Token;

        public IngestionProgress? Progress
        {
            get => _progress;
            set => _progress = value;
        }

        public void Cancel()
        {
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The run ended in the meantime.
            }
        }

        public ActiveRun Snapshot() => new()
        {
            RunId = RunId,
            Source = Source,
            Trigger = request.Trigger,
            RequestedBy = request.RequestedBy,
            IsDryRun = request.DryRun,
            StartedAt = startedAt,
            Progress = _progress,
            CancellationRequested = _cts.IsCancellationRequested,
        };

        public void Dispose() => _cts.Dispose();
    }
}
