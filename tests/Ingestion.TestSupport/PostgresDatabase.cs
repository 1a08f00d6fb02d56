using Npgsql;
using Xunit;

namespace Ingestion.TestSupport;

/// <summary>
/// A throwaway database on the test PostgreSQL server named by <c>INGESTION_TEST_PG</c> (a connection
/// string; <c>scripts/test.sh</c> starts a server and sets it). Each instance creates its own uniquely
/// named database and drops it on dispose, so test classes and parallel developers never collide.
/// Use it as an xUnit class fixture: <c>IClassFixture&lt;PostgresDatabase&gt;</c>.
/// </summary>
public sealed class PostgresDatabase : IAsyncLifetime
{
    /// <summary>The environment variable holding the server's connection string.</summary>
    public const string EnvironmentVariable = "INGESTION_TEST_PG";

    private NpgsqlDataSource? _dataSource;

    /// <summary>The name of the database made for this fixture.</summary>
    public string DatabaseName { get; } = $"ingestion_test_{Guid.NewGuid():N}"[..40];

    /// <summary>The connection string of the fixture's database.</summary>
    public string ConnectionString { get; private set; } = string.Empty;

    /// <summary>A data source on the fixture's database.</summary>
    public NpgsqlDataSource DataSource => _dataSource ?? throw new InvalidOperationException("The fixture is not initialized.");

    /// <summary>The server connection string from the environment, or a clear failure.</summary>
    public static string ServerConnectionString =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } cs
            ? cs
            : throw new InvalidOperationException($"{EnvironmentVariable} is not set: run the tests with 'bash scripts/test.sh', which starts a PostgreSQL and sets it, or set it to a connection string of a server where the user may create databases.");

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var server = new NpgsqlConnectionStringBuilder(ServerConnectionString);
        await using (var admin = new NpgsqlConnection(server.ConnectionString))
        {
            await admin.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{DatabaseName}\"", admin);
            await cmd.ExecuteNonQueryAsync();
        }

        server.Database = DatabaseName;
        ConnectionString = server.ConnectionString;
        _dataSource = NpgsqlDataSource.Create(ConnectionString);
    }

    /// <summary>Runs a SQL command on the fixture's database.</summary>
    /// <param name="sql">The SQL.</param>
    /// <returns>Rows affected.</returns>
    public async Task<int> ExecuteAsync(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        return await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>Runs a scalar query on the fixture's database.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="sql">The SQL.</param>
    /// <returns>The first column of the first row.</returns>
    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        var value = await cmd.ExecuteScalarAsync();
        return (T)Convert.ChangeType(value!, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }

        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(ServerConnectionString);
        await admin.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{DatabaseName}\" WITH (FORCE)", admin);
        await cmd.ExecuteNonQueryAsync();
    }
}
