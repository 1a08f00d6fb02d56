using Ingestion.Postgres.Migrations;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Ingestion.Postgres.Hosting;

/// <summary>
/// The library's database: the data source built from <see cref="PostgresIngestionOptions"/>, the
/// schema names, and the one-time migration of the library's schema. A singleton per host.
/// </summary>
public sealed class IngestionDatabase : IAsyncDisposable
{
    private readonly IEnumerable<IPostgresMigration> _migrations;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _migrateGate = new(1, 1);
    private volatile bool _migrated;

    /// <summary>Creates the database handle.</summary>
    /// <param name="options">The settings.</param>
    /// <param name="migrations">Every registered migration.</param>
    /// <param name="loggerFactory">Loggers, or <see langword="null"/>.</param>
    /// <exception cref="OptionsValidationException">The settings are invalid.</exception>
    public IngestionDatabase(IOptions<PostgresIngestionOptions> options, IEnumerable<IPostgresMigration> migrations, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var o = options.Value;
        if (o.Validate() is { Count: > 0 } errors)
        {
            throw new OptionsValidationException(PostgresIngestionOptions.SectionName, typeof(PostgresIngestionOptions), errors);
        }

        Options = o;
        var builder = new NpgsqlDataSourceBuilder(o.ConnectionString);
        if (loggerFactory is not null)
        {
            builder.UseLoggerFactory(o.NpgsqlInformationLevel == LogLevel.Information ? loggerFactory : new LevelCappedLoggerFactory(loggerFactory, o.NpgsqlInformationLevel));
        }

        DataSource = builder.Build();
        _migrations = migrations;
        _logger = loggerFactory?.CreateLogger("Ingestion.Postgres") ?? NullLogger.Instance;
    }

    /// <summary>The settings.</summary>
    public PostgresIngestionOptions Options { get; }

    /// <summary>The data source (connection pool) of the library.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>The schema of the library's tables.</summary>
    public string Schema => Options.Schema;

    /// <summary>Applies the library's migrations once per process (later calls return at once). Safe with several hosts.</summary>
    /// <param name="cancellationToken">Cancels the migration.</param>
    /// <returns>A task that completes when the schema is up to date.</returns>
    /// <exception cref="PostgresUnreachableException">The server cannot be reached or refuses the connection.</exception>
    public async Task EnsureMigratedAsync(CancellationToken cancellationToken)
    {
        if (_migrated)
        {
            return;
        }

        await _migrateGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_migrated)
            {
                try
                {
                    await new PostgresMigrator(DataSource, Schema, _logger).MigrateAsync(_migrations, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (PostgresUnreachableException.IsConnectionFailure(e) && !cancellationToken.IsCancellationRequested)
                {
                    throw PostgresUnreachableException.From(Options.ConnectionString!, e);
                }

                _migrated = true;
            }
        }
        finally
        {
            _migrateGate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync().ConfigureAwait(false);
        _migrateGate.Dispose();
    }
}
