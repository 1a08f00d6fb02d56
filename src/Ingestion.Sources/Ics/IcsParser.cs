using System.Globalization;
using System.Text;
using Ingestion.Sources.Feeds;

namespace Ingestion.Sources.Ics;

/// <summary>What the iCalendar parser needs besides the text.</summary>
public sealed record IcsParseSettings
{
    /// <summary>The source name, used in messages.</summary>
    public string SourceName { get; init; } = "calendar";

    /// <summary>Instances of recurring events that end before this instant are not produced.</summary>
    public required DateTimeOffset WindowStart { get; init; }

    /// <summary>Instances of recurring events that start at or after this instant are not produced.</summary>
    public required DateTimeOffset WindowEnd { get; init; }

    /// <summary>The zone in which floating times and all-day dates are placed to give them an instant (default UTC).</summary>
    public TimeZoneInfo FloatingTimeZone { get; init; } = TimeZoneInfo.Utc;

    /// <summary>The most instances produced for one recurring event; reaching it rejects the rest with a reason.</summary>
    public int MaxInstancesPerEvent { get; init; } = 5000;

    /// <summary>The most components (BEGIN lines) the document may have.</summary>
    public int MaxComponents { get; init; } = 200_000;

    /// <summary>The <c>charset</c> of the Content-Type, when the document is read from bytes (default UTF-8).</summary>
    public string? Charset { get; init; }
}

/// <summary>One outcome of the iCalendar parser: an event (instance), or the reason an event was rejected.</summary>
/// <param name="Event">The event, or <see langword="null"/> when rejected.</param>
/// <param name="Rejected">Why, or <see langword="null"/>.</param>
public sealed record IcsParseResult(CalendarEvent? Event, RejectedRecord? Rejected)
{
    /// <summary>
    /// A problem that did not cost the event (an unreadable ORGANIZER, ATTENDEE or alarm line, dropped); set on results
    /// whose <see cref="Event"/> and <see cref="Rejected"/> are both <see langword="null"/>.
    /// </summary>
    public string? Warning { get; init; }
}

/// <summary>
/// Reads RFC 5545 calendars into <see cref="CalendarEvent"/>s: unfolds and unescapes lines, resolves
/// DTSTART/DTEND to UTC (UTC, floating, all-day, or TZID through the calendar's VTIMEZONEs, IANA or
/// Windows zone names), expands RRULE/RDATE minus EXDATE within a window, applies overridden instances
/// (RECURRENCE-ID) and marks cancelled events. An event that cannot be read becomes a rejected record
/// naming its line, UID and property; a document that is not a calendar, or is truncated, throws.
/// </summary>
public static class IcsParser
{
    /// <summary>Parses a calendar from its bytes (UTF-8 unless a BOM or the charset says otherwise).</summary>
    /// <param name="stream">The document.</param>
    /// <param name="settings">The window, zones and limits.</param>
    /// <returns>The events and rejections. The whole document is checked before the first result.</returns>
    public static IEnumerable<IcsParseResult> Parse(Stream stream, IcsParseSettings settings)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(settings);
        var describe = Describe(settings);
        Encoding encoding;
        try
        {
            encoding = settings.Charset is { Length: > 0 } charset ? XmlTextDecoding.Resolve(charset.Trim().Trim('"'), describe, "the Content-Type charset") : Strict(Encoding.UTF8);
        }
        catch (IngestionException e)
        {
            throw new IngestionException(e.Message, e) { SourceName = settings.SourceName, Field = "charset" };
        }

        // A fold inside a UTF-8 character (Outlook folds at 75 octets) is repaired before decoding, which would refuse it.
        var bytes = encoding.CodePage == Encoding.UTF8.CodePage ? new FoldRepairStream(stream) : stream;
        using var reader = new StreamReader(bytes, encoding, detectEncodingFromByteOrderMarks: true, bufferSize: 16 * 1024, leaveOpen: true);
        return Parse(reader, settings);
    }

    /// <summary>Parses a calendar from its text.</summary>
    /// <param name="reader">The document text.</param>
    /// <param name="settings">The window, zones and limits.</param>
    /// <returns>The events and rejections. The whole document is checked before the first result.</returns>
    public static IEnumerable<IcsParseResult> Parse(TextReader reader, IcsParseSettings settings)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.WindowEnd <= settings.WindowStart)
        {
            throw new ArgumentException("The window end must be after its start.", nameof(settings));
        }

        List<IcsComponent> calendars;
        var document = new IcsDocumentReader(reader, Describe(settings));
        try
        {
            calendars = document.ReadCalendars(settings.MaxComponents);
        }
        catch (IngestionException e)
        {
            throw new IngestionException(e.Message, e) { SourceName = settings.SourceName, Position = e.Position };
        }
        catch (DecoderFallbackException e)
        {
            throw new IngestionException($"{Describe(settings)}: the document has bytes that are invalid in its encoding (UTF-8 unless the Content-Type charset says otherwise).", e)
            {
                SourceName = settings.SourceName,
                Field = "charset",
            };
        }

        return new IcsEventMapper(settings).Map(calendars);
    }

    private static Encoding Strict(Encoding encoding)
    {
        var strict = (Encoding)encoding.Clone();
        strict.DecoderFallback = DecoderFallback.ExceptionFallback;
        return strict;
    }

    internal static string Describe(IcsParseSettings settings) => $"Source '{settings.SourceName}'";
}
