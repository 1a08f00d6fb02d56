namespace Ingestion.AspNetCore.HealthChecks;

/// <summary>Thresholds of the ingestion health check (<c>services.AddHealthChecks().AddIngestion(...)</c>).</summary>
public sealed class IngestionHealthCheckOptions
{
    /// <summary>
    /// The oldest a source's last success may be before the check is unhealthy, for every enabled source without its own
    /// entry in <see cref="SourceMaxSuccessAge"/>; <see langword="null"/> (the default) checks only the sources listed there.
    /// A checked source that never succeeded is unhealthy.
    /// </summary>
    public TimeSpan? MaxSuccessAge { get; set; }

    /// <summary>Per-source maximum age of the last success, overriding <see cref="MaxSuccessAge"/> (a daily source: 26 hours; a weekly one: 8 days).</summary>
    public IDictionary<string, TimeSpan> SourceMaxSuccessAge { get; } = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);

    /// <summary>The most dead items a queue may hold before the check is unhealthy (0, the default: any dead item is unhealthy).</summary>
    public long MaxDeadItems { get; set; }

    /// <summary>The queues whose dead items are counted; empty (the default) counts every queue with a registered worker.</summary>
    public IList<string> Queues { get; } = [];

    /// <summary>Lists the problems of these settings, each naming the setting.</summary>
    /// <returns>The problems; empty when valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (MaxSuccessAge is { } age && age <= TimeSpan.Zero)
        {
            problems.Add($"{nameof(IngestionHealthCheckOptions)}.{nameof(MaxSuccessAge)} is {age}; it must be positive.");
        }

        foreach (var (source, sourceAge) in SourceMaxSuccessAge)
        {
            if (sourceAge <= TimeSpan.Zero)
            {
                problems.Add($"{nameof(IngestionHealthCheckOptions)}.{nameof(SourceMaxSuccessAge)}['{source}'] is {sourceAge}; it must be positive.");
            }
        }

        if (MaxDeadItems < 0)
        {
            problems.Add($"{nameof(IngestionHealthCheckOptions)}.{nameof(MaxDeadItems)} is {MaxDeadItems}; it must be 0 or more.");
        }

        return problems;
    }
}
