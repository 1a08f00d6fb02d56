using System.Runtime.CompilerServices;

namespace Ingestion.AspNetCore.Tests;

/// <summary>A row of the test sources.</summary>
public sealed class Item
{
    [RecordKey]
    public string Id { get; set; } = "";

    public int Value { get; set; }

    public string? Note { get; set; }
}

/// <summary>A source yielding the rows a function gives for each run (the run number counts from 1, per instance: register one instance to count runs).</summary>
public sealed class ItemSource(Func<int, IEnumerable<Item>> rows) : IngestionSource<Item>
{
    private int _runs;

    /// <summary>Rows i0001..i{count} whose value is <paramref name="value"/>.</summary>
    public static IEnumerable<Item> Rows(int count, int value = 1) =>
        Enumerable.Range(1, count).Select(i => new Item { Id = $"i{i:D4}", Value = value });

    public override async IAsyncEnumerable<Item> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var run = Interlocked.Increment(ref _runs);
        foreach (var row in rows(run))
        {
            cancellationToken.ThrowIfCancellationRequested();
            await Task.Yield();
            yield return row;
        }
    }
}

/// <summary>A source whose every run fails with the given message.</summary>
public sealed class FailingSource(string message) : IngestionSource<Item>
{
    public override async IAsyncEnumerable<Item> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        throw new IngestionException(message);
#pragma warning disable CS0162 // unreachable: makes the method an iterator
        yield break;
#pragma warning restore CS0162
    }
}

/// <summary>A source that yields one row, then waits until its run is cancelled.</summary>
public sealed class WaitingSource : IngestionSource<Item>
{
    public override async IAsyncEnumerable<Item> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        yield return new Item { Id = "w0001", Value = 1 };
        await Task.Delay(Timeout.Infinite, cancellationToken);
    }
}
