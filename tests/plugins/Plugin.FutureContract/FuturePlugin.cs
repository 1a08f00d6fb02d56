using Ingestion;

namespace Fixtures.Future;

/// <summary>A plug-in built against contract version 2.</summary>
public sealed class FuturePlugin : IIngestionPlugin
{
    public void Configure(IIngestionBuilder builder) => builder.AddSource("future", _ => new FutureSource());
}

public sealed class FutureRecord
{
    [RecordKey]
    public string Id { get; set; } = "";
}

public sealed class FutureSource : IngestionSource<FutureRecord>
{
    public override IAsyncEnumerable<FutureRecord> ReadAsync(IngestionContext context, CancellationToken cancellationToken) => AsyncEnumerable.Empty<FutureRecord>();
}
