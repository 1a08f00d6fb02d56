using Ingestion.Postgres.Hosting;
using Ingestion.Queue;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Ingestion.Postgres.Queue;

/// <summary>Plugs the PostgreSQL work queue into Ingestion.</summary>
public static class PostgresQueueBuilderExtensions
{
    /// <summary>
    /// Uses PostgreSQL (<see cref="PostgresIngestionBuilderExtensions.UsePostgres"/>, called here) as the
    /// <see cref="IWorkQueueStore"/>, registers the queue's migrations and <see cref="PostgresWorkQueue"/>. Idempotent.
    /// </summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="configure">Adjusts the PostgreSQL settings.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder UsePostgresQueue(this IIngestionBuilder builder, Action<PostgresIngestionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.UsePostgres(configure);
        foreach (var m in QueueMigrations.All)
        {
            builder.Services.AddPostgresMigration(m);
        }

        builder.Services.TryAddSingleton<PostgresWorkQueue>();
        builder.Services.TryAddSingleton<IWorkQueueStore>(sp => sp.GetRequiredService<PostgresWorkQueue>());
        return builder;
    }
}
