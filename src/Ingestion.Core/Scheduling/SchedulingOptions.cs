using Ingestion.Hosting;

namespace Ingestion.Scheduling;

/// <summary>What to do with slots that passed while no host was running (downtime, a long pause).</summary>
public enum MisfirePolicy
{
    /// <summary>Drop missed slots; run from the next slot on.</summary>
    Skip,
    /// <summary>Run once now for all the missed slots (the latest of them).</summary>
    RunOnce,
    /// <summary>Run the latest <see cref="ScheduleOptions.MaxCatchUp"/> missed slots, oldest first, one after another.</summary>
    CatchUp,
}

/// <summary>Scheduler settings, bound from <c>Ingestion:Scheduling</c>; changes are picked up without restart.</summary>
public sealed class SchedulingOptions
{
    /// <summary>The configuration section name under <c>Ingestion</c>.</summary>
    public const string SectionName = "Scheduling";

    /// <summary>Runs schedules at all (per environment, e.g. off in <c>appsettings.Development.json</c>).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The time zone of schedules that name none (IANA id); UTC when unset.</summary>
    public string? DefaultTimeZone { get; set; }

    /// <summary>How long a host's claim on a slot lasts without renewal; the running host renews it every third of this. A host that dies leaves a claim that expires after it.</summary>
    public TimeSpan ClaimLease { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How often a host looks for expired claims of dead hosts to retry or fail.</summary>
    public TimeSpan RecoveryInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The schedules, by name (letters, digits, <c>-</c>, <c>_</c>, <c>.</c>).</summary>
    public IDictionary<string, ScheduleOptions> Schedules { get; } = new Dictionary<string, ScheduleOptions>(StringComparer.Ordinal);

    /// <summary>Returns the problems with these settings, each naming the setting.</summary>
    /// <param name="catalog">The registered sources (a schedule must name one).</param>
    /// <returns>The problems; empty when valid.</returns>
    public IReadOnlyList<string> Validate(SourceCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        const string prefix = "Ingestion:Scheduling";
        var errors = new List<string>();
        if (!string.IsNullOrWhiteSpace(DefaultTimeZone) && !CronSchedule.TryFindTimeZone(DefaultTimeZone, out _, out var tzError))
        {
            errors.Add($"{prefix}:DefaultTimeZone: {tzError}.");
        }

        if (ClaimLease <= TimeSpan.Zero)
        {
            errors.Add($"{prefix}:ClaimLease must be positive (was {ClaimLease}).");
        }

        if (RecoveryInterval <= TimeSpan.Zero)
        {
            errors.Add($"{prefix}:RecoveryInterval must be positive (was {RecoveryInterval}).");
        }

        foreach (var (name, schedule) in Schedules)
        {
            var at = $"{prefix}:Schedules:{name}";
            if (!IngestionServiceCollectionExtensions.SourceNamePattern().IsMatch(name))
            {
                errors.Add($"{at}: schedule name '{name}' is invalid: use 1-100 letters, digits, '_', '-' or '.'.");
            }

            if (schedule is null)
            {
                errors.Add($"{at} is empty.");
                continue;
            }

            if (string.IsNullOrWhiteSpace(schedule.Source))
            {
                errors.Add($"{at}:Source is not set.");
            }
            else if (catalog.Find(schedule.Source) is null)
            {
                var known = catalog.Sources.Count == 0 ? "none" : string.Join(", ", catalog.Sources.Select(s => s.Name));
                errors.Add($"{at}:Source '{schedule.Source}' is not a registered source (registered: {known}).");
            }

            var zone = string.IsNullOrWhiteSpace(schedule.TimeZone) ? DefaultTimeZone : schedule.TimeZone;
            if (!CronSchedule.TryParse(schedule.Cron, zone, out _, out var cronError))
            {
                var setting = !CronSchedule.TryFindTimeZone(zone, out _, out _)
                    ? (string.IsNullOrWhiteSpace(schedule.TimeZone) ? $"{prefix}:DefaultTimeZone" : $"{at}:TimeZone")
                    : $"{at}:Cron";
                errors.Add($"{setting}: {cronError}.");
            }

            if (schedule.RetryAttempts < 1)
            {
                errors.Add($"{at}:RetryAttempts must be at least 1 (was {schedule.RetryAttempts}).");
            }

            if (schedule.RetryDelay <= TimeSpan.Zero)
            {
                errors.Add($"{at}:RetryDelay must be positive (was {schedule.RetryDelay}).");
            }

            if (schedule.MisfireThreshold < TimeSpan.Zero)
            {
                errors.Add($"{at}:MisfireThreshold must not be negative (was {schedule.MisfireThreshold}).");
            }

            if (schedule.Misfire == MisfirePolicy.CatchUp && schedule.MaxCatchUp < 1)
            {
                errors.Add($"{at}:MaxCatchUp must be at least 1 with Misfire = CatchUp (was {schedule.MaxCatchUp}).");
            }

            if (!Enum.IsDefined(schedule.Misfire))
            {
                errors.Add($"{at}:Misfire '{schedule.Misfire}' is not one of Skip, RunOnce, CatchUp.");
            }
        }

        return errors;
    }
}

/// <summary>One schedule: a source, a cron expression in a time zone, and what to do on misfires and failures.</summary>
public sealed class ScheduleOptions
{
    /// <summary>The registered source to run. Required.</summary>
    public string? Source { get; set; }

    /// <summary>The cron expression: 5 fields (Unix) or 6 (seconds first). A schedule is limited to weekdays or weekends by its day-of-week field (<c>1-5</c>, <c>0,6</c>). Required.</summary>
    public string? Cron { get; set; }

    /// <summary>The IANA time zone (e.g. <c>America/Toronto</c>); <see cref="SchedulingOptions.DefaultTimeZone"/> when unset.</summary>
    public string? TimeZone { get; set; }

    /// <summary>Runs this schedule (the source must be enabled too: <c>Ingestion:Sources:&lt;name&gt;:Enabled</c>).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Incremental or full refresh.</summary>
    public IngestionMode Mode { get; set; } = IngestionMode.Incremental;

    /// <summary>What to do with missed slots.</summary>
    public MisfirePolicy Misfire { get; set; } = MisfirePolicy.RunOnce;

    /// <summary>The most missed slots run with <see cref="MisfirePolicy.CatchUp"/>.</summary>
    public int MaxCatchUp { get; set; } = 3;

    /// <summary>How late a slot may start and still count as on time rather than missed.</summary>
    public TimeSpan MisfireThreshold { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Attempts per slot (1 = no retry), on top of the source's own transient retries.</summary>
    public int RetryAttempts { get; set; } = 1;

    /// <summary>The wait between attempts of a slot.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Parameters handed to the source (<see cref="IngestionContext.Parameters"/>).</summary>
    public IDictionary<string, string> Parameters { get; } = new Dictionary<string, string>(StringComparer.Ordinal);
}
