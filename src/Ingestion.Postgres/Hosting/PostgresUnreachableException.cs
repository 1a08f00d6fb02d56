using System.Net.Sockets;
using Npgsql;

namespace Ingestion.Postgres.Hosting;

/// <summary>
/// The library's PostgreSQL server could not be reached or refused the connection (wrong host or port, server down,
/// bad credentials, missing database). The message names the setting to fix, <c>Ingestion:Postgres:ConnectionString</c>,
/// with the host, port, database and user it points at; never the password.
/// </summary>
public sealed class PostgresUnreachableException : IngestionException
{
    /// <summary>Creates the exception.</summary>
    public PostgresUnreachableException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public PostgresUnreachableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public PostgresUnreachableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The host the connection string names.</summary>
    public string? Host { get; init; }

    /// <summary>The port the connection string names.</summary>
    public int Port { get; init; }

    /// <summary>Whether <paramref name="exception"/> says the server could not be reached or refused the session (rather than a failing statement).</summary>
    /// <param name="exception">The exception thrown while opening a connection.</param>
    /// <returns><see langword="true"/> for connection failures.</returns>
    internal static bool IsConnectionFailure(Exception exception) => exception switch
    {
        // 28: invalid authorization; 3D000: the database does not exist; 08: connection exceptions; 57P03: the server is starting up.
        PostgresException p => p.SqlState.StartsWith("28", StringComparison.Ordinal) || p.SqlState.StartsWith("08", StringComparison.Ordinal)
            || p.SqlState is "3D000" or "57P03",
        NpgsqlException n => n.InnerException is SocketException or TimeoutException or IOException || n.Message.StartsWith("Failed to connect", StringComparison.Ordinal),
        SocketException or TimeoutException => true,
        _ => false,
    };

    /// <summary>Wraps a connection failure in an exception naming the setting, host and port, with the password removed.</summary>
    /// <param name="connectionString">The configured connection string.</param>
    /// <param name="cause">The connection failure.</param>
    /// <returns>The exception to throw.</returns>
    internal static PostgresUnreachableException From(string connectionString, Exception cause)
    {
        var csb = new NpgsqlConnectionStringBuilder(connectionString);
        var reason = cause.Message;
        if (csb.Password is { Length: > 0 } password)
        {
            reason = reason.Replace(password, "***", StringComparison.Ordinal);
        }

        var database = string.IsNullOrEmpty(csb.Database) ? "(default)" : csb.Database;
        var user = string.IsNullOrEmpty(csb.Username) ? "(default)" : csb.Username;
        var message = $"{PostgresIngestionOptions.SectionPath}:ConnectionString points at PostgreSQL on {csb.Host}:{csb.Port} (database '{database}', user '{user}'), "
            + $"which cannot be reached: {reason.TrimEnd('.')}. Check that setting's host, port and credentials, and that the server is running.";
        return new PostgresUnreachableException(message) { Host = csb.Host, Port = csb.Port };
    }
}
