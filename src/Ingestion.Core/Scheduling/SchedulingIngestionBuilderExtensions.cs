using Ingestion.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Ingestion.Scheduling;

/// <summary>Adds the scheduler to Ingestion.</summary>
public static class SchedulingIngestionBuilderExtensions
{
    /// <summary>
    /// Adds the hosted scheduler: settings bind from <c>Ingestion:Scheduling</c> (reloaded without restart) and are
    /// validated at start, every problem naming its setting. Slots are claimed in an in-memory store unless a shared
    /// store is registered (<c>UsePostgresScheduling()</c> in <c>Ingestion.Postgres</c>). Idempotent.
    /// </summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="configure">Adjusts the settings after binding.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddScheduling(this IIngestionBuilder builder, Action<SchedulingOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        if (!services.Any(d => d.ServiceType == typeof(IngestionScheduler)))
        {
            var options = services.AddOptions<SchedulingOptions>();
            if (builder.Configuration is { } config)
            {
                options.Bind(config.GetSection(SchedulingOptions.SectionName));
            }

            services.TryAddSingleton(TimeProvider.System);
            services.TryAddSingleton<IScheduleStore, InMemoryScheduleStore>();
            services.AddSingleton<IngestionScheduler>();
            services.TryAddSingleton<IIngestionScheduler>(sp => sp.GetRequiredService<IngestionScheduler>());
            services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<IngestionScheduler>());
            var section = builder.Configuration?.GetSection(SchedulingOptions.SectionName);
            builder.Catalog().AddStartupCheck(sp => ConfigurationValueCheck.ThenValidate(section, typeof(SchedulingOptions), () =>
                sp.GetRequiredService<IOptionsMonitor<SchedulingOptions>>().CurrentValue.Validate(sp.GetRequiredService<SourceCatalog>())));
        }

        if (configure is not null)
        {
            services.Configure(configure);
        }

        return builder;
    }
}
