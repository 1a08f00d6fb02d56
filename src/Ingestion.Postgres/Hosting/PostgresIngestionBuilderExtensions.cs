using Ingestion.Hosting;
using Ingestion.Postgres.Migrations;
using Ingestion.Postgres.Sinks;
using Ingestion.Postgres.Stores;
using Ingestion.Sinks;
using Ingestion.Stores;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Ingestion.Postgres.Hosting;

/// <summary>Plugs PostgreSQL into Ingestion.</summary>
public static partial class PostgresIngestionBuilderExtensions
{
    /// <summary>
    /// Uses PostgreSQL for the library's state and as the sink: settings bind from <c>Ingestion:Postgres</c>
    /// (the sink's from <c>Ingestion:Postgres:Sink</c>) and are validated at start. The connection string is the
    /// host configuration's <c>ConnectionStrings:Ingestion</c> when set, else <c>Ingestion:Postgres:ConnectionString</c>,
    /// unless <paramref name="configure"/> sets it. The library's schema is
    /// migrated at start (or on first use without a host). Replaces the in-memory sink, import-job store,
    /// source-state store and run locks with <see cref="PostgresSink"/>, <see cref="PostgresImportJobStore"/>,
    /// <see cref="PostgresSourceStateStore"/> and <see cref="PostgresRunLockProvider"/> (advisory locks).
    /// Idempotent.
    /// </summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="configure">Adjusts the settings after binding (e.g. sets the connection string).</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder UsePostgres(this IIngestionBuilder builder, Action<PostgresIngestionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        if (!services.Any(d => d.ServiceType == typeof(IngestionDatabase)))
        {
            var options = services.AddOptions<PostgresIngestionOptions>();
            if (builder.Configuration is { } config)
            {
                options.Bind(config.GetSection(PostgresIngestionOptions.SectionName));
            }

            // The host's ConnectionStrings:Ingestion (where .NET hosts keep connection strings) wins over
            // Ingestion:Postgres:ConnectionString; the configure delegate below wins over both.
            options.Configure<IServiceProvider>((o, sp) =>
            {
                if (sp.GetService<IConfiguration>()?.GetConnectionString(PostgresIngestionOptions.ConnectionStringName) is { Length: > 0 } connectionString)
                {
                    o.ConnectionString = connectionString;
                }
            });

            services.TryAddSingleton<IngestionDatabase>();
            var sinkOptions = services.AddOptions<PostgresSinkOptions>();
            if (builder.Configuration is { } sinkConfig)
            {
                sinkOptions.Bind(sinkConfig.GetSection($"{PostgresIngestionOptions.SectionName}:{PostgresSinkOptions.SectionName}"));
            }

            foreach (var migration in StoreSql.Migrations)
            {
                services.AddPostgresMigration(migration);
            }

            services.Replace(ServiceDescriptor.Singleton<IIngestionSink, PostgresSink>());
            services.Replace(ServiceDescriptor.Singleton<IImportJobStore>(sp => new PostgresImportJobStore(
                sp.GetRequiredService<IngestionDatabase>(), sp.GetRequiredService<IOptions<PostgresSinkOptions>>().Value.MaxRejectedValueLength)));
            services.Replace(ServiceDescriptor.Singleton<ISourceStateStore, PostgresSourceStateStore>());
            services.Replace(ServiceDescriptor.Singleton<IRunLockProvider, PostgresRunLockProvider>());
            builder.Catalog().AddStartupCheck(sp => sp.GetRequiredService<IOptions<PostgresSinkOptions>>().Value.Validate());
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PostgresMigrationHostedService>());
            builder.Catalog().AddStartupCheck(sp => sp.GetRequiredService<IOptions<PostgresIngestionOptions>>().Value.Validate());
        }

        if (configure is not null)
        {
            services.Configure(configure);
        }

        return builder;
    }

    /// <summary>Adjusts the settings of the PostgreSQL sink (after binding from <c>Ingestion:Postgres:Sink</c>).</summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="configure">Adjusts the settings.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder ConfigurePostgresSink(this IIngestionBuilder builder, Action<PostgresSinkOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.Configure(configure);
        return builder;
    }

    /// <summary>Registers a migration of the library's schema (features call this from their <c>AddXxx</c>).</summary>
    /// <param name="services">The services.</param>
    /// <param name="migration">The migration.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddPostgresMigration(this IServiceCollection services, IPostgresMigration migration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(migration);
        if (!services.Any(d => d.ServiceType == typeof(IPostgresMigration) && d.ImplementationInstance is IPostgresMigration m && m.Component == migration.Component && m.Version == migration.Version))
        {
            services.AddSingleton(migration);
        }

        return services;
    }

    /// <summary>At start: migrates the library's schema, then closes the jobs of runs whose host died (the start-up sweep).</summary>
    private sealed partial class PostgresMigrationHostedService(IngestionDatabase database, IImportJobStore jobs, IOptions<IngestionOptions> options, ILogger<PostgresMigrationHostedService>? logger = null) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            if (database.Options.MigrateAtStart)
            {
                await database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
            }

            foreach (var job in await jobs.CloseAbandonedAsync(null, null, options.Value.AbandonAfter, cancellationToken).ConfigureAwait(false))
            {
                LogAbandoned(logger ?? (ILogger)NullLogger.Instance, job.SourceName, job.Id, job.Host, job.HeartbeatAt ?? job.StartedAt);
            }
        }

        [LoggerMessage(2110, LogLevel.Warning, "Start-up sweep: closed job {JobId} of source {SourceName} as Abandoned (its host {Host} was last alive {LastAlive})")]
        private static partial void LogAbandoned(ILogger logger, string sourceName, Guid jobId, string host, DateTimeOffset lastAlive);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
