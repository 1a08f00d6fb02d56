using Ingestion.Hosting;
using Ingestion.Scheduling;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Ingestion.Notifications;

/// <summary>Adds notifications of scheduled runs.</summary>
public static class NotificationsIngestionBuilderExtensions
{
    /// <summary>
    /// Sends notifications about finished slots to the webhooks and SMTP server configured under
    /// <c>Ingestion:Notifications</c> (validated at start, every problem naming its setting) and to any
    /// <see cref="INotifier"/> registered in the container. Adds the scheduler when it is missing. Idempotent.
    /// </summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="configure">Adjusts the settings after binding.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddNotifications(this IIngestionBuilder builder, Action<NotificationOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddScheduling();
        var services = builder.Services;
        if (!services.Any(d => d.ServiceType == typeof(ScheduleNotifier)))
        {
            var options = services.AddOptions<NotificationOptions>();
            if (builder.Configuration is { } config)
            {
                options.Bind(config.GetSection(NotificationOptions.SectionName));
            }

            services.TryAddSingleton<ScheduleNotifier>();
            services.AddSingleton<IScheduleObserver>(sp => sp.GetRequiredService<ScheduleNotifier>());
            builder.Catalog().AddStartupCheck(sp => sp.GetRequiredService<IOptionsMonitor<NotificationOptions>>().CurrentValue.Validate());
        }

        if (configure is not null)
        {
            services.Configure(configure);
        }

        return builder;
    }
}
