namespace Ingestion;

/// <summary>How a sink writes a source's records.</summary>
public enum WriteMode
{
    /// <summary>Upsert by key: insert new keys, update changed rows, leave unchanged rows untouched.</summary>
    Merge,
    /// <summary>Insert every record; a key that already exists is a constraint violation.</summary>
    Append,
    /// <summary>Full refresh: the run's records replace the table's content atomically.</summary>
    Replace,
}

/// <summary>What happens when the source has a column the target table lacks.</summary>
public enum SchemaEvolution
{
    /// <summary>Add the column as nullable.</summary>
    Evolve,
    /// <summary>Fail before writing, naming the column.</summary>
    Freeze,
}

/// <summary>When a sink commits.</summary>
public enum TransactionScope
{
    /// <summary>Commit each batch with its checkpoint; a failure keeps earlier batches.</summary>
    PerBatch,
    /// <summary>One transaction for the whole run: all or nothing.</summary>
    WholeRun,
}

/// <summary>
/// The runtime settings of one registered source: where its records go, how they are written,
/// and how runs are bounded and retried. Bound from <c>Ingestion:Sources:&lt;name&gt;</c> and validated at start.
/// </summary>
public sealed class SourceOptions
{
    /// <summary>Whether the source runs at all (a disabled source is skipped by run-all and the scheduler).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The target table; defaults to the source name in snake_case.</summary>
    public string? Table { get; set; }

    /// <summary>The database schema of the target table; defaults to the sink's default (<c>public</c>).</summary>
    public string? Schema { get; set; }

    /// <summary>How records are written.</summary>
    public WriteMode WriteMode { get; set; } = WriteMode.Merge;

    /// <summary>Records per batch (one COPY and one commit with its checkpoint).</summary>
    public int BatchSize { get; set; } = 10_000;

    /// <summary>When the sink commits.</summary>
    public TransactionScope Transaction { get; set; } = TransactionScope.PerBatch;

    /// <summary>How many rejected records a run tolerates; one more fails the run (its open batch rolls back, earlier batches stay). Default 0.</summary>
    public long MaxRejected { get; set; }

    /// <summary>Create the target table from the record schema when it does not exist.</summary>
    public bool CreateTable { get; set; }

    /// <summary>What to do with a source column the target table lacks.</summary>
    public SchemaEvolution SchemaEvolution { get; set; } = SchemaEvolution.Freeze;

    /// <summary>Key columns overriding the record's declared key (for dynamic records).</summary>
    public IList<string> KeyColumns { get; } = new List<string>();

    /// <summary>Materialized views refreshed after a successful run that changed rows.</summary>
    public IList<string> RefreshMaterializedViews { get; } = new List<string>();

    /// <summary>The most time one run may take, retries included; <see langword="null"/>: no limit.</summary>
    public TimeSpan? Timeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How many times a run that failed with a transient error is retried (0: never).</summary>
    public int MaxRetryAttempts { get; set; } = 2;

    /// <summary>The delay before the first retry; later retries back off exponentially, with jitter.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The most records one run reads.</summary>
    public long? MaxRecords { get; set; }

    /// <summary>The most outgoing requests one run makes.</summary>
    public int? MaxRequests { get; set; }

    /// <summary>Returns the problems with these settings, each naming the setting; empty when valid.</summary>
    /// <param name="sourceName">The source the options belong to, for the messages.</param>
    /// <returns>The problems found.</returns>
    public IReadOnlyList<string> Validate(string sourceName)
    {
        var errors = new List<string>();
        var prefix = $"Ingestion:Sources:{sourceName}";
        if (BatchSize <= 0)
        {
            errors.Add($"{prefix}:BatchSize must be positive (was {BatchSize}).");
        }

        if (MaxRejected < 0)
        {
            errors.Add($"{prefix}:MaxRejected must not be negative (was {MaxRejected}).");
        }

        if (Timeout is { } t && t <= TimeSpan.Zero)
        {
            errors.Add($"{prefix}:Timeout must be positive (was {t}).");
        }

        if (MaxRetryAttempts < 0)
        {
            errors.Add($"{prefix}:MaxRetryAttempts must not be negative (was {MaxRetryAttempts}).");
        }

        if (MaxRetryAttempts > 0 && RetryDelay <= TimeSpan.Zero)
        {
            errors.Add($"{prefix}:RetryDelay must be positive when retries are enabled (was {RetryDelay}).");
        }

        if (MaxRecords is <= 0)
        {
            errors.Add($"{prefix}:MaxRecords must be positive (was {MaxRecords}).");
        }

        if (MaxRequests is <= 0)
        {
            errors.Add($"{prefix}:MaxRequests must be positive (was {MaxRequests}).");
        }

        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < KeyColumns.Count; i++)
        {
            if (!keys.Add(KeyColumns[i]))
            {
                errors.Add($"{prefix}:KeyColumns:{i} '{KeyColumns[i]}' appears twice in the key.");
            }
        }

        if (Table is { } table && string.IsNullOrWhiteSpace(table))
        {
            errors.Add($"{prefix}:Table must not be blank.");
        }

        return errors;
    }
}
