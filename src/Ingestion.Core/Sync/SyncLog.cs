using Microsoft.Extensions.Logging;

namespace Ingestion.Sync;

internal static partial class SyncLog
{
    [LoggerMessage(3100, LogLevel.Warning, "Source {SourceName}: the greatest cursor value read ({Max}) is before the saved cursor ({Saved}); the saved cursor is kept")]
    public static partial void CursorWentBackwards(ILogger logger, string sourceName, string max, string saved);

    [LoggerMessage(3101, LogLevel.Information, "Source {SourceName}: state edited ({Operation}) by {Actor}: cursor {Before} -> {After}")]
    public static partial void StateEdited(ILogger logger, string sourceName, string operation, string actor, string? before, string? after);
}
