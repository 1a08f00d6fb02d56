using Ingestion.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Ingestion.Running;

/// <summary>
/// Binds a source's saved state to its target: the state records the target it was saved for, and a run whose target
/// differs (a new <c>Table</c> or <c>Schema</c>) starts from no cursor and no HTTP validators, so an unchanged file is
/// read again into the new table instead of answering <see cref="IngestionStatus.NotModified"/> forever.
/// </summary>
internal static class TargetBoundState
{
    /// <summary>The state value holding the target the state was saved for.</summary>
    public const string TargetKey = "ingestion.target";

    // Kept across a target change: they count requests to the remote API, which did not change.
    private static readonly string[] KeptPrefixes = ["http.budget."];

    /// <summary>Returns the state to run with: reset when its recorded target differs, and recording <paramref name="target"/>.</summary>
    /// <param name="saved">The saved state.</param>
    /// <param name="target">The run's target, or <see langword="null"/> when the sink names none.</param>
    /// <param name="logger">The run's logger.</param>
    /// <param name="sourceName">The source.</param>
    /// <returns>The state.</returns>
    public static SourceState Bind(SourceState saved, string? target, ILogger logger, string sourceName)
    {
        if (target is null)
        {
            return saved;
        }

        var values = new Dictionary<string, string>(saved.Values, StringComparer.Ordinal);
        if (values.TryGetValue(TargetKey, out var previous) && !string.Equals(previous, target, StringComparison.Ordinal))
        {
            Log.StateResetForNewTarget(logger, sourceName, previous, target);
            values = saved.Values.Where(v => KeptPrefixes.Any(p => v.Key.StartsWith(p, StringComparison.Ordinal)))
                .ToDictionary(v => v.Key, v => v.Value, StringComparer.Ordinal);
            saved = saved with { Cursor = null, ETag = null, LastModified = null, ContentHash = null };
        }
        else if (string.Equals(previous, target, StringComparison.Ordinal))
        {
            return saved;
        }

        values[TargetKey] = target;
        return saved with { Values = values };
    }
}
