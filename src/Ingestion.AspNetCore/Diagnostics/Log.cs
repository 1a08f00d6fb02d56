using Microsoft.Extensions.Logging;

namespace Ingestion.AspNetCore.Diagnostics;

internal static partial class Log
{
    [LoggerMessage(3000, LogLevel.Information, "HTTP run of {Sources} requested by {RequestedBy}")]
    public static partial void RunRequested(ILogger logger, string sources, string requestedBy);

    [LoggerMessage(3001, LogLevel.Error, "HTTP run of {Sources} requested by {RequestedBy} could not run")]
    public static partial void BackgroundRunFailed(ILogger logger, Exception exception, string sources, string requestedBy);

    [LoggerMessage(3002, LogLevel.Information, "Schedule {Schedule} {Action} over HTTP by {RequestedBy}")]
    public static partial void ScheduleChanged(ILogger logger, string schedule, string action, string requestedBy);

    [LoggerMessage(3003, LogLevel.Information, "Cancellation of run {RunId} requested over HTTP by {RequestedBy}")]
    public static partial void CancelRequested(ILogger logger, Guid runId, string requestedBy);
}
