using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingestion.Queue;

/// <summary>
/// Drains one queue: claims items in batches under a lease, runs the handler on up to
/// <see cref="WorkQueueOptions.Concurrency"/> items at once, completes them in batches (piggy-backed
/// on the next claim), renews the leases of held items, rescues the expired leases of dead workers,
/// and sleeps when the queue is empty until a notification (or the poll interval) wakes it.
/// At stop it claims nothing more, lets in-flight items finish within the grace period, then cancels
/// them and returns every unfinished item to the queue.
/// </summary>
public sealed partial class WorkQueueWorker : IHostedService, IAsyncDisposable
{
    private static readonly TimeSpan CompletionFlushDelay = TimeSpan.FromMilliseconds(250);
    private readonly string _queue;
    private readonly WorkQueueOptions _options;
    private readonly IWorkQueueStore _store;
    private readonly Func<WorkItem, CancellationToken, Task> _handle;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _owner;
    private readonly ConcurrentDictionary<string, WorkItemHandle> _held = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<WorkItemHandle> _completed = new();
    private readonly ConcurrentQueue<WorkItemFailure> _failed = new();
    private readonly ConcurrentQueue<WorkItemHandle> _released = new();
    private readonly Channel<WorkItem> _ready = Channel.CreateUnbounded<WorkItem>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly Channel<bool> _signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _hardStop = new();
    private readonly CancellationTokenSource _handlers = new();
    private Task? _pump;
    private Task? _heartbeat;
    private Task[] _consumers = [];
    private IAsyncDisposable? _subscription;
    private int _active;
    private int _notified;
    private long _firstUnflushedTicks;
    private long _processed;
    private long _failures;
    private int _stopped;

    /// <summary>Creates a worker (the host creates it through <c>AddWorkQueue</c>; tests and tools may create it directly).</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="options">The settings (validated here).</param>
    /// <param name="store">The queue store.</param>
    /// <param name="handle">Processes one item.</param>
    /// <param name="timeProvider">The clock, or <see langword="null"/> for the system clock.</param>
    /// <param name="logger">A logger, or <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">The settings are invalid.</exception>
    public WorkQueueWorker(string queue, WorkQueueOptions options, IWorkQueueStore store, Func<WorkItem, CancellationToken, Task> handle, TimeProvider? timeProvider = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(handle);
        if (options.Validate(queue) is { Count: > 0 } errors)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }

