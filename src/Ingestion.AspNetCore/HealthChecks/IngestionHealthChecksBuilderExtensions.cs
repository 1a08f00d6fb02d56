using Ingestion.AspNetCore.HealthChecks;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the ingestion health check to <c>services.AddHealthChecks()</c>.</summary>
public static class IngestionHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a check that is unhealthy when a source's last success is older than its allowed age (or it never succeeded), or a
    /// queue holds more dead items than allowed. The thresholds are validated when the host starts.
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="configure">Sets the thresholds.</param>
    /// <param name="name">The check's name (also the name of its options).</param>
    /// <param name="failureStatus">The status reported when a threshold is passed (default <see cref="HealthStatus.Unhealthy"/>).</param>
    /// <param name="tags">Tags to filter checks by (e.g. <c>ready</c>).</param>
    /// <returns>The builder.</returns>
    public static IHealthChecksBuilder AddIngestion(this IHealthChecksBuilder builder, Action<IngestionHealthCheckOptions> configure, string name = "ingestion", HealthStatus? failureStatus = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddOptions<IngestionHealthCheckOptions>(name).Configure(configure).ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<IngestionHealthCheckOptions>, HealthCheckOptionsValidator>());
        return builder.Add(new HealthCheckRegistration(
            name,
            sp => ActivatorUtilities.CreateInstance<IngestionHealthCheck>(sp),
            failureStatus,
            tags));
    }

    private sealed class HealthCheckOptionsValidator : IValidateOptions<IngestionHealthCheckOptions>
    {
        public ValidateOptionsResult Validate(string? name, IngestionHealthCheckOptions options) =>
            options.Validate() is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems) : ValidateOptionsResult.Success;
    }
}
