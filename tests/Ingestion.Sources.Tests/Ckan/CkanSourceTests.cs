using System.Text.Json;
using Ingestion.Sources.Ckan;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;

namespace Ingestion.Sources.Tests.Ckan;

public sealed class CkanSourceTests
{
    private static readonly object[] Fields =
    [
        new { id = "_id", type = "int" },
        new { id = "No de constat", type = "text" },
        new { id = "montant", type = "numeric" },
        new { id = "date", type = "timestamp" },
    ];

    private static string Page(int from, int count, int total) => JsonSerializer.Serialize(new
    {
        success = true,
        result = new
        {
            fields = Fields,
            total,
            records = Enumerable.Range(from, count).Select(i => new Dictionary<string, object> { ["_id"] = i, ["No de constat"] = $"C{i}", ["montant"] = $"{i}.50", ["date"] = $"2024-02-{i:00}T08:30:00" }),
        },
    });

    [Fact]
    public async Task Pages_until_the_total_with_types_from_the_fields()
    {
        var offsets = new List<string>();
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            Assert.Equal("/api/3/action/datastore_search", ctx.Request.Path);
            Assert.Equal("res-1", ctx.Request.Query["resource_id"]);
            Assert.Equal("_id asc", ctx.Request.Query["sort"]);
            var offset = int.Parse(ctx.Request.Query["offset"]!, System.Globalization.CultureInfo.InvariantCulture);
            offsets.Add(ctx.Request.Query["offset"]!);
            ctx.Response.ContentType = "application/json";
            return ctx.Response.WriteAsync(Page(offset + 1, Math.Min(2, 5 - offset), 5));
        });
        await using var harness = new RunnerHarness(b => b.AddCkanSource("constats", o =>
        {
            o.BaseUrl = server.BaseAddress.AbsoluteUri;
            o.ResourceId = "res-1";
            o.PageSize = 2;
        }));
        var result = await harness.RunAsync("constats");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(5, result.Counts.Created);
        Assert.Equal(["0", "2", "4"], offsets);
        var row = harness.Sink.GetTable("constats").Values.First();
        Assert.Contains(row, v => v is decimal);
        Assert.Contains(row, v => v is DateTime);
        Assert.Contains(row, v => v is long);
    }

    [Fact]
    public async Task Incremental_runs_use_sql_above_the_saved_cursor()
    {
        var sql = new List<string>();
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            Assert.Equal("/api/3/action/datastore_search_sql", ctx.Request.Path);
            sql.Add(ctx.Request.Query["sql"]!);
            ctx.Response.ContentType = "application/json";
            return ctx.Response.WriteAsync(Page(11, 2, 2));
        });
        await using var harness = new RunnerHarness(b => b.AddCkanSource("constats", o =>
        {
            o.BaseUrl = server.BaseAddress.AbsoluteUri;
            o.ResourceId = "res-1";
            o.Incremental = true;
        }));
        await harness.States.SaveAsync("constats", new SourceState { Cursor = "10" }, default);
        var result = await harness.RunAsync("constats");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal("SELECT * FROM \"res-1\" WHERE \"_id\" > 10 ORDER BY \"_id\" LIMIT 1000 OFFSET 0", Assert.Single(sql));
        Assert.Equal("12", (await harness.StateAsync("constats")).Cursor);
    }

    [Fact]
    public void A_cursor_that_is_not_a_number_or_time_never_reaches_sql()
    {
        var e = Assert.Throws<IngestionException>(() => CkanSource.SqlLiteral("1; DROP TABLE x", "s"));
        Assert.Contains("full refresh", e.Message, StringComparison.Ordinal);
        Assert.Equal("'2024-01-02T03:04:05'", CkanSource.SqlLiteral("2024-01-02T03:04:05", "s"));
    }

    [Fact]
    public async Task A_refused_request_fails_with_the_portal_error()
    {
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            ctx.Response.ContentType = "application/json";
            return ctx.Response.WriteAsync("{\"success\":false,\"error\":{\"message\":\"Not found: Resource was not found.\"}}");
        });
        await using var harness = new RunnerHarness(b => b.AddCkanSource("constats", o =>
        {
            o.BaseUrl = server.BaseAddress.AbsoluteUri;
            o.ResourceId = "nope";
        }, s => s.MaxRetryAttempts = 0));
        var result = await harness.RunAsync("constats");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("Resource was not found", result.Error!.Message, StringComparison.Ordinal);
    }
}
