using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;

namespace Ingestion.Sample.Host.Events;

/// <summary>An event of the JSON agenda (its own ids, UTC times, a venue name).</summary>
public sealed class ListedEvent
{
    /// <summary>The agenda's id (the key, with the source name).</summary>
    public string SourceId { get; set; } = "";

    public string Name { get; set; } = "";

    public DateTimeOffset Start { get; set; }

    public string? Venue { get; set; }
}

/// <summary>
/// Reads the bundled JSON agenda (<c>{"events": [{"id", "name", "start", "venue"}]}</c>). An entry without an
/// id, a name or a start is rejected with its position and field; an unchanged file ends the run as not modified.
/// </summary>
public sealed class ListedEventsSource(string path) : IngestionSource<ListedEvent>
{
    private sealed record Agenda(List<Entry?>? Events);

    private sealed record Entry(string? Id, string? Name, DateTimeOffset? Start, string? Venue);

    public override async IAsyncEnumerable<ListedEvent> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var bytes = await File.ReadAllBytesAsync(path, cancellationToken);
        var hash = Convert.ToHexString(SHA256.HashData(bytes));
        if (context.Mode == IngestionMode.Incremental && hash == context.State.ContentHash)
        {
            context.NotModified();
            yield break;
        }

        var agenda = JsonSerializer.Deserialize<Agenda>(bytes, new JsonSerializerOptions(JsonSerializerDefaults.Web))
            ?? throw new IngestionException($"Source '{context.SourceName}': {Path.GetFileName(path)} is empty.");
        var index = 0;
        foreach (var e in agenda.Events ?? [])
        {
            index++;
            var position = $"{Path.GetFileName(path)} events[{index - 1}]";
            if (string.IsNullOrWhiteSpace(e?.Id))
            {
                context.Reject(new RejectedRecord(position, "id", "missing id"));
            }
            else if (string.IsNullOrWhiteSpace(e.Name))
            {
                context.Reject(new RejectedRecord(position, "name", "missing name"));
            }
            else if (e.Start is not { } start)
            {
                context.Reject(new RejectedRecord(position, "start", "missing start"));
            }
            else
            {
                yield return new ListedEvent { SourceId = e.Id, Name = e.Name, Start = start, Venue = e.Venue };
            }
        }

        context.Checkpoint(new SourceCheckpoint(null) { ContentHash = hash });
    }
}
