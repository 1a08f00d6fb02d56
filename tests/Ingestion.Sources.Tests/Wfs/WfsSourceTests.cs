using System.Text.Json;
using Ingestion.Sources.Mapping;
using Ingestion.Sources.Wfs;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;

namespace Ingestion.Sources.Tests.Wfs;

public sealed class WfsSourceTests
{
    internal static string Features(int from, int count, int matched) => JsonSerializer.Serialize(new
    {
        type = "FeatureCollection",
        numberMatched = matched,
        numberReturned = count,
        features = Enumerable.Range(from, count).Select(i => new
        {
            type = "Feature",
            id = $"radar.{i}",
            geometry = new { type = "Point", coordinates = new[] { -73.5 - i / 100.0, 45.5 } },
            properties = new { municipalite = $"Ville {i}", vitesse = 50 + i },
        }),
    });

    [Fact]
    public async Task Pages_with_start_index_and_maps_the_geometry()
    {
        var starts = new List<string>();
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            Assert.Equal("GetFeature", ctx.Request.Query["request"]);
            Assert.Equal("ns:radars", ctx.Request.Query["typeNames"]);
            Assert.Equal("2", ctx.Request.Query["count"]);
            var start = int.Parse(ctx.Request.Query["startIndex"]!, System.Globalization.CultureInfo.InvariantCulture);
            starts.Add(ctx.Request.Query["startIndex"]!);
            ctx.Response.ContentType = "application/geo+json";
            return ctx.Response.WriteAsync(Features(start + 1, Math.Min(2, 4 - start), 4));
        });
        await using var harness = new RunnerHarness(b => b.AddWfsSource("radars", o =>
        {
            o.Url = server.Url("geoserver/wfs").AbsoluteUri;
            o.TypeName = "ns:radars";
            o.PageSize = 2;
            o.Columns.Add(new ColumnMappingOptions { Name = "id", From = "@id" });
            o.Columns.Add(new ColumnMappingOptions { Name = "city", From = "municipalite" });
            o.Columns.Add(new ColumnMappingOptions { Name = "speed", From = "vitesse", Type = ColumnType.Int16 });
            o.Key.Add("id");
        }));
        var result = await harness.RunAsync("radars");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(4, result.Counts.Created);
        Assert.Equal(["0", "2"], starts);
        var row = harness.Sink.GetTable("radars").Values.First();
        Assert.Contains(row, v => v is GeoJsonGeometry g && g.Json.Contains("Point", StringComparison.Ordinal));
        Assert.Contains(row, v => v is short);
    }

    [Fact]
    public async Task Reads_a_geojson_file_with_every_property_and_rejects_bad_geometry()
    {
        var path = Path.Combine(Path.GetTempPath(), $"ingestion-{Guid.NewGuid():N}.geojson");
        var json = Features(1, 2, 2).Replace("\"coordinates\":[-73.51,45.5]}", "\"coordinates\":[-73.51,45.5]}", StringComparison.Ordinal);
        using (var doc = JsonDocument.Parse(json))
        {
            var features = doc.RootElement.GetProperty("features").EnumerateArray().Select(f => f.GetRawText()).ToList();
            features.Add("{\"type\":\"Feature\",\"id\":\"radar.9\",\"geometry\":\"POINT(1 2)\",\"properties\":{\"municipalite\":\"X\",\"vitesse\":1}}");
            await File.WriteAllTextAsync(path, $"{{\"type\":\"FeatureCollection\",\"features\":[{string.Join(',', features)}]}}");
        }

        try
        {
            await using var harness = new RunnerHarness(b => b.AddWfsSource("radars", o => o.Url = path, s => s.MaxRejected = 1));
            var result = await harness.RunAsync("radars");
            Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);
            Assert.Equal(2, result.Counts.Created);
            Assert.Equal(1, result.Counts.Rejected);
            var again = await harness.RunAsync("radars");
            Assert.Equal(IngestionStatus.NotModified, again.Status);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Malformed_geojson_fails_naming_the_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"ingestion-{Guid.NewGuid():N}.geojson");
        await File.WriteAllTextAsync(path, "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":");
        try
        {
            await using var harness = new RunnerHarness(b => b.AddWfsSource("radars", o => o.Url = path, s => s.MaxRetryAttempts = 0));
            var result = await harness.RunAsync("radars");
            Assert.Equal(IngestionStatus.Failed, result.Status);
            Assert.Contains("malformed GeoJSON", result.Error!.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
