using System.Collections.Concurrent;
using System.Net;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace Ingestion.Sources.Http;

/// <summary>
/// Process-wide HTTP state per source, held by the container as a singleton: the resilience pipeline (so
/// the circuit breaker remembers failures across runs) and the requests counted per day (so retried
/// attempts and overlapping runs never overspend the daily budget).
/// </summary>
internal sealed class SourceHttpRegistry
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public (ResiliencePipeline<HttpResponseMessage> Pipeline, DayCounter Counter) Get(string sourceName, SourceHttpOptions options, TimeProvider time)
    {
        var entry = _entries.AddOrUpdate(
            sourceName,
            _ => new Entry(options, Build(options, time), new DayCounter()),
            (_, existing) => ReferenceEquals(existing.Options, options) ? existing : existing with { Options = options, Pipeline = Build(options, time) });
        return (entry.Pipeline, entry.Counter);
    }

    internal static bool IsTransientStatus(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError;

    internal static TimeSpan? RetryAfterOf(HttpResponseMessage response, TimeProvider time)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        }

        if (header?.Date is { } date)
        {
            var wait = date - time.GetUtcNow();
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }

        return null;
    }

    private static bool IsFailure(Outcome<HttpResponseMessage> outcome) => outcome switch
    {
        { Exception: HttpRequestException or TimeoutRejectedException } => true,
        { Result: { } r } => IsTransientStatus(r.StatusCode),
        _ => false,
    };

    private static ResiliencePipeline<HttpResponseMessage> Build(SourceHttpOptions options, TimeProvider time)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time };
        if (options.MaxRetryAttempts > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = options.MaxRetryAttempts,
                Delay = options.RetryDelay,
                MaxDelay = options.MaxRetryDelay > TimeSpan.Zero ? options.MaxRetryDelay : null,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = args => ValueTask.FromResult(
                    IsFailure(args.Outcome)
                    && !(args.Outcome.Result is { } r && RetryAfterOf(r, time) is { } wait && wait > options.MaxRetryDelay)),
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Result is { } r ? RetryAfterOf(r, time) : null),
                OnRetry = args =>
                {
                    args.Outcome.Result?.Dispose();
                    return ValueTask.CompletedTask;
                },
            });
        }

        if (options.CircuitBreaker is { Enabled: true } cb)
        {
            builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
            {
                FailureRatio = cb.FailureRatio,
                MinimumThroughput = cb.MinimumThroughput,
                SamplingDuration = cb.SamplingDuration,
                BreakDuration = cb.BreakDuration,
                ShouldHandle = args => ValueTask.FromResult(IsFailure(args.Outcome)),
            });
        }

        builder.AddTimeout(options.RequestTimeout);
        return builder.Build();
    }

    private sealed record Entry(SourceHttpOptions Options, ResiliencePipeline<HttpResponseMessage> Pipeline, DayCounter Counter);

    /// <summary>Requests sent on one day by one source in this process (at least what its saved state says).</summary>
    internal sealed class DayCounter
    {
        private readonly object _gate = new();
        private string? _day;
        private int _count;

        public int Get(string day)
        {
            lock (_gate)
            {
                return _day == day ? _count : 0;
            }
        }

        public void Seed(string day, int saved)
        {
            lock (_gate)
            {
                if (_day != day)
                {
                    _day = day;
                    _count = saved;
                }
                else if (saved > _count)
                {
                    _count = saved;
                }
            }
        }

        public void Increment(string day)
        {
            lock (_gate)
            {
                if (_day != day)
                {
                    _day = day;
                    _count = 0;
                }

                _count++;
            }
        }
    }
}
