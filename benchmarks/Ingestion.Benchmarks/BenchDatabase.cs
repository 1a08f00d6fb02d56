using Npgsql;

namespace Ingestion.Benchmarks;

/// <summary>A throwaway database for one suite, on the server named by <c>INGESTION_TEST_PG</c>.</summary>
internal sealed class BenchDatabase : IAsyncDisposable
{
    private readonly string _server;

    private BenchDatabase(string server, string name, NpgsqlDataSource dataSource, string connectionString)
    {
        _server = server;
        Name = name;
        DataSource = dataSource;
        ConnectionString = connectionString;
    }

    public string Name { get; }

    public string ConnectionString { get; }

    public NpgsqlDataSource DataSource { get; }

    public static async Task<BenchDatabase> CreateAsync()
    {
        var server = Environment.GetEnvironmentVariable("INGESTION_TEST_PG") is { Length: > 0 } s
            ? s
            : throw new InvalidOperationException("INGESTION_TEST_PG is not set: set it to a connection string of a server where the user may create databases (see benchmarks/README.md).");
        var name = $"ingestion_bdn_{Guid.NewGuid():N}"[..30];
        await using (var admin = new NpgsqlConnection(server))
        {
            await admin.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", admin);
            await cmd.ExecuteNonQueryAsync();
        }

        var cs = new NpgsqlConnectionStringBuilder(server) { Database = name, CommandTimeout = 0 }.ConnectionString;
        return new BenchDatabase(server, name, NpgsqlDataSource.Create(cs), cs);
    }

    public async Task ExecuteAsync(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(_server);
        await admin.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)", admin);
        await cmd.ExecuteNonQueryAsync();
    }
}
