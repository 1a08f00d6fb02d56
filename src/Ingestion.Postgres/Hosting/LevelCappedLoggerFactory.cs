using Microsoft.Extensions.Logging;

namespace Ingestion.Postgres.Hosting;

/// <summary>
/// The logger factory handed to the library's Npgsql data source: Npgsql logs every command's SQL (DDL included) and
/// each connection open at Information, which would drown a host's own entries; here those entries are written at a
/// lower level (<see cref="PostgresIngestionOptions.NpgsqlInformationLevel"/>). Warnings and errors keep their level.
/// </summary>
/// <param name="inner">The host's logger factory.</param>
/// <param name="informationLevel">The level Information entries are written at.</param>
internal sealed class LevelCappedLoggerFactory(ILoggerFactory inner, LogLevel informationLevel) : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) => new Logger(inner.CreateLogger(categoryName), informationLevel);

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    /// <summary>The host owns the factory: it is not disposed here.</summary>
    public void Dispose()
    {
    }

    private sealed class Logger(ILogger inner, LogLevel informationLevel) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(Map(logLevel));

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            inner.Log(Map(logLevel), eventId, state, exception, formatter);

        private LogLevel Map(LogLevel level) => level == LogLevel.Information ? informationLevel : level;
    }
}
