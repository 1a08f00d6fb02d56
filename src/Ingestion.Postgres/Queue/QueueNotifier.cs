using Ingestion.Postgres.Sql;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Ingestion.Postgres.Queue;

/// <summary>
/// One LISTEN connection per store, shared by every subscriber: a notification on the channel whose
/// payload is a queue name wakes that queue's subscribers. After a lost connection it reconnects and
/// wakes every subscriber (work may have arrived meanwhile).
/// </summary>
internal sealed partial class QueueNotifier : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _channel;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<Action>> _subscribers = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _loop;
    private int _disposed;

    public QueueNotifier(NpgsqlDataSource dataSource, string channel, ILogger logger)
    {
        _dataSource = dataSource;
        _channel = channel;
        _logger = logger;
    }

    public async Task<IAsyncDisposable> SubscribeAsync(string queue, Action onWork, CancellationToken cancellationToken)
    {
        Task listening;
        lock (_gate)
        {
            if (!_subscribers.TryGetValue(queue, out var list))
            {
                _subscribers[queue] = list = [];
            }

            list.Add(onWork);
            _loop ??= Task.Run(() => ListenAsync(_stop.Token), CancellationToken.None);
            listening = _listening.Task;
        }

        // Wait until LISTEN is in effect, so that no notification sent after this call returns is missed.
        try
        {
            await listening.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The listener keeps retrying; the worker's poll interval covers the gap.
        }

        return new Subscription(this, queue, onWork);
    }

    private void Unsubscribe(string queue, Action onWork)
    {
        lock (_gate)
        {
            if (_subscribers.TryGetValue(queue, out var list))
            {
                list.Remove(onWork);
                if (list.Count == 0)
                {
                    _subscribers.Remove(queue);
                }
            }
        }
    }

    private void Dispatch(string? queue)
    {
        Action[] targets;
        lock (_gate)
        {
            targets = queue is null
                ? _subscribers.Values.SelectMany(l => l).ToArray()
                : _subscribers.TryGetValue(queue, out var list) ? list.ToArray() : [];
        }

        foreach (var a in targets)
        {
            a();
        }
    }

    private async Task ListenAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using (conn.ConfigureAwait(false))
                {
                    conn.Notification += (_, e) => Dispatch(e.Payload);
                    var listen = new NpgsqlCommand("LISTEN " + PgIdentifier.Quote(_channel, "queue channel"), conn);
                    await using (listen.ConfigureAwait(false))
                    {
                        await listen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    lock (_gate)
                    {
                        _listening.TrySetResult();
                    }

                    if (failures > 0)
                    {
                        Dispatch(null);
                    }

                    failures = 0;
                    while (true)
                    {
                        if (!await conn.WaitAsync(30_000, cancellationToken).ConfigureAwait(false))
                        {
                            var ping = new NpgsqlCommand("SELECT 1", conn);
                            await using (ping.ConfigureAwait(false))
                            {
                                await ping.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                            }
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                failures++;
                var delay = TimeSpan.FromMilliseconds(Math.Min(30_000, 250 * Math.Pow(2, Math.Min(failures, 8))));
                LogListenFailed(_logger, e, _channel, delay.TotalMilliseconds);
                try
                {
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    [LoggerMessage(7100, LogLevel.Warning, "The queue listener on channel {Channel} lost its connection; reconnecting in {DelayMs} ms (workers poll meanwhile)")]
    private static partial void LogListenFailed(ILogger logger, Exception exception, string channel, double delayMs);

    private sealed class Subscription(QueueNotifier owner, string queue, Action onWork) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            owner.Unsubscribe(queue, onWork);
            return ValueTask.CompletedTask;
        }
    }
}
