using System.Globalization;
using System.Runtime.CompilerServices;
using Ingestion.Sources.Feeds;
using Ingestion.Sources.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Ingestion.Sources.Ics;

/// <summary>
/// Reads an iCalendar (RFC 5545) feed from a URL (through the shared HTTP layer: conditional GET, 304,
/// retries, caps) or a local file, and yields its events as <see cref="CalendarEvent"/>s, recurring events
/// expanded into instances within a window around now (<see cref="IcsSourceOptions.PastWindow"/>,
/// <see cref="IcsSourceOptions.FutureWindow"/>, or the fixed <see cref="IcsSourceOptions.WindowStart"/> and <see cref="IcsSourceOptions.WindowEnd"/>; the run parameters <c>windowStart</c> and <c>windowEnd</c>
/// override it). Events that cannot be read are rejected naming their line, UID and property.
/// Register it with <see cref="IcsSourceServiceCollectionExtensions.AddIcsSource"/>.
/// </summary>
/// <param name="http">Creates the HTTP client of a run.</param>
/// <param name="options">The calendar settings, named by source.</param>
public sealed partial class IcsSource(ISourceHttpClientFactory http, IOptionsMonitor<IcsSourceOptions> options) : HttpSourceBase<IcsSourceOptions, CalendarEvent>(http, options)
{
    /// <summary>The state value holding the end of the window of the last expansion (round-trip format).</summary>
    public const string WindowEndStateKey = "ics.window_end";

    /// <summary>
    /// Creates the run's client; an unchanged calendar still yields new instances as the window moves, so once it
    /// has moved enough since the last expansion the client sees no saved validators and fetches the whole calendar.
    /// </summary>
    /// <param name="context">The run.</param>
    /// <param name="options">The run's options.</param>
    /// <returns>The client.</returns>
    protected override SourceHttpClient CreateHttpClient(IngestionContext context, IcsSourceOptions options)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options);
        var (_, windowEnd) = Window(context, options);
        if (NeedsReexpansion(context.State, windowEnd, options))
        {
            Log.Reexpanding(context.Logger, context.SourceName, windowEnd);
            context = new UnconditionalContext(context);
        }

        return base.CreateHttpClient(context, options);
    }

    /// <inheritdoc />
    protected override async IAsyncEnumerable<CalendarEvent> ReadAsync(IngestionContext context, IcsSourceOptions options, SourceHttpClient http, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var url = options.Url ?? throw new IngestionException($"Source '{context.SourceName}': Url is not set.") { SourceName = context.SourceName, Field = "Url" };
        var (windowStart, windowEnd) = Window(context, options);
        var document = await http.OpenDocumentAsync(url, cancellationToken).ConfigureAwait(false);
        if (document is null)
        {
            yield break;
        }

        await using (document.ConfigureAwait(false))
        {
            using var buffer = await DocumentBuffer.ReadAsync(document.Content, options.MaxDocumentBytes, context.SourceName, document.Location, cancellationToken).ConfigureAwait(false);
            var settings = new IcsParseSettings
            {
                SourceName = context.SourceName,
                WindowStart = windowStart,
                WindowEnd = windowEnd,
                FloatingTimeZone = TimeZoneInfo.FindSystemTimeZoneById(options.FloatingTimeZone),
                MaxInstancesPerEvent = options.MaxInstancesPerEvent,
                Charset = document.Encoding?.WebName,
            };

            IEnumerable<IcsParseResult> results;
            try
            {
                results = IcsParser.Parse(buffer, settings);
            }
            catch (IngestionException e) when (document.MediaType is { } mediaType && e.Position == "line 1")
            {
                throw new IngestionException($"{e.Message} The server sent it as '{mediaType}' from {document.Location}.", e)
                {
                    SourceName = e.SourceName,
                    Position = e.Position,
                    Field = e.Field,
                };
            }

            foreach (var result in results)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (result.Rejected is { } rejected)
                {
                    context.Reject(rejected);
                }
                else if (result.Warning is { } warning)
                {
                    Log.PropertyDropped(context.Logger, warning);
                }
                else
                {
                    yield return result.Event!;
                }
            }

            var values = new Dictionary<string, string>(StringComparer.Ordinal) { [WindowEndStateKey] = windowEnd.ToString("O", CultureInfo.InvariantCulture) };
            context.Checkpoint(http.CreateCheckpoint(null, values, document));
        }
    }

    private static (DateTimeOffset Start, DateTimeOffset End) Window(IngestionContext context, IcsSourceOptions options)
    {
        var now = context.TimeProvider.GetUtcNow();
        var start = Parameter(context, "windowStart") ?? options.WindowStart ?? now - options.PastWindow;
        var end = Parameter(context, "windowEnd") ?? options.WindowEnd ?? now + options.FutureWindow;
        if (end <= start)
        {
            throw new IngestionException($"Source '{context.SourceName}': the expansion window ends ({end:O}) before it starts ({start:O}).") { SourceName = context.SourceName, Field = "windowEnd" };
        }

        return (start, end);
    }

    private static DateTimeOffset? Parameter(IngestionContext context, string name)
    {
        if (!context.Parameters.TryGetValue(name, out var text))
        {
            return null;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value)
            ? value
            : throw new IngestionException($"Source '{context.SourceName}': the run parameter {name} '{text}' is not a date.") { SourceName = context.SourceName, Field = name };
    }

    private static bool NeedsReexpansion(SourceState state, DateTimeOffset windowEnd, IcsSourceOptions options)
    {
        if (!state.Values.TryGetValue(WindowEndStateKey, out var saved)
            || !DateTimeOffset.TryParse(saved, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var previous))
        {
            return state.ETag is not null || state.LastModified is not null || state.ContentHash is not null;
        }

        return windowEnd - previous >= options.ReexpandAfter;
    }

    private static partial class Log
    {
        [LoggerMessage(5301, LogLevel.Information, "Source {SourceName}: the expansion window moved (now ends {WindowEnd:O}); the calendar is read even if unchanged")]
        public static partial void Reexpanding(ILogger logger, string sourceName, DateTimeOffset windowEnd);

        [LoggerMessage(5302, LogLevel.Warning, "{Warning}")]
        public static partial void PropertyDropped(ILogger logger, string warning);
    }

    /// <summary>The run's context without its HTTP validators, so the document is fetched whole.</summary>
    private sealed class UnconditionalContext(IngestionContext inner) : IngestionContext
    {
        private readonly SourceState _state = inner.State with { ETag = null, LastModified = null, ContentHash = null };

        public override string SourceName => inner.SourceName;

        public override Guid RunId => inner.RunId;

        public override IngestionMode Mode => inner.Mode;

        public override bool IsDryRun => inner.IsDryRun;

        public override string Trigger => inner.Trigger;

        public override SourceState State => _state;

        public override IngestionLimits Limits => inner.Limits;

        public override IReadOnlyDictionary<string, string> Parameters => inner.Parameters;

        public override ILogger Logger => inner.Logger;

        public override TimeProvider TimeProvider => inner.TimeProvider;

        public override void Reject(RejectedRecord rejected) => inner.Reject(rejected);

        public override void Checkpoint(SourceCheckpoint checkpoint) => inner.Checkpoint(checkpoint);

        public override void NotModified(SourceCheckpoint? checkpoint = null) => inner.NotModified(checkpoint);

        public override void StoppedEarly(string reason) => inner.StoppedEarly(reason);

        public override void ReportProgress(string message) => inner.ReportProgress(message);
    }
}
