using Ingestion.Postgres.Hosting;
using Ingestion.Sinks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// The PostgreSQL sink: binary COPY into target tables with <see cref="WriteMode.Merge"/> (upsert by key
/// with exact created/updated/unchanged counts), <see cref="WriteMode.Append"/> and
/// <see cref="WriteMode.Replace"/> (the run's records replace the source's rows in one transaction).
/// Each batch commits with its rejected records and checkpoint; dry runs roll back at the end.
/// </summary>
/// <remarks>
/// Tables the sink creates (<see cref="SourceOptions.CreateTable"/>) get a primary key on the record
/// key, a fill factor leaving room for HOT updates, and a hidden <c>_ingestion_hash</c> column with a
/// hash of each row's values. With it, a writer reads (key, hash) pairs once per run with binary
/// <c>COPY TO</c> (up to <see cref="PostgresSinkOptions.KeyIndexMaxRows"/>, about 22 bytes a row): rows
/// whose hash did not change are counted unchanged without crossing the wire, keys known new go straight
/// into the table, and only changed rows are staged and updated. Tables without the column are merged
/// through a staging table with <c>INSERT ... ON CONFLICT ... WHERE ... IS DISTINCT FROM</c>.
/// <para>
/// Every value is checked on the client before the COPY; a bad one makes its record a rejected record
/// (position, field, reason, raw value) within the source's error budget: a null key, text with a NUL
/// character, text longer than a <c>varchar(n)</c> in characters, a number out of the column's range
/// (<c>smallint</c>/<c>integer</c>, <c>numeric(p,s)</c> after rounding to its scale), a
/// <see cref="DateTime"/> of unspecified kind for a <c>timestamptz</c> column, invalid JSON or geometry,
/// and for dynamic records a value that does not convert without loss. <c>real</c> and
/// <c>double precision</c> columns store NaN and the infinities as they are; <c>numeric</c> columns reject
/// them, because the writer sends numeric values as <see cref="decimal"/>, which has neither.
/// A row that breaks a constraint of the table (a CHECK, a unique index on other columns, a foreign key)
/// fails its batch with an error naming the row's position and key.
/// </para>
/// </remarks>
public sealed class PostgresSink : IIngestionSink
{
    private readonly IngestionDatabase _database;
    private readonly PostgresSinkOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly TimeProvider _time;

    /// <inheritdoc />
    public string? DescribeTarget(string sourceName, SourceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return $"{options.Schema ?? _database.Options.DefaultTargetSchema}.{options.Table ?? TableMapping<DynamicRecord>.DefaultTableName(sourceName)}";
    }

    /// <summary>Creates the sink.</summary>
    /// <param name="database">The library's database.</param>
    /// <param name="options">The sink's settings.</param>
    /// <param name="loggerFactory">Loggers, or <see langword="null"/>.</param>
    /// <param name="timeProvider">The clock of <see cref="PostgresSinkOptions.QuietBatchCommitInterval"/>, or <see langword="null"/> for the system's.</param>
    /// <exception cref="OptionsValidationException">The settings are invalid.</exception>
    public PostgresSink(IngestionDatabase database, IOptions<PostgresSinkOptions> options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Value.Validate() is { Count: > 0 } errors)
        {
            throw new OptionsValidationException("Ingestion:Postgres:Sink", typeof(PostgresSinkOptions), errors);
        }

        _database = database;
        _options = options.Value;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <inheritdoc />
    public async ValueTask<ISinkWriter<TRecord>> OpenAsync<TRecord>(SinkRun run, CancellationToken cancellationToken)
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(run);
        if (run.Schema is null && typeof(TRecord) != typeof(DynamicRecord))
        {
            throw new ArgumentException($"Source '{run.SourceName}': typed records of '{typeof(TRecord).Name}' need a schema.", nameof(run));
        }

        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await NameSessionAsync(conn, _options, run.SourceName, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await conn.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new PostgresSinkWriter<TRecord>(conn, run, _database.Schema, _database.Options.DefaultTargetSchema, _options, _loggerFactory.CreateLogger("Ingestion.Postgres.Sink"), _time);
    }

    /// <summary>Opens a writer's further connection (made by cloning one) and names its session as <see cref="NameSessionAsync"/> does.</summary>
    internal static async Task OpenNamedAsync(NpgsqlConnection conn, PostgresSinkOptions options, string sourceName, CancellationToken cancellationToken)
    {
        await conn.OpenAsync(cancellationToken).ConfigureAwait(false);
        await NameSessionAsync(conn, options, sourceName, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Names a writer's session after the source (<c>application_name</c>), as operators see it in <c>pg_stat_activity</c>.</summary>
    internal static async Task NameSessionAsync(NpgsqlConnection conn, PostgresSinkOptions options, string sourceName, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand("SELECT set_config('application_name', $1, false)", conn);
        await using (cmd.ConfigureAwait(false))
        {
            var name = $"{options.ApplicationName}:{sourceName}";
            cmd.Parameters.AddWithValue(name.Length > 63 ? name[..63] : name);
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
