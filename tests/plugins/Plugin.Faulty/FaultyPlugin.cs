using System.Runtime.CompilerServices;
using Ingestion;

namespace Fixtures.Faulty;

/// <summary>Sources that misbehave at run time: one cannot be constructed, one hangs ignoring its token.</summary>
public sealed class FaultyPlugin : IIngestionPlugin
{
    public void Configure(IIngestionBuilder builder)
    {
        builder.AddSource<ExplodingSource>("explodes");
        builder.AddSource<HangingSource>("hangs");
        builder.AddSource<FailingSource>("fails");
    }
}

public sealed class Row
{
    [RecordKey]
    public string Id { get; set; } = "";
}

public sealed class ExplodingSource : IngestionSource<Row>
{
    public ExplodingSource() => throw new InvalidOperationException("the API key setting 'FaultyKey' is missing");

    public override IAsyncEnumerable<Row> ReadAsync(IngestionContext context, CancellationToken cancellationToken) => throw new NotSupportedException();
}

/// <summary>Yields one row, then fails on bad input, as a parser would.</summary>
public sealed class FailingSource : IngestionSource<Row>
{
    public override async IAsyncEnumerable<Row> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        yield return new Row { Id = "first" };
        throw new FormatException("row 2: 'yesterday' is not a date");
    }
}

/// <summary>Yields one row, then waits forever without looking at its cancellation token (a network call with no timeout).</summary>
public sealed class HangingSource : IngestionSource<Row>
{
    public override async IAsyncEnumerable<Row> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        yield return new Row { Id = "before-the-hang" };
        await new TaskCompletionSource().Task;
        yield return new Row { Id = "never" };
    }
}
