using System.Runtime.CompilerServices;
using Ingestion;
using Newtonsoft.Json;

namespace Fixtures.Json;

/// <summary>Reports which Newtonsoft.Json this plug-in sees, and uses it.</summary>
public sealed class JsonPlugin : IIngestionPlugin
{
#if JSON_NEW
    public const string SourceName = "json-new";
#else
    public const string SourceName = "json-old";
#endif

    public void Configure(IIngestionBuilder builder) => builder.AddSource<JsonVersionSource>(SourceName);
}

public sealed class JsonVersionRecord
{
    [RecordKey]
    public string Id { get; set; } = "";

    public string JsonAssemblyVersion { get; set; } = "";

    public string JsonFileVersion { get; set; } = "";

    public string Serialized { get; set; } = "";
}

public sealed class JsonVersionSource : IngestionSource<JsonVersionRecord>
{
    public override async IAsyncEnumerable<JsonVersionRecord> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        var assembly = typeof(JsonConvert).Assembly;
        var file = (System.Reflection.AssemblyFileVersionAttribute?)Attribute.GetCustomAttribute(assembly, typeof(System.Reflection.AssemblyFileVersionAttribute));
        yield return new JsonVersionRecord
        {
            Id = JsonPlugin.SourceName,
            JsonAssemblyVersion = assembly.GetName().Version!.ToString(),
            JsonFileVersion = file?.Version ?? "",
            Serialized = JsonConvert.SerializeObject(new { source = JsonPlugin.SourceName, n = 1 }),
        };
    }
}
