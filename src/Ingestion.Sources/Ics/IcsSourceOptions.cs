using Ingestion.Sources.Feeds;
using Ingestion.Sources.Http;

namespace Ingestion.Sources.Ics;

/// <summary>The settings of an iCalendar (ICS) source, bound from <c>Ingestion:Sources:&lt;name&gt;</c>.</summary>
public sealed class IcsSourceOptions : IHttpSourceOptions
{
    /// <summary>The calendar: an <c>http(s)</c> URL, a <c>file:</c> URL, or a local path.</summary>
    public string? Url { get; set; }

    /// <summary>How far back from now instances of recurring events are produced. Default 30 days.</summary>
    public TimeSpan PastWindow { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How far ahead from now instances of recurring events are produced. Default 365 days.</summary>
    public TimeSpan FutureWindow { get; set; } = TimeSpan.FromDays(365);

    /// <summary>
    /// A fixed start of the expansion window, instead of now minus <see cref="PastWindow"/> (tests, back-fills). The run
    /// parameter <c>windowStart</c> still wins.
    /// </summary>
    public DateTimeOffset? WindowStart { get; set; }

    /// <summary>A fixed end of the expansion window, instead of now plus <see cref="FutureWindow"/>. The run parameter <c>windowEnd</c> still wins.</summary>
    public DateTimeOffset? WindowEnd { get; set; }

    /// <summary>
    /// Re-read an unchanged calendar (skipping the conditional request) once the window has moved this far
    /// since the last expansion, so instances entering the window are produced. Default 1 day.
    /// </summary>
    public TimeSpan ReexpandAfter { get; set; } = TimeSpan.FromDays(1);

    /// <summary>The IANA (or Windows) zone in which floating times and all-day dates are placed. Default <c>UTC</c>.</summary>
    public string FloatingTimeZone { get; set; } = "UTC";

    /// <summary>The most instances produced for one recurring event in the window. Default 5000.</summary>
    public int MaxInstancesPerEvent { get; set; } = 5000;

    /// <summary>The most bytes of the document read (it is buffered before parsing). Default 64 MiB.</summary>
    public long MaxDocumentBytes { get; set; } = 64L << 20;

    /// <summary>The HTTP settings (timeouts, retries, conditional requests, headers, budgets).</summary>
    public SourceHttpOptions Http { get; set; } = new();

    /// <summary>Returns the problems with these settings, each naming the setting; empty when valid.</summary>
    /// <param name="prefix">The configuration path, e.g. <c>Ingestion:Sources:agenda</c>.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<string> Validate(string prefix)
    {
        if (SourceLocation.Problem(Url) is { } problem)
        {
            yield return $"{prefix}:Url {problem}";
        }

        if (PastWindow < TimeSpan.Zero)
        {
            yield return $"{prefix}:PastWindow must not be negative (was {PastWindow}).";
        }

        if (FutureWindow <= TimeSpan.Zero)
        {
            yield return $"{prefix}:FutureWindow must be positive (was {FutureWindow}).";
        }

        if (PastWindow + FutureWindow > TimeSpan.FromDays(366 * 50))
        {
            yield return $"{prefix}:PastWindow + FutureWindow must not exceed 50 years.";
        }

        if (WindowStart is { } windowStart && WindowEnd is { } windowEnd && windowEnd <= windowStart)
        {
            yield return $"{prefix}:WindowEnd ({windowEnd:O}) must be after WindowStart ({windowStart:O}).";
        }

        if (ReexpandAfter <= TimeSpan.Zero)
        {
            yield return $"{prefix}:ReexpandAfter must be positive (was {ReexpandAfter}).";
        }

        if (string.IsNullOrWhiteSpace(FloatingTimeZone) || !TimeZoneInfo.TryFindSystemTimeZoneById(FloatingTimeZone, out _))
        {
            yield return $"{prefix}:FloatingTimeZone '{FloatingTimeZone}' is not a known IANA or Windows time zone.";
        }

        if (MaxInstancesPerEvent <= 0)
        {
            yield return $"{prefix}:MaxInstancesPerEvent must be positive (was {MaxInstancesPerEvent}).";
        }

        if (MaxDocumentBytes <= 0)
        {
            yield return $"{prefix}:MaxDocumentBytes must be positive (was {MaxDocumentBytes}).";
        }

        if (Http is null)
        {
            yield return $"{prefix}:Http must not be null.";
            yield break;
        }

        foreach (var e in Http.Validate($"{prefix}:Http"))
        {
            yield return e;
        }
    }
}
