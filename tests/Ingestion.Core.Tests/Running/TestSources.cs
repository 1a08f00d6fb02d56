using System.Runtime.CompilerServices;

namespace Ingestion.Core.Tests.Running;

public sealed class Item
{
    [RecordKey]
    public string Id { get; set; } = "";

    public int Value { get; set; }
}

/// <summary>A scriptable source: yields items from a function of the context, so each test says what it does.</summary>
public sealed class ScriptedSource(Func<IngestionContext, CancellationToken, IAsyncEnumerable<Item>> read) : IngestionSource<Item>
{
    public int Calls { get; private set; }

    public override IAsyncEnumerable<Item> ReadAsync(IngestionContext context, CancellationToken cancellationToken)
    {
        Calls++;
        return read(context, cancellationToken);
    }

    public static async IAsyncEnumerable<Item> Items(int count, int valueOffset = 0, int checkpointEvery = 0, [EnumeratorCancellation] CancellationToken ct = default)
    {
        for (var i = 1; i <= count; i++)
        {
            ct.ThrowIfCancellationRequested();
            await Task.Yield();
            yield return new Item { Id = $"k{i}", Value = i + valueOffset };
        }
    }
}
