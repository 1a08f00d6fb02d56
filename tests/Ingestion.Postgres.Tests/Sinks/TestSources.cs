namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>A source of records of any type given by a function (for runs through the runner).</summary>
public sealed class FuncSource<T>(Func<IngestionContext, CancellationToken, IAsyncEnumerable<T>> read) : IngestionSource<T>
    where T : class
{
    public override IAsyncEnumerable<T> ReadAsync(IngestionContext context, CancellationToken cancellationToken) => read(context, cancellationToken);
}

/// <summary>A record with a nullable key and a few typed values, for bad-input runs.</summary>
public sealed class Reading
{
    [RecordKey]
    public string? Id { get; set; }

    public string? Label { get; set; }

    public double Value { get; set; }

    public DateTime? TakenAt { get; set; }
}
