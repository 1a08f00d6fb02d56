using System.Runtime.CompilerServices;
using Ingestion;

namespace Fixtures.Good;

/// <summary>The good fixture plug-in: one source with its own settings, validated at start.</summary>
public sealed class GoodPlugin : IIngestionPlugin
{
    public void Configure(IIngestionBuilder builder)
    {
        builder.AddSource<GreetingSource>("greetings", o => o.BatchSize = 2);
        builder.AddSourceOptions<GreetingOptions>(
            "greetings",
            validate: o => o.Count > 0 ? [] : [$"Ingestion:Sources:greetings:Count must be positive (was {o.Count})."]);
    }
}

public sealed class GreetingOptions
{
    public int Count { get; set; } = 3;

    public string Prefix { get; set; } = "hello";
}

public sealed class Greeting
{
    [RecordKey]
    public string Id { get; set; } = "";

    public string Text { get; set; } = "";

    public string Build { get; set; } = "";
}

/// <summary>Yields Count greetings after the saved cursor, checkpointing each one.</summary>
public sealed class GreetingSource(GreetingOptions options) : IngestionSource<Greeting>
{
#if V2
    public const string BuildName = "v2";
#else
    public const string BuildName = "v1";
#endif

    public override async IAsyncEnumerable<Greeting> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var start = int.TryParse(context.State.Cursor, out var c) ? c : 0;
        for (var i = start + 1; i <= start + options.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await Task.Yield();
            yield return new Greeting { Id = $"g{i}", Text = $"{options.Prefix} {i}", Build = BuildName };
            context.Checkpoint(new SourceCheckpoint(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
    }
}
