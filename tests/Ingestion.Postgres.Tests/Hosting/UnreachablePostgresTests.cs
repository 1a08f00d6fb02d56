using System.Net;
using System.Net.Sockets;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Ingestion.Postgres.Tests.Hosting;

/// <summary>A PostgreSQL that cannot be reached is reported at start naming the setting, host and port, never the password.</summary>
public sealed class UnreachablePostgresTests
{
    private const string Password = "canary-pw-5c1f";

    internal static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static async Task<PostgresUnreachableException> StartFailsAsync(string connectionString)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Ingestion:Postgres:ConnectionString"] = connectionString,
        }).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddIngestion(config.GetSection("Ingestion")).UsePostgres();
        await using var sp = services.BuildServiceProvider();
        return await Assert.ThrowsAsync<PostgresUnreachableException>(async () =>
        {
            foreach (var hosted in sp.GetServices<IHostedService>())
            {
                await hosted.StartAsync(CancellationToken.None);
            }
        });
    }

    [Fact]
    public async Task A_closed_port_names_the_setting_host_and_port_but_not_the_password()
    {
        var port = FreePort();
        var e = await StartFailsAsync($"Host=127.0.0.1;Port={port};Username=ingest;Password={Password};Database=tickets;Timeout=5");
        Assert.Contains("Ingestion:Postgres:ConnectionString", e.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", e.Message, StringComparison.Ordinal);
        Assert.Contains("database 'tickets', user 'ingest'", e.Message, StringComparison.Ordinal);
        Assert.Equal(port, e.Port);
        Assert.DoesNotContain(Password, e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_database_names_the_setting_too()
    {
        var csb = new NpgsqlConnectionStringBuilder(PostgresDatabase.ServerConnectionString) { Database = "no_such_db_4f2a", Password = Password };
        var e = await StartFailsAsync(csb.ConnectionString);
        Assert.Contains("Ingestion:Postgres:ConnectionString", e.Message, StringComparison.Ordinal);
        Assert.Contains("no_such_db_4f2a", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, e.ToString(), StringComparison.Ordinal);
    }
}
