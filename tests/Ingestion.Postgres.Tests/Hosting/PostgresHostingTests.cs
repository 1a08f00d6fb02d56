using System.Collections.Concurrent;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Tests.Sinks;
using Ingestion.Running;
using Ingestion.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Ingestion.Postgres.Tests.Hosting;

/// <summary>
/// UsePostgres() without a connection string reads the host's ConnectionStrings:Ingestion, then
/// Ingestion:Postgres:ConnectionString; the library's Npgsql data source logs its SQL no higher than Debug.
/// </summary>
public sealed class PostgresHostingTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static IHost BuildHost(IDictionary<string, string?> settings, Action<PostgresIngestionOptions>? configure = null, ILoggerProvider? logs = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
            builder.Logging.SetMinimumLevel(LogLevel.Trace);
        }

        builder.Services.AddIngestion(builder.Configuration.GetSection("Ingestion"))
            .UsePostgres(configure)
            .AddSource("hosting-rows", _ => new RowSource((c, ct) => RowSource.Rows(c, 1, 5, ct: ct)), o =>
            {
                o.Table = "hosting_rows";
                o.CreateTable = true;
            });
        return builder.Build();
    }

    private static string ConnectionString(IHost host) => host.Services.GetRequiredService<IOptions<PostgresIngestionOptions>>().Value.ConnectionString!;

    [Fact]
    public async Task ConnectionStrings_Ingestion_is_read_when_nothing_else_sets_it_and_a_run_imports()
    {
        using var host = BuildHost(new Dictionary<string, string?> { ["ConnectionStrings:Ingestion"] = db.ConnectionString });
        await host.StartAsync();
        var result = await host.Services.GetRequiredService<IIngestionRunner>().RunAsync("hosting-rows", null, CancellationToken.None);
        await host.StopAsync();
        Assert.True(result.Status == IngestionStatus.Succeeded, result.ToString());
        Assert.Equal(5L, await db.ScalarAsync<long>("SELECT count(*) FROM hosting_rows"));
    }

    [Fact]
    public void ConnectionStrings_Ingestion_wins_over_Ingestion_Postgres_and_the_delegate_over_both()
    {
        var both = new Dictionary<string, string?> { ["ConnectionStrings:Ingestion"] = "Host=a", ["Ingestion:Postgres:ConnectionString"] = "Host=b" };
        using (var host = BuildHost(both))
        {
            Assert.Equal("Host=a", ConnectionString(host));
        }

        using (var host = BuildHost(new Dictionary<string, string?> { ["Ingestion:Postgres:ConnectionString"] = "Host=b" }))
        {
            Assert.Equal("Host=b", ConnectionString(host));
        }

        using (var host = BuildHost(both, pg => pg.ConnectionString = "Host=c"))
        {
            Assert.Equal("Host=c", ConnectionString(host));
        }
    }

    [Fact]
    public async Task No_connection_string_fails_at_start_naming_both_settings()
    {
        using var host = BuildHost(new Dictionary<string, string?>());
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("set ConnectionStrings:Ingestion or Ingestion:Postgres:ConnectionString", string.Join("\n", e.Failures), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(LogLevel.Information)]
    public async Task Npgsql_commands_are_logged_at_Debug_unless_asked_otherwise(LogLevel? level)
    {
        var logs = new CapturingLoggerProvider();
        using var host = BuildHost(
            new Dictionary<string, string?> { ["ConnectionStrings:Ingestion"] = db.ConnectionString },
            level is { } l ? pg => pg.NpgsqlInformationLevel = l : null,
            logs);
        await host.StartAsync();
        var result = await host.Services.GetRequiredService<IIngestionRunner>().RunAsync("hosting-rows", null, CancellationToken.None);
        await host.StopAsync();
        Assert.True(result.IsSuccess, result.ToString());

        var commands = logs.Entries.Where(e => e.Category == "Npgsql.Command").ToList();
        Assert.NotEmpty(commands);
        if (level is null)
        {
            var loud = logs.Entries.Where(e => e.Category.StartsWith("Npgsql", StringComparison.Ordinal) && e.Level >= LogLevel.Information).ToList();
            Assert.True(loud.Count == 0, $"Npgsql entries at Information or above: {string.Join("\n", loud.Take(5))}");
            Assert.Contains(commands, e => e.Level == LogLevel.Debug && e.Message.Contains("CREATE", StringComparison.OrdinalIgnoreCase));
            Assert.Contains(logs.Entries, e => e.Category.StartsWith("Ingestion", StringComparison.Ordinal) && e.Level == LogLevel.Information);
        }
        else
        {
            Assert.Contains(commands, e => e.Level == LogLevel.Information);
        }
    }

    private sealed record Entry(string Category, LogLevel Level, string Message);

    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        public ConcurrentQueue<Entry> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, Entries);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<Entry> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue(new Entry(category, logLevel, formatter(state, exception)));
        }
    }
}
