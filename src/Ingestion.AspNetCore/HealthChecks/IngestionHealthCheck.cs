using System.Globalization;
using Ingestion.Hosting;
using Ingestion.Queue;
using Ingestion.Stores;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Ingestion.AspNetCore.HealthChecks;

/// <summary>
/// Unhealthy (the registration's failure status) when a checked source's last success is older than its allowed age or it
/// never succeeded, or when a queue holds more dead items than allowed; each problem names the source or queue and the figures.
/// </summary>
internal sealed class IngestionHealthCheck(IServiceProvider services, IOptionsMonitor<IngestionHealthCheckOptions> options, TimeProvider time) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var settings = options.Get(context.Registration.Name);
        var problems = new List<string>();
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        await CheckSourcesAsync(settings, problems, data, cancellationToken).ConfigureAwait(false);
        await CheckQueuesAsync(settings, problems, data, cancellationToken).ConfigureAwait(false);
        return problems.Count == 0
            ? HealthCheckResult.Healthy("Every checked source succeeded recently and no queue has too many dead items.", data)
            : new HealthCheckResult(context.Registration.FailureStatus, string.Join("; ", problems), data: data);
    }

    private async Task CheckSourcesAsync(IngestionHealthCheckOptions settings, List<string> problems, Dictionary<string, object> data, CancellationToken cancellationToken)
    {
        var catalog = services.GetRequiredService<SourceCatalog>();
        var sourceOptions = services.GetRequiredService<IOptionsMonitor<SourceOptions>>();
        var states = services.GetRequiredService<ISourceStateStore>();
        foreach (var unknown in settings.SourceMaxSuccessAge.Keys.Where(name => catalog.Find(name) is null))
        {
            problems.Add($"Health check setting SourceMaxSuccessAge names source '{unknown}', which is not registered.");
        }

        var now = time.GetUtcNow();
        foreach (var source in catalog.Sources)
        {
            TimeSpan maxAge;
            if (settings.SourceMaxSuccessAge.TryGetValue(source.Name, out var own))
            {
                maxAge = own;
            }
            else if (settings.MaxSuccessAge is { } shared && sourceOptions.Get(source.Name).Enabled)
            {
                maxAge = shared;
            }
            else
            {
                continue;
            }

            var state = await states.GetAsync(source.Name, cancellationToken).ConfigureAwait(false);
            data[$"source:{source.Name}:lastSuccess"] = state.LastSuccess?.ToString("O", CultureInfo.InvariantCulture) ?? "never";
            if (state.LastSuccess is not { } lastSuccess)
            {
                problems.Add($"Source '{source.Name}' never succeeded (allowed age of its last success: {maxAge}).");
            }
            else if (now - lastSuccess > maxAge)
            {
                problems.Add($"Source '{source.Name}' last succeeded at {lastSuccess:O}, {FormatAge(now - lastSuccess)} ago, more than its allowed {maxAge}.");
            }
        }
    }

    private async Task CheckQueuesAsync(IngestionHealthCheckOptions settings, List<string> problems, Dictionary<string, object> data, CancellationToken cancellationToken)
    {
        var queues = settings.Queues.Count > 0
            ? settings.Queues.Distinct(StringComparer.Ordinal).ToList()
            : services.GetServices<WorkQueueRegistration>().Select(r => r.Queue).Distinct(StringComparer.Ordinal).ToList();
        if (queues.Count == 0)
        {
            return;
        }

        if (services.GetService<IWorkQueueStore>() is not { } store)
        {
            problems.Add($"Queues {string.Join(", ", queues.Select(q => $"'{q}'"))} are checked but no queue store is registered (UsePostgresQueue()).");
            return;
        }

        foreach (var queue in queues)
        {
            var stats = await store.GetStatsAsync(queue, cancellationToken).ConfigureAwait(false);
            data[$"queue:{queue}:dead"] = stats.Dead;
            data[$"queue:{queue}:pending"] = stats.Pending;
            if (stats.Dead > settings.MaxDeadItems)
            {
                problems.Add($"Queue '{queue}' has {stats.Dead} dead item(s), more than the allowed {settings.MaxDeadItems}.");
            }
        }
    }

    private static string FormatAge(TimeSpan age) =>
        age.TotalDays >= 1 ? $"{age.TotalDays.ToString("0.#", CultureInfo.InvariantCulture)} days"
        : age.TotalHours >= 1 ? $"{age.TotalHours.ToString("0.#", CultureInfo.InvariantCulture)} hours"
        : $"{age.TotalMinutes.ToString("0.#", CultureInfo.InvariantCulture)} minutes";
}
