using System.Globalization;

namespace Ingestion.Sources.Http;

/// <summary>
/// The requests a source may still send: a per-run cap and a per-day quota counted in the source's time
/// zone. The day's count travels in the source state (<see cref="SourceCheckpoint.Values"/> keys
/// <see cref="DayKey"/> and <see cref="CountKey"/>), saved with the data at each checkpoint, so it survives
/// restarts; within one process it is also shared by the attempts and runs of the source.
/// </summary>
public sealed class RequestBudget
{
    /// <summary>The state value holding the day counted (<c>yyyy-MM-dd</c>).</summary>
    public const string DayKey = "http.budget.day";

    /// <summary>The state value holding the requests sent that day.</summary>
    public const string CountKey = "http.budget.count";

    private readonly SourceHttpRegistry.DayCounter _counter;
    private readonly object _gate = new();

    internal RequestBudget(int? perRun, int? perDay, string day, SourceHttpRegistry.DayCounter counter)
    {
        PerRun = perRun;
        PerDay = perDay;
        Day = day;
        _counter = counter;
    }

    /// <summary>The cap for this run, or <see langword="null"/>.</summary>
    public int? PerRun { get; }

    /// <summary>The quota per day, or <see langword="null"/>.</summary>
    public int? PerDay { get; }

    /// <summary>The day counted, <c>yyyy-MM-dd</c> in the source's time zone.</summary>
    public string Day { get; }

    /// <summary>Requests sent by this run so far.</summary>
    public int UsedThisRun { get; private set; }

    /// <summary>Requests sent today so far (this run included).</summary>
    public int UsedToday => _counter.Get(Day);

    /// <summary>Requests this run may still send, or <see langword="null"/> when unlimited.</summary>
    public int? Remaining
    {
        get
        {
            int? left = null;
            if (PerRun is { } run)
            {
                left = run - UsedThisRun;
            }

            if (PerDay is { } day)
            {
                left = Math.Min(left ?? int.MaxValue, day - UsedToday);
            }

            return left is { } l ? Math.Max(0, l) : null;
        }
    }

    /// <summary>Whether no request may be sent any more.</summary>
    public bool IsSpent => Remaining is 0;

    /// <summary>The state values to save with a checkpoint (empty without a daily quota).</summary>
    /// <returns>The day and its count.</returns>
    public IReadOnlyDictionary<string, string> ToValues() =>
        PerDay is null
            ? new Dictionary<string, string>()
            : new Dictionary<string, string> { [DayKey] = Day, [CountKey] = UsedToday.ToString(CultureInfo.InvariantCulture) };

    /// <summary>Describes what is spent, for messages.</summary>
    /// <returns>A short sentence.</returns>
    public string Describe() =>
        PerDay is { } d && UsedToday >= d
            ? $"the daily request budget of {d} for {Day} is spent ({UsedToday} sent)"
            : $"the request budget of {PerRun} for this run is spent ({UsedThisRun} sent)";

    internal static string DayOf(DateTimeOffset now, string? timeZone)
    {
        var tz = timeZone is null ? TimeZoneInfo.Utc : TimeZoneInfo.FindSystemTimeZoneById(timeZone);
        return TimeZoneInfo.ConvertTime(now, tz).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
    }

    internal static int SavedCount(SourceState state, string day) =>
        state.Values.TryGetValue(DayKey, out var saved) && saved == day
        && state.Values.TryGetValue(CountKey, out var count)
        && int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;

    /// <summary>Takes one request from the budget.</summary>
    /// <param name="sourceName">The source, for the error.</param>
    /// <exception cref="RequestBudgetExhaustedException">The budget is spent.</exception>
    internal void Spend(string sourceName)
    {
        lock (_gate)
        {
            if (IsSpent)
            {
                throw new RequestBudgetExhaustedException($"Source '{sourceName}': {Describe()}.") { SourceName = sourceName };
            }

            UsedThisRun++;
            _counter.Increment(Day);
        }
    }
}

/// <summary>
/// Thrown by <see cref="SourceHttpClient"/> instead of sending a request when the source's request budget
/// is spent. Sources catch it between pages, keep their last checkpoint and stop with
/// <see cref="IngestionContext.StoppedEarly(string)"/> (see <see cref="SourceHttpClient.StopForBudget"/>).
/// </summary>
public sealed class RequestBudgetExhaustedException : IngestionException
{
    /// <summary>Creates the exception.</summary>
    public RequestBudgetExhaustedException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public RequestBudgetExhaustedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public RequestBudgetExhaustedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
