using Ingestion.Postgres.Sql;
using Microsoft.Extensions.Logging;

namespace Ingestion.Postgres.Hosting;

/// <summary>PostgreSQL settings, bound from <c>Ingestion:Postgres</c>.</summary>
public sealed class PostgresIngestionOptions
{
    /// <summary>The configuration section name under <c>Ingestion</c>.</summary>
    public const string SectionName = "Postgres";

    /// <summary>The full configuration path of these settings.</summary>
    internal const string SectionPath = "Ingestion:Postgres";

    /// <summary>The name of the host's connection string read by default: <c>ConnectionStrings:Ingestion</c>.</summary>
    public const string ConnectionStringName = "Ingestion";

    /// <summary>
    /// The Npgsql connection string. Required: by default the host configuration's <c>ConnectionStrings:Ingestion</c>,
    /// else <c>Ingestion:Postgres:ConnectionString</c>.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// The level at which Npgsql's own Information entries (the text of every command the library sends, connection
    /// opens) are logged: <see cref="LogLevel.Debug"/> by default, so a host logging at Information sees the library's
    /// entries, not its SQL. Set <see cref="LogLevel.Information"/> to keep Npgsql's level. Npgsql's warnings and errors
    /// keep theirs.
    /// </summary>
    public LogLevel NpgsqlInformationLevel { get; set; } = LogLevel.Debug;

    /// <summary>The schema of the library's own tables (jobs, state, queue, schedules).</summary>
    public string Schema { get; set; } = "ingestion";

    /// <summary>The schema of target tables when a source does not name one.</summary>
    public string DefaultTargetSchema { get; set; } = "public";

    /// <summary>Apply the migrations of the library's schema when the host starts (or on first use without a host).</summary>
    public bool MigrateAtStart { get; set; } = true;

    /// <summary>
    /// How often a held run lock checks its connection and its fencing token (which also keeps the connection from
    /// being closed as idle by a server's or a proxy's idle timeout). A lock whose connection died is taken again when
    /// nobody else took it, else the run is told it lost the lock. Default 10 seconds.
    /// </summary>
    public TimeSpan RunLockKeepAliveInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long taking a source's run lock waits for the previous holder's batch transaction to end (the holder lost its
    /// connection but is still committing). Past it the source counts as still running. Default 5 seconds.
    /// </summary>
    public TimeSpan RunLockTakeoverTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Returns the problems with these settings, each naming the setting.</summary>
    /// <returns>The problems; empty when valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            errors.Add("No PostgreSQL connection string: set ConnectionStrings:Ingestion or Ingestion:Postgres:ConnectionString (or UsePostgres(pg => pg.ConnectionString = ...)).");
        }
        else
        {
            try
            {
                _ = new Npgsql.NpgsqlConnectionStringBuilder(ConnectionString);
            }
            catch (ArgumentException e)
            {
                errors.Add($"Ingestion:Postgres:ConnectionString is not a valid connection string: {e.Message}");
            }
        }

        if (RunLockKeepAliveInterval <= TimeSpan.Zero)
        {
            errors.Add($"Ingestion:Postgres:RunLockKeepAliveInterval must be positive (got {RunLockKeepAliveInterval}).");
        }

        if (RunLockTakeoverTimeout <= TimeSpan.Zero)
        {
            errors.Add($"Ingestion:Postgres:RunLockTakeoverTimeout must be positive (got {RunLockTakeoverTimeout}).");
        }

        if (PgIdentifier.Problem(Schema, "Ingestion:Postgres:Schema") is { } s)
        {
            errors.Add(s);
        }

        if (PgIdentifier.Problem(DefaultTargetSchema, "Ingestion:Postgres:DefaultTargetSchema") is { } t)
        {
            errors.Add(t);
        }

        return errors;
    }
}
