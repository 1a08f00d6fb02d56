namespace Ingestion.Compare.Harness;

/// <summary>
/// One case of the comparison runner. The harness creates it, calls <see cref="SetUpAsync"/> (not timed),
/// times <see cref="RunAsync"/> while sampling the process's peak working set, calls
/// <see cref="VerifyAsync"/> (not timed; throw when the work was not done right) and
/// <see cref="TearDownAsync"/>, then prints <c>case=&lt;name&gt; &lt;unit&gt;=&lt;n&gt; seconds=&lt;s&gt; &lt;unit&gt;_per_s=&lt;r&gt;</c>.
/// Register a new case in <see cref="CaseRegistry.All"/>.
/// </summary>
public abstract class CompareCase
{
    /// <summary>The case name: lower snake_case, unique, used by <c>--cases</c> and in the output.</summary>
    public abstract string Name { get; }

    /// <summary>What the case counts: <c>rows</c> (loads) or <c>items</c> (queue, dedup).</summary>
    public virtual string Unit => "rows";

    /// <summary>Whether the work runs in this process, so its peak working set means something (false for <c>psql</c>).</summary>
    public virtual bool MeasuresMemory => true;

    /// <summary>
    /// Whether the harness first runs the whole case once on a few thousand rows, untimed, so that JIT
    /// compilation and first-use costs (EF Core's model, Npgsql's type mapping) stay out of the figures.
    /// </summary>
    public virtual bool WarmsUp => true;

    /// <summary>Prepares the case (tables, preloaded rows, input files). Not timed.</summary>
    /// <param name="context">The run's context.</param>
    /// <param name="cancellationToken">Cancels the case.</param>
    /// <returns>A task.</returns>
    public virtual Task SetUpAsync(CaseContext context, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Does the measured work. Timed.</summary>
    /// <param name="context">The run's context.</param>
    /// <param name="cancellationToken">Cancels the case.</param>
    /// <returns>How many rows or items the case processed (the count the rate is computed from).</returns>
    public abstract Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken);

    /// <summary>Checks the outcome (row counts, merge counts); throws when it is wrong. Not timed.</summary>
    /// <param name="context">The run's context.</param>
    /// <param name="cancellationToken">Cancels the case.</param>
    /// <returns>A task.</returns>
    public virtual Task VerifyAsync(CaseContext context, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Drops what the case made, so later cases start from the same state. Not timed; always called.</summary>
    /// <param name="context">The run's context.</param>
    /// <param name="cancellationToken">Cancels the case.</param>
    /// <returns>A task.</returns>
    public virtual Task TearDownAsync(CaseContext context, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>A performance goal: <see cref="Case"/>'s rate divided by <see cref="Baseline"/>'s must reach <see cref="Minimum"/>.</summary>
/// <param name="Case">The measured case.</param>
/// <param name="Baseline">The case it is compared with.</param>
/// <param name="Minimum">The lowest acceptable ratio of rates.</param>
public sealed record Goal(string Case, string Baseline, double Minimum);

/// <summary>A ratio printed for what it explains, with no goal: <see cref="Case"/>'s rate divided by <see cref="Reference"/>'s.</summary>
/// <param name="Case">The measured case.</param>
/// <param name="Reference">The case it is set against.</param>
public sealed record ReferenceRatio(string Case, string Reference);

/// <summary>The measured outcome of one case.</summary>
/// <param name="Name">The case name.</param>
/// <param name="Unit">rows or items.</param>
/// <param name="Count">How many were processed.</param>
/// <param name="Seconds">The timed seconds.</param>
/// <param name="PeakWorkingSetBytes">The process's peak working set during the timed part, when measured.</param>
public sealed record CaseResult(string Name, string Unit, long Count, double Seconds, long? PeakWorkingSetBytes)
{
    /// <summary>Rows or items per second.</summary>
    public double Rate => Seconds > 0 ? Count / Seconds : 0;
}
