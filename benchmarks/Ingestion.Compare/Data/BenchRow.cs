namespace Ingestion.Benchmarks.Data;

/// <summary>
/// One generated row: ten columns shaped like an open-data table (a two-text primary key, a timestamp,
/// a name, a small category, a count, two coordinates, a ~40-character description and a flag).
/// The same class is the typed record of our sink ([RecordKey]), the EF Core entity and the source of
/// the hand-written COPY, so every case moves exactly the same values.
/// </summary>
public sealed class BenchRow
{
    /// <summary>First key column (one of 50 regions).</summary>
    [RecordKey(0)]
    public string Region { get; set; } = string.Empty;

    /// <summary>Second key column, unique per row id.</summary>
    [RecordKey(1)]
    public string Code { get; set; } = string.Empty;

    /// <summary>When the row was observed (UTC).</summary>
    public DateTime ObservedAt { get; set; }

    /// <summary>A short name.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>A small category number.</summary>
    public short Category { get; set; }

    /// <summary>A count.</summary>
    public int Quantity { get; set; }

    /// <summary>Latitude.</summary>
    public double Latitude { get; set; }

    /// <summary>Longitude.</summary>
    public double Longitude { get; set; }

    /// <summary>A ~40-character free text (some contain a comma, so CSV quotes them).</summary>
    public string Description { get; set; } = string.Empty;

    /// <summary>A flag.</summary>
    public bool Active { get; set; }
}
