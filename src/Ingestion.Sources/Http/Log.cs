using Microsoft.Extensions.Logging;

namespace Ingestion.Sources.Http;

internal static partial class Log
{
    [LoggerMessage(2000, LogLevel.Debug, "Source {SourceName} fetched {Url}: {Status} after {Attempts} attempt(s)")]
    public static partial void Fetched(ILogger logger, string sourceName, string url, int status, int attempts);

    [LoggerMessage(2001, LogLevel.Warning, "Source {SourceName} request to {Url} failed after {Attempts} attempt(s): {Reason}")]
    public static partial void RequestFailed(ILogger logger, string sourceName, string url, int attempts, string reason);

    [LoggerMessage(2002, LogLevel.Information, "Source {SourceName} retrying {Url} (attempt {Attempt})")]
    public static partial void Retrying(ILogger logger, string sourceName, string url, int attempt);

    [LoggerMessage(2003, LogLevel.Information, "Source {SourceName}: {Url} is not modified ({How})")]
    public static partial void NotModified(ILogger logger, string sourceName, string url, string how);

    [LoggerMessage(2004, LogLevel.Warning, "Source {SourceName} stopped: {Budget}")]
    public static partial void BudgetSpent(ILogger logger, string sourceName, string budget);
}
