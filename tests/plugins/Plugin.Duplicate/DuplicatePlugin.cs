using Ingestion;

namespace Fixtures.Duplicate;

/// <summary>Declares 'greetings' again (Plugin.Good declares it) next to a name of its own.</summary>
public sealed class DuplicatePlugin : IIngestionPlugin
{
    public void Configure(IIngestionBuilder builder) => builder
        .AddSource("duplicate-own", _ => new EmptySource())
        .AddSource("greetings", _ => new EmptySource());
}

public sealed class EmptyRecord
{
    [RecordKey]
    public string Id { get; set; } = "";
}

public sealed class EmptySource : IngestionSource<EmptyRecord>
{
    public override IAsyncEnumerable<EmptyRecord> ReadAsync(IngestionContext context, CancellationToken cancellationToken) => AsyncEnumerable.Empty<EmptyRecord>();
}
