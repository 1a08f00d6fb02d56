using Ingestion;

namespace Fixtures.NoSource;

/// <summary>A source class without an entry point (IIngestionPlugin) to register it: the plug-in declares nothing.</summary>
public sealed class OrphanSource : IngestionSource<OrphanRecord>
{
    public override IAsyncEnumerable<OrphanRecord> ReadAsync(IngestionContext context, CancellationToken cancellationToken) => AsyncEnumerable.Empty<OrphanRecord>();
}

public sealed class OrphanRecord
{
    [RecordKey]
    public string Id { get; set; } = "";
}
