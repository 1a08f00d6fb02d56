namespace Ingestion.Sources.Ics;

/// <summary>
/// One event of an iCalendar feed, or one instance of a recurring event. Keyed by <c>(source, source_id)</c>,
/// where <see cref="SourceId"/> is the UID, followed for instances of a recurring event (and overridden
/// instances) by <c>/</c> and the instance's <see cref="RecurrenceId"/>.
/// </summary>
public sealed class CalendarEvent
{
    /// <summary><see cref="Uid"/>, or <c>UID/RECURRENCE-ID</c> for an instance of a recurring event.</summary>
    public required string SourceId { get; init; }

    /// <summary>The event's UID.</summary>
    public required string Uid { get; init; }

    /// <summary>
    /// The instance's original start, for instances of recurring events and overrides: <c>yyyyMMddTHHmmssZ</c>
    /// in UTC, or <c>yyyyMMdd</c> for all-day events; <see langword="null"/> for a single event.
    /// </summary>
    public string? RecurrenceId { get; init; }

    /// <summary>SUMMARY, unescaped.</summary>
    public string? Summary { get; init; }

    /// <summary>DESCRIPTION, unescaped.</summary>
    public string? Description { get; init; }

    /// <summary>LOCATION, unescaped.</summary>
    public string? Location { get; init; }

    /// <summary>URL.</summary>
    public string? Url { get; init; }

    /// <summary>STATUS (TENTATIVE, CONFIRMED, CANCELLED), upper-cased.</summary>
    public string? Status { get; init; }

    /// <summary>Whether the event (or instance) is cancelled: STATUS:CANCELLED, or a calendar with METHOD:CANCEL.</summary>
    public bool IsCancelled { get; init; }

    /// <summary>
    /// The start as an instant (UTC). Floating and all-day values are placed in the source's floating time zone.
    /// Column <c>starts_at</c>.
    /// </summary>
    [Column("starts_at")]
    public DateTimeOffset Start { get; init; }

    /// <summary>
    /// The end as an instant (UTC): DTEND, or DTSTART + DURATION, or the start (one day later for all-day events).
    /// Column <c>ends_at</c> (not <c>end</c>, a reserved word in SQL).
    /// </summary>
    [Column("ends_at")]
    public DateTimeOffset End { get; init; }

    /// <summary>The start as written, in the event's own wall-clock time.</summary>
    [Column(WithoutTimeZone = true)]
    public DateTime LocalStart { get; init; }

    /// <summary>Whether DTSTART is a DATE (an all-day event).</summary>
    public bool IsAllDay { get; init; }

    /// <summary>Whether DTSTART is a floating time (no zone, not UTC).</summary>
    public bool IsFloating { get; init; }

    /// <summary>The TZID of DTSTART as written, or <see langword="null"/> (UTC, floating or all-day).</summary>
    public string? TimeZone { get; init; }

    /// <summary>Whether this record is an instance of a recurring event (RRULE/RDATE) or an override of one.</summary>
    public bool IsRecurring { get; init; }

    /// <summary>The RRULE of the recurring event, as written.</summary>
    public string? RecurrenceRule { get; init; }

    /// <summary>The CATEGORIES, in order (not a column: see <see cref="Categories"/>).</summary>
    [IgnoreColumn]
    public IReadOnlyList<string> CategoryList { get; init; } = [];

    /// <summary>The categories as a JSON array of strings (stored as <c>jsonb</c>).</summary>
    [Column(Json = true)]
    public string Categories => Feeds.FeedJson.Strings(CategoryList);

    /// <summary>The ORGANIZER's address, without <c>mailto:</c>.</summary>
    public string? Organizer { get; init; }

    /// <summary>SEQUENCE, the revision number.</summary>
    public int? Sequence { get; init; }

    /// <summary>LAST-MODIFIED, when given in UTC.</summary>
    public DateTimeOffset? LastModified { get; init; }
}
