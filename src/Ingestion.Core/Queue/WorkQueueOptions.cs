using System.Text.RegularExpressions;

namespace Ingestion.Queue;

/// <summary>Settings of the workers of one queue, bound from <c>Ingestion:Queues:&lt;queue&gt;</c> (named options, by queue).</summary>
public sealed partial class WorkQueueOptions
{
    /// <summary>The configuration section under <c>Ingestion</c> that holds one child per queue.</summary>
    public const string SectionName = "Queues";

    /// <summary>Items processed at once by this host.</summary>
    public int Concurrency { get; set; } = 1;

    /// <summary>Items claimed (and completed) per round trip; 0 means the same as <see cref="Concurrency"/>.</summary>
    public int BatchSize { get; set; }

    /// <summary>How long a claim holds without a heartbeat before other workers rescue the item.</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the leases of held items are renewed; zero means a third of <see cref="Lease"/>.</summary>
    public TimeSpan HeartbeatInterval { get; set; }

    /// <summary>How often this host looks for expired leases of the queue; zero means half of <see cref="Lease"/>.</summary>
    public TimeSpan RescueInterval { get; set; }

    /// <summary>Attempts after which an item is dead (the failing attempts and the rescues of a dead worker count).</summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>The delay before the first retry; each further retry waits twice as long, up to <see cref="RetryMaxDelay"/>.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The longest delay between retries.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long an idle worker waits for a notification before looking again (a safety net; new work wakes it at once).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>At shutdown, how long in-flight items may finish before they are cancelled and returned to the queue.</summary>
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The worker's identity on its leases; empty means host name, process id and a random suffix.</summary>
    public string? WorkerId { get; set; }

    /// <summary>The claim batch in effect.</summary>
    public int EffectiveBatchSize => BatchSize > 0 ? BatchSize : Math.Max(1, Concurrency);

    /// <summary>The heartbeat interval in effect.</summary>
    public TimeSpan EffectiveHeartbeatInterval => HeartbeatInterval > TimeSpan.Zero ? HeartbeatInterval : Lease / 3;

    /// <summary>The rescue interval in effect.</summary>
    public TimeSpan EffectiveRescueInterval => RescueInterval > TimeSpan.Zero ? RescueInterval : Lease / 2;

    /// <summary>The delay before the retry that follows failed attempt <paramref name="attempt"/>: exponential, capped, with ±20% jitter.</summary>
    /// <param name="attempt">The attempt that failed, from 1.</param>
    /// <param name="jitter">A number in [0, 1) choosing the jitter (0.5 is none).</param>
    /// <returns>The delay.</returns>
    public TimeSpan RetryDelay(int attempt, double jitter)
    {
        var exponent = Math.Clamp(attempt - 1, 0, 40);
        var ms = Math.Min(RetryMaxDelay.TotalMilliseconds, RetryBaseDelay.TotalMilliseconds * Math.Pow(2, exponent));
        ms *= 0.8 + (0.4 * Math.Clamp(jitter, 0, 1));
        return TimeSpan.FromMilliseconds(Math.Min(ms, RetryMaxDelay.TotalMilliseconds));
    }

    /// <summary>Returns the problems with these settings, each naming the setting.</summary>
    /// <param name="queue">The queue name (for the messages).</param>
    /// <returns>The problems; empty when valid.</returns>
    public IReadOnlyList<string> Validate(string queue)
    {
        var p = $"Ingestion:Queues:{queue}";
        var errors = new List<string>();
        if (QueueNameProblem(queue) is { } name)
        {
            errors.Add(name);
        }

        if (Concurrency is < 1 or > 1024)
        {
            errors.Add($"{p}:Concurrency must be between 1 and 1024 (was {Concurrency}).");
        }

        if (BatchSize is < 0 or > 10_000)
        {
            errors.Add($"{p}:BatchSize must be between 0 and 10000 (was {BatchSize}).");
        }

        if (Lease < TimeSpan.FromMilliseconds(100))
        {
            errors.Add($"{p}:Lease must be at least 100 ms (was {Lease}).");
        }

        if (HeartbeatInterval < TimeSpan.Zero || (HeartbeatInterval > TimeSpan.Zero && HeartbeatInterval >= Lease))
        {
            errors.Add($"{p}:HeartbeatInterval must be shorter than the lease ({Lease}) (was {HeartbeatInterval}).");
        }

        if (RescueInterval < TimeSpan.Zero)
        {
            errors.Add($"{p}:RescueInterval must not be negative (was {RescueInterval}).");
        }

        if (MaxAttempts < 1)
        {
            errors.Add($"{p}:MaxAttempts must be at least 1 (was {MaxAttempts}).");
        }

        if (RetryBaseDelay < TimeSpan.Zero || RetryMaxDelay < RetryBaseDelay)
        {
            errors.Add($"{p}:RetryBaseDelay ({RetryBaseDelay}) must be non-negative and at most RetryMaxDelay ({RetryMaxDelay}).");
        }

        if (PollInterval <= TimeSpan.Zero)
        {
            errors.Add($"{p}:PollInterval must be positive (was {PollInterval}).");
        }

        if (ShutdownGracePeriod < TimeSpan.Zero)
        {
            errors.Add($"{p}:ShutdownGracePeriod must not be negative (was {ShutdownGracePeriod}).");
        }

        return errors;
    }

    /// <summary>Checks a queue name: 1-100 letters, digits, <c>_</c>, <c>-</c>, <c>.</c> or <c>:</c>, starting with a letter or digit.</summary>
    /// <param name="queue">The name.</param>
    /// <returns>The problem, or <see langword="null"/> when valid.</returns>
    public static string? QueueNameProblem(string? queue) =>
        queue is not null && QueueNamePattern().IsMatch(queue)
            ? null
            : $"Queue name '{queue}' is invalid: use 1-100 letters, digits, '_', '-', '.' or ':', starting with a letter or digit.";

    /// <summary>Throws when a queue name is invalid.</summary>
    /// <param name="queue">The name.</param>
    /// <exception cref="ArgumentException">The name is invalid.</exception>
    public static void ThrowIfInvalidQueueName(string? queue)
    {
        if (QueueNameProblem(queue) is { } problem)
        {
            throw new ArgumentException(problem, nameof(queue));
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")]
    private static partial Regex QueueNamePattern();
}
