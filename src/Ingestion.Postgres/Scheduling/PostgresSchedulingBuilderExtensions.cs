using Ingestion.Postgres.Hosting;
using Ingestion.Scheduling;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Ingestion.Postgres.Scheduling;

/// <summary>Shares schedule slots between hosts through PostgreSQL.</summary>
public static class PostgresSchedulingBuilderExtensions
{
    /// <summary>
    /// Adds the scheduler (<see cref="SchedulingIngestionBuilderExtensions.AddScheduling"/>) with its slot claims and
    /// <c>schedule_runs</c> history in PostgreSQL (<see cref="PostgresIngestionBuilderExtensions.UsePostgres"/>, called here),
    /// so that N hosts on one database run each slot exactly once. Idempotent.
    /// </summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="configure">Adjusts the PostgreSQL settings.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder UsePostgresScheduling(this IIngestionBuilder builder, Action<PostgresIngestionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.UsePostgres(configure);
        foreach (var m in SchedulingMigrations.All)
        {
            builder.Services.AddPostgresMigration(m);
        }

        builder.Services.Replace(ServiceDescriptor.Singleton<IScheduleStore, PostgresScheduleStore>());
        builder.AddScheduling();
        return builder;
    }
}
