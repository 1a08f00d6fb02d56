using System.Reflection;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Ingestion.Sample.Host;

/// <summary>
/// A part of the sample host: registers sources, options or services. Every non-abstract class of
/// this assembly implementing it is picked up, so a feature adds itself in its own file.
/// </summary>
public interface ISampleFeature
{
    /// <summary>Registers the feature.</summary>
    /// <param name="ingestion">The ingestion builder (configuration: the <c>Ingestion</c> section).</param>
    /// <param name="configuration">The whole configuration.</param>
    /// <param name="dataDirectory">The folder of the bundled sample data files.</param>
    void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory);
}

/// <summary>A command of the sample host (<c>run</c>, <c>serve</c>, <c>jobs</c>...), discovered like <see cref="ISampleFeature"/>.</summary>
public interface ISampleCommand
{
    /// <summary>The command name; several words are allowed (<c>plugins list</c>).</summary>
    string Name { get; }

    /// <summary>One line of help.</summary>
    string Description { get; }

    /// <summary>Runs the command.</summary>
    /// <param name="host">The built host (not started).</param>
    /// <param name="args">The arguments after the command name.</param>
    /// <param name="cancellationToken">Cancelled on Ctrl+C.</param>
    /// <returns>The process exit code.</returns>
    Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken);
}

/// <summary>Builds the sample host.</summary>
public static class SampleHost
{
    /// <summary>Builds the host: configuration from appsettings.json (+ environment), PostgreSQL from <c>INGESTION_PG</c>, every <see cref="ISampleFeature"/>.</summary>
    /// <param name="args">Command-line configuration overrides (<c>--Ingestion:Sources:x:Enabled=false</c>).</param>
    /// <returns>The host, not started.</returns>
    public static IHost Build(string[] args)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // Logs go to standard error, so standard output holds only the command's lines; a terminal gets the live
        // progress display instead of per-run information lines.
        builder.Logging.AddFilter("Ingestion", Console.IsOutputRedirected ? LogLevel.Information : LogLevel.Warning);
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        if (Environment.GetEnvironmentVariable("INGESTION_PG") is { Length: > 0 } pg)
        {
            builder.Configuration["Ingestion:Postgres:ConnectionString"] = pg;
        }

        // --Telemetry:Console=true prints the library's metrics and spans (Meter and ActivitySource "Ingestion").
        if (builder.Configuration.GetValue<bool>("Telemetry:Console"))
        {
            builder.Services.AddOpenTelemetry()
                .WithMetrics(m => m.AddMeter(Diagnostics.IngestionTelemetry.Name).AddConsoleExporter())
                .WithTracing(t => t.AddSource(Diagnostics.IngestionTelemetry.Name).AddConsoleExporter());
        }

        var dataDirectory = Path.Combine(AppContext.BaseDirectory, "data");
        var ingestion = builder.Services.AddIngestion(builder.Configuration.GetSection("Ingestion")).UsePostgres();
        foreach (var feature in Discover<ISampleFeature>())
        {
            feature.Configure(ingestion, builder.Configuration, dataDirectory);
        }

        return builder.Build();
    }

    /// <summary>Creates one instance of every concrete class of this assembly implementing <typeparamref name="T"/>, ordered by name.</summary>
    /// <typeparam name="T">The interface.</typeparam>
    /// <returns>The instances.</returns>
    public static IReadOnlyList<T> Discover<T>() =>
        typeof(SampleHost).Assembly.GetTypes()
            .Where(t => typeof(T).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false } && t.GetConstructor(Type.EmptyTypes) is not null)
            .OrderBy(t => t.FullName, StringComparer.Ordinal)
            .Select(t => (T)Activator.CreateInstance(t)!)
            .ToList();
}
