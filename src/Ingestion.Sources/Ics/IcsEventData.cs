namespace Ingestion.Sources.Ics;

/// <summary>Rejects the event being read, naming the line and property.</summary>
internal sealed class EventRejectedException(int line, string? field, string message, string? raw) : Exception(message)
{
    public int Line { get; } = line;

    public string? Field { get; } = field;

    public string? Raw { get; } = raw;
}

/// <summary>An event component read and resolved, before expansion.</summary>
internal sealed class EventData
{
    public required IcsComponent Component { get; init; }

    public required string Uid { get; init; }

    public required IcsDateTime Start { get; init; }

    public required IcsZone Zone { get; init; }

    public IcsDateTime? End { get; init; }

    public IcsZone? EndZone { get; init; }

    public IcsDuration? Duration { get; init; }

    public RecurrenceRule? Rule { get; init; }

    public string? RuleText { get; init; }

    public List<DateTime> RDates { get; } = [];

    public HashSet<string> ExDates { get; } = new(StringComparer.Ordinal);

    public string? RecurrenceKey { get; init; }

    public bool Cancelled { get; init; }

    public bool IsRecurring => Rule is not null || RDates.Count > 0;
}
