using System.Security.Cryptography;
using System.Text;
using Ingestion.Postgres.Sql;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Ingestion.Postgres.Migrations;

/// <summary>
/// One versioned, idempotent change to the <c>ingestion</c> schema. Each feature (stores, queue,
/// scheduler, dedup) owns a component name and numbers its migrations from 1; a migration never
/// changes once released: add a new version instead.
/// </summary>
public interface IPostgresMigration
{
    /// <summary>The feature that owns the migration (e.g. <c>core</c>, <c>queue</c>).</summary>
    string Component { get; }

    /// <summary>The version within the component, from 1, applied in ascending order.</summary>
    int Version { get; }

    /// <summary>A short description, recorded when applied.</summary>
    string Description { get; }

    /// <summary>
    /// The SQL to run. <c>{schema}</c> is replaced by the quoted schema name. It runs in the
    /// migration transaction, so it must not use statements that cannot run in one (e.g. <c>CREATE INDEX CONCURRENTLY</c>).
    /// </summary>
    string Sql { get; }
}

/// <summary>A migration given by its fields.</summary>
/// <param name="Component">The owning feature.</param>
/// <param name="Version">The version within the component.</param>
/// <param name="Description">A short description.</param>
/// <param name="Sql">The SQL, with <c>{schema}</c> for the quoted schema name.</param>
public sealed record PostgresMigration(string Component, int Version, string Description, string Sql) : IPostgresMigration;

/// <summary>
/// Applies migrations to a schema: creates the schema and its <c>schema_migrations</c> table, then
/// applies the missing versions of each component in order, in one transaction under a transaction-level
/// advisory lock, so two hosts starting at once never apply a migration twice (the second waits, then finds nothing to do).
/// </summary>
public sealed partial class PostgresMigrator
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _schema;
    private readonly ILogger _logger;

    /// <summary>Creates a migrator.</summary>
    /// <param name="dataSource">The database.</param>
    /// <param name="schema">The schema to migrate (validated).</param>
    /// <param name="logger">A logger, or <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">The schema name is invalid.</exception>
    public PostgresMigrator(NpgsqlDataSource dataSource, string schema, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        _ = PgIdentifier.Quote(schema, "Ingestion:Postgres:Schema");
        _dataSource = dataSource;
        _schema = schema;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Applies the missing migrations.</summary>
    /// <param name="migrations">All known migrations (any order).</param>
    /// <param name="cancellationToken">Cancels the migration; nothing is applied then.</param>
    /// <returns>The migrations applied by this call, in order.</returns>
    /// <exception cref="ArgumentException">Two migrations share a component and version, or a version is below 1.</exception>
    public async Task<IReadOnlyList<IPostgresMigration>> MigrateAsync(IEnumerable<IPostgresMigration> migrations, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(migrations);
        var ordered = migrations.OrderBy(m => m.Component, StringComparer.Ordinal).ThenBy(m => m.Version).ToList();
        foreach (var group in ordered.GroupBy(m => (m.Component, m.Version)))
        {
            if (group.Count() > 1)
            {
                throw new ArgumentException($"Migration {group.Key.Component} v{group.Key.Version} is declared {group.Count()} times.", nameof(migrations));
            }

            if (group.Key.Version < 1)
            {
                throw new ArgumentException($"Migration {group.Key.Component} has version {group.Key.Version}; versions start at 1.", nameof(migrations));
            }
        }

        var schema = PgIdentifier.Quote(_schema);
        var applied = new List<IPostgresMigration>();
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                await ExecuteAsync(conn, tx, "SELECT pg_advisory_xact_lock($1)", cancellationToken, LockKey(_schema)).ConfigureAwait(false);

                var setup = $"""
                    CREATE SCHEMA IF NOT EXISTS {schema};
                    CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                        component text NOT NULL,
                        version int NOT NULL,
                        description text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now(),
                        PRIMARY KEY (component, version));
                    """;
                await ExecuteAsync(conn, tx, setup, cancellationToken).ConfigureAwait(false);

                var done = new HashSet<(string, int)>();
                var query = new NpgsqlCommand($"SELECT component, version FROM {schema}.schema_migrations", conn, tx);
                await using (query.ConfigureAwait(false))
                {
                    var reader = await query.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            done.Add((reader.GetString(0), reader.GetInt32(1)));
                        }
                    }
                }

                foreach (var m in ordered.Where(m => !done.Contains((m.Component, m.Version))))
                {
                    try
                    {
                        await ExecuteAsync(conn, tx, m.Sql.Replace("{schema}", schema, StringComparison.Ordinal), cancellationToken).ConfigureAwait(false);
                    }
                    catch (PostgresException e)
                    {
                        throw new InvalidOperationException($"Migration {m.Component} v{m.Version} ({m.Description}) of schema '{_schema}' failed: {e.MessageText}", e);
                    }

                    await ExecuteAsync(conn, tx, $"INSERT INTO {schema}.schema_migrations (component, version, description) VALUES ($1, $2, $3)", cancellationToken, m.Component, m.Version, m.Description).ConfigureAwait(false);

                    LogApplied(_logger, m.Component, m.Version, m.Description, _schema);
                    applied.Add(m);
                }

                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        return applied;
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, CancellationToken cancellationToken, params object[] args)
    {
        var cmd = new NpgsqlCommand(sql, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            foreach (var a in args)
            {
                cmd.Parameters.AddWithValue(a);
            }

            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The advisory lock key that serializes migrations of one schema.</summary>
    /// <param name="schema">The schema.</param>
    /// <returns>A stable 64-bit key.</returns>
    internal static long LockKey(string schema) =>
        BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes("ingestion.migrations:" + schema)), 0);

    [LoggerMessage(2000, LogLevel.Information, "Applied migration {Component} v{Version} ({Description}) to schema {Schema}")]
    private static partial void LogApplied(ILogger logger, string component, int version, string description, string schema);
}
