using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using Ingestion.Hosting;
using Microsoft.Extensions.Configuration;

namespace Ingestion.Sample.Host;

/// <summary>A speed or red-light camera location (the shape of Québec's radar open data).</summary>
public sealed class Radar
{
    [RecordKey]
    public string Id { get; set; } = "";

    public string Municipality { get; set; } = "";

    public string Road { get; set; } = "";

    public string Type { get; set; } = "";

    public short SpeedLimit { get; set; }

    public double Longitude { get; set; }

    public double Latitude { get; set; }

    public DateOnly Since { get; set; }
}

/// <summary>
/// A hand-written source, the way a plug-in author writes one: it streams a bundled JSON file,
/// rejects entries with impossible coordinates (with their position and field), skips the whole run
/// as not modified when the file's hash matches the saved one, and checkpoints the hash with the data.
/// </summary>
public sealed class RadarsSource(string path) : IngestionSource<Radar>
{
    private sealed record Entry(string? Id, string? Municipality, string? Road, string? Type, short SpeedLimit, double Longitude, double Latitude, DateOnly Since);

    public override async IAsyncEnumerable<Radar> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var hash = Convert.ToHexString(SHA256.HashData(await File.ReadAllBytesAsync(path, cancellationToken)));
        if (context.Mode == IngestionMode.Incremental && hash == context.State.ContentHash)
        {
            context.NotModified();
            yield break;
        }

        await using var stream = File.OpenRead(path);
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var index = 0;
        await foreach (var e in JsonSerializer.DeserializeAsyncEnumerable<Entry>(stream, options, cancellationToken))
        {
            index++;
            if (e?.Id is null)
            {
                context.Reject(new RejectedRecord($"{Path.GetFileName(path)} entry {index}", "id", "missing id"));
            }
            else if (!new GeoPoint(e.Longitude, e.Latitude).IsValid)
            {
                context.Reject(new RejectedRecord($"{Path.GetFileName(path)} entry {index}", "longitude", $"coordinates ({e.Longitude}, {e.Latitude}) are outside WGS 84", $"{e.Longitude},{e.Latitude}"));
            }
            else
            {
                yield return new Radar { Id = e.Id, Municipality = e.Municipality ?? "", Road = e.Road ?? "", Type = e.Type ?? "", SpeedLimit = e.SpeedLimit, Longitude = e.Longitude, Latitude = e.Latitude, Since = e.Since };
            }
        }

        context.Checkpoint(new SourceCheckpoint(null) { ContentHash = hash });
    }
}

/// <summary>Registers the radars source on the bundled file.</summary>
public sealed class RadarsFeature : ISampleFeature
{
    public void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory) =>
        ingestion.AddSource("speed-radars", _ => new RadarsSource(Path.Combine(dataDirectory, "radars.json")), o =>
        {
            o.Table ??= "speed_radars";
            o.CreateTable = true;
            o.MaxRejected = 5;
        });
}
