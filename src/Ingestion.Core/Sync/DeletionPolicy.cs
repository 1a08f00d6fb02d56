using System.Globalization;

namespace Ingestion.Sync;

/// <summary>What a full refresh does with rows the source no longer returns.</summary>
public enum DeletionMode
{
    /// <summary>Nothing: rows stay.</summary>
    None,
    /// <summary>Set their <see cref="DeletionOptions.DeletedAtColumn"/> to the run's time (cleared again if the row comes back).</summary>
    SoftDelete,
    /// <summary>Delete them.</summary>
    Delete,
}

/// <summary>Deletion detection of one source on full refresh, bound from <c>Ingestion:Sources:&lt;name&gt;:Sync:Deletion</c>.</summary>
public sealed class DeletionOptions
{
    /// <summary>What happens to rows the source no longer returns.</summary>
    public DeletionMode Mode { get; set; } = DeletionMode.None;

    /// <summary>The <c>timestamptz</c> column set by soft deletes (added to the table when missing).</summary>
    public string DeletedAtColumn { get; set; } = "deleted_at";

    /// <summary>
    /// The floor: a full refresh that returns fewer rows than this fraction of the rows present before it
    /// (0.5: half) deletes nothing and fails. 0 disables the check.
    /// </summary>
    public double MinFraction { get; set; } = 0.5;

    /// <summary>A full refresh that returns fewer rows than this deletes nothing and fails (0: no absolute floor).</summary>
    public long MinRows { get; set; }

    /// <summary>Returns the problems with these settings, each naming the setting.</summary>
    /// <param name="prefix">The configuration path, for the messages.</param>
    /// <returns>The problems; empty when valid.</returns>
    public IReadOnlyList<string> Validate(string prefix)
    {
        var errors = new List<string>();
        if (Mode == DeletionMode.SoftDelete && string.IsNullOrWhiteSpace(DeletedAtColumn))
        {
            errors.Add($"{prefix}:DeletedAtColumn must name a column for soft deletes.");
        }

        if (!(MinFraction is >= 0 and <= 1))
        {
            errors.Add($"{prefix}:MinFraction must be between 0 and 1 (was {MinFraction.ToString(CultureInfo.InvariantCulture)}).");
        }

        if (MinRows < 0)
        {
            errors.Add($"{prefix}:MinRows must not be negative (was {MinRows}).");
        }

        return errors;
    }
}

/// <summary>A full refresh returned suspiciously few rows: nothing was deleted.</summary>
public sealed class DeletionFloorException : IngestionException
{
    /// <summary>Creates the exception.</summary>
    public DeletionFloorException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public DeletionFloorException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public DeletionFloorException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The rows the full refresh returned.</summary>
    public long Returned { get; init; }

    /// <summary>The rows present before it.</summary>
    public long Present { get; init; }
}

/// <summary>The deletion floor check: pure, so every sink applies the same rule.</summary>
public static class DeletionFloor
{
    /// <summary>
    /// Fails when a full refresh returned fewer rows than the floor allows, before anything is deleted.
    /// </summary>
    /// <param name="sourceName">The source.</param>
    /// <param name="returned">Distinct rows the full refresh returned.</param>
    /// <param name="present">Rows present (not soft-deleted) before the deletion.</param>
    /// <param name="options">The source's deletion settings.</param>
    /// <exception cref="DeletionFloorException">The refresh is below the floor; the message names the setting.</exception>
    public static void Check(string sourceName, long returned, long present, DeletionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var fractionFloor = (long)Math.Ceiling(present * options.MinFraction);
        var prefix = $"Ingestion:Sources:{sourceName}:Sync:Deletion";
        if (returned < fractionFloor)
        {
            throw new DeletionFloorException(string.Create(CultureInfo.InvariantCulture, $"Source '{sourceName}': the full refresh returned {returned} rows, below the floor of {options.MinFraction:P0} of the {present} rows present ({fractionFloor}); nothing was deleted. If the source really shrank, lower {prefix}:MinFraction for one run."))
            {
                SourceName = sourceName,
                Returned = returned,
                Present = present,
            };
        }

        if (returned < options.MinRows)
        {
            throw new DeletionFloorException($"Source '{sourceName}': the full refresh returned {returned} rows, below {prefix}:MinRows = {options.MinRows}; nothing was deleted.")
            {
                SourceName = sourceName,
                Returned = returned,
                Present = present,
            };
        }
    }
}