        _queue = queue;
        _options = options;
        _store = store;
        _handle = handle;
        _time = timeProvider ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _owner = string.IsNullOrWhiteSpace(options.WorkerId)
            ? $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}"
            : options.WorkerId;
    }

    /// <summary>The identity recorded on this worker's leases.</summary>
    public string Owner => _owner;

    /// <summary>The queue drained.</summary>
    public string Queue => _queue;

    /// <summary>Items this worker processed successfully.</summary>
    public long Processed => Interlocked.Read(ref _processed);

    /// <summary>Attempts of this worker that failed.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    private int LowWater => _options.Concurrency;

    private int HighWater => _options.Concurrency + _options.EffectiveBatchSize;

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_pump is not null)
        {
            throw new InvalidOperationException($"The worker of queue '{_queue}' is already started.");
        }

        _subscription = await _store.SubscribeAsync(_queue, OnNotified, cancellationToken).ConfigureAwait(false);
        _consumers = Enumerable.Range(0, _options.Concurrency).Select(_ => Task.Run(ConsumeAsync, CancellationToken.None)).ToArray();
        _pump = Task.Run(PumpAsync, CancellationToken.None);
        _heartbeat = Task.Run(HeartbeatAsync, CancellationToken.None);
        QueueLog.Started(_logger, _queue, _owner, _options.Concurrency, _options.EffectiveBatchSize);
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_pump is null || Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        using var hardStop = cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _hardStop);
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _pump.ConfigureAwait(false);
        _ready.Writer.TryComplete();

        var consumers = Task.WhenAll(_consumers);
        try
        {
            await consumers.WaitAsync(_options.ShutdownGracePeriod, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            QueueLog.GraceOver(_logger, _queue, Volatile.Read(ref _active));
            await _handlers.CancelAsync().ConfigureAwait(false);
            try
            {
                await consumers.WaitAsync(cancellationToken.IsCancellationRequested ? TimeSpan.FromSeconds(5) : Timeout.InfiniteTimeSpan, _time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                QueueLog.HandlersIgnoredCancellation(_logger, _queue);
            }
        }

        while (_ready.Reader.TryRead(out var unstarted))
        {
            _released.Enqueue(unstarted.Handle);
        }

        using var flushTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(15), _time);
        try
        {
            await FlushAsync(force: true, flushTimeout.Token).ConfigureAwait(false);
            var release = Drain(_released);
            if (release.Count > 0)
            {
                var n = await _store.ReleaseAsync(_queue, _owner, release, flushTimeout.Token).ConfigureAwait(false);
                Forget(release);
                QueueLog.Released(_logger, _queue, n);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            QueueLog.FinalFlushFailed(_logger, e, _queue, _held.Count);
        }

        await _hardStop.CancelAsync().ConfigureAwait(false);
        if (_heartbeat is not null)
        {
            await _heartbeat.ConfigureAwait(false);
        }

        if (_subscription is not null)
        {
            await _subscription.DisposeAsync().ConfigureAwait(false);
        }

        QueueLog.Stopped(_logger, _queue, _owner, Processed, Failures);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _stopping.Dispose();
        _hardStop.Dispose();
        _handlers.Dispose();
    }

    private void OnNotified()
    {
        Volatile.Write(ref _notified, 1);
        _signal.Writer.TryWrite(true);
    }

    private async Task PumpAsync()
    {
        var stopping = _stopping.Token;
        var io = _hardStop.Token;
        var empty = false;
        var errors = 0;
        DateTimeOffset? nextDue = null;
        var nextRescue = _time.GetUtcNow();
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                if (Interlocked.Exchange(ref _notified, 0) == 1)
                {
                    empty = false;
                }

                if (await FlushFailuresAsync(io).ConfigureAwait(false))
                {
                    // A retry is now scheduled: look again, so that the next due time includes it.
                    empty = false;
                }

                var active = Volatile.Read(ref _active);
                if (!empty && active <= LowWater)
                {
                    var complete = Drain(_completed);
                    var want = HighWater - active;
                    ClaimResult result;
                    try
                    {
                        result = await _store.ClaimAsync(new ClaimRequest(_queue, _owner, want, _options.Lease) { Complete = complete }, io).ConfigureAwait(false);
                    }
                    catch
                    {
                        // The completions rode on the failed claim: keep them for the next one. Dropped here,
                        // their items would stay held (and their leases renewed) without ever being completed.
                        Requeue(complete);
                        throw;
                    }

                    Forget(complete);
                    Interlocked.Exchange(ref _firstUnflushedTicks, 0);
                    foreach (var item in result.Items)
                    {
                        _held[item.Key] = item.Handle;
                        Interlocked.Increment(ref _active);
                        _ready.Writer.TryWrite(item);
                    }

                    if (result.Items.Count < want)
                    {
                        empty = true;
                        nextDue = await _store.NextDueAsync(_queue, io).ConfigureAwait(false);
                    }
                }
                else if (!_completed.IsEmpty && (_completed.Count >= _options.EffectiveBatchSize || active == 0 || empty || CompletionsAreStale()))
                {
                    await FlushCompletionsAsync(io).ConfigureAwait(false);
                }

                var now = _time.GetUtcNow();
                if (now >= nextRescue)
                {
                    var rescued = await _store.RescueExpiredAsync(_queue, _options.MaxAttempts, io).ConfigureAwait(false);
                    if (rescued.Requeued + rescued.Dead > 0)
                    {
                        QueueLog.Rescued(_logger, _queue, rescued.Requeued, rescued.Dead);
                        empty = false;
                    }

                    nextRescue = now + _options.EffectiveRescueInterval;
                }

                errors = 0;
                var wait = nextRescue - now;
                if (empty)
                {
                    wait = Min(wait, _options.PollInterval);
                    if (nextDue is { } due)
                    {
                        wait = Min(wait, due - now + TimeSpan.FromMilliseconds(5));
                    }
                }
                else if (Volatile.Read(ref _active) <= LowWater)
                {
                    continue;
                }

                if (!_completed.IsEmpty)
                {
                    wait = Min(wait, CompletionFlushDelay);
                }

                if (wait > TimeSpan.Zero && !await WaitForSignalAsync(wait, stopping).ConfigureAwait(false))
                {
                    empty = false;
                }
                else if (wait <= TimeSpan.Zero)
                {
                    empty = false;
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested || io.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                errors++;
                var delay = TimeSpan.FromMilliseconds(Math.Min(30_000, 100 * Math.Pow(2, Math.Min(errors, 10))));
                QueueLog.PumpFailed(_logger, e, _queue, delay.TotalMilliseconds);
                try
                {
                    await Task.Delay(delay, _time, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    private bool CompletionsAreStale()
    {
        var first = Interlocked.Read(ref _firstUnflushedTicks);
        return first != 0 && _time.GetTimestamp() - first >= (long)(CompletionFlushDelay.TotalSeconds * _time.TimestampFrequency);
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private async Task<bool> WaitForSignalAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(wait);
        try
        {
            return await _signal.Reader.ReadAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private async Task ConsumeAsync()
    {
        var reader = _ready.Reader;
        while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }

            if (reader.TryRead(out var item))
            {
                await RunOneAsync(item).ConfigureAwait(false);
            }
        }
    }

    private async Task RunOneAsync(WorkItem item)
    {
        try
        {
            await _handle(item, _handlers.Token).ConfigureAwait(false);
            _completed.Enqueue(item.Handle);
            Interlocked.CompareExchange(ref _firstUnflushedTicks, _time.GetTimestamp(), 0);
            Interlocked.Increment(ref _processed);
        }
        catch (OperationCanceledException) when (_handlers.IsCancellationRequested)
        {
            _released.Enqueue(item.Handle);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Interlocked.Increment(ref _failures);
            var delay = _options.RetryDelay(item.Attempt, Random.Shared.NextDouble());
            var error = Describe(e);
            QueueLog.ItemFailed(_logger, _queue, item.Key, item.Attempt, error);
            _failed.Enqueue(new WorkItemFailure(item.Handle, error, delay));
        }
        finally
        {
            Interlocked.Decrement(ref _active);
            _signal.Writer.TryWrite(true);
        }
    }

    private async Task HeartbeatAsync()
    {
        var token = _hardStop.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.EffectiveHeartbeatInterval, _time, token).ConfigureAwait(false);
                var held = _held.Values.ToList();
                if (held.Count > 0)
                {
                    var renewed = await _store.ExtendLeaseAsync(_queue, _owner, held, _options.Lease, token).ConfigureAwait(false);
                    if (renewed < held.Count)
                    {
                        QueueLog.LeasesLost(_logger, _queue, held.Count - renewed, held.Count);
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                QueueLog.HeartbeatFailed(_logger, e, _queue);
            }
        }
    }

    private async Task FlushAsync(bool force, CancellationToken cancellationToken)
    {
        await FlushFailuresAsync(cancellationToken).ConfigureAwait(false);
        if (force || _completed.Count >= _options.EffectiveBatchSize)
        {
            await FlushCompletionsAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task FlushCompletionsAsync(CancellationToken cancellationToken)
    {
        var complete = Drain(_completed);
        Interlocked.Exchange(ref _firstUnflushedTicks, 0);
        if (complete.Count == 0)
        {
            return;
        }

        try
        {
            await _store.CompleteAsync(_queue, _owner, complete, cancellationToken).ConfigureAwait(false);
            Forget(complete);
        }
        catch
        {
            Requeue(complete);
            throw;
        }
    }

    private void Requeue(List<WorkItemHandle> completions)
    {
        foreach (var h in completions)
        {
            _completed.Enqueue(h);
        }

        if (completions.Count > 0)
        {
            Interlocked.CompareExchange(ref _firstUnflushedTicks, _time.GetTimestamp(), 0);
        }
    }

    private async Task<bool> FlushFailuresAsync(CancellationToken cancellationToken)
    {
        var failures = Drain(_failed);
        if (failures.Count == 0)
        {
            return false;
        }

        try
        {
            var result = await _store.FailAsync(_queue, _owner, _options.MaxAttempts, failures, cancellationToken).ConfigureAwait(false);
            Forget(failures.Select(f => f.Handle));
            if (result.Dead > 0)
            {
                QueueLog.ItemsDead(_logger, _queue, result.Dead);
            }

            return true;
        }
        catch
        {
            foreach (var f in failures)
            {
                _failed.Enqueue(f);
            }

            throw;
        }
    }

    private void Forget(IEnumerable<WorkItemHandle> handles)
    {
        foreach (var h in handles)
        {
            _held.TryRemove(new KeyValuePair<string, WorkItemHandle>(h.Key, h));
        }
    }

    private static List<T> Drain<T>(ConcurrentQueue<T> queue)
    {
        var list = new List<T>(queue.Count);
        while (queue.TryDequeue(out var x))
        {
            list.Add(x);
        }

        return list;
    }

    private static string Describe(Exception e)
    {
        var text = $"{e.GetType().FullName}: {e.Message}";
        if (e.InnerException is { } inner)
        {
            text += $" ---> {inner.GetType().FullName}: {inner.Message}";
        }

        return text.Length <= 4000 ? text : text[..4000];
    }
}
