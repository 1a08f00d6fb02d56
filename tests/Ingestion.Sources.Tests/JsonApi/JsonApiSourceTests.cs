using System.Text.Json;
using Ingestion.Sources.JsonApi;
using Ingestion.Sources.Mapping;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;

namespace Ingestion.Sources.Tests.JsonApi;

public sealed class JsonApiSourceTests
{
    private static string Items(int page, int count, int? total = null) =>
        JsonSerializer.Serialize(new
        {
            meta = new { total },
            data = Enumerable.Range(1, count).Select(i => new { id = $"p{page}-{i}", name = $"Item {page}.{i}", score = page * 10 + i, updated_at = $"2024-01-{page:00}T10:00:0{i}Z" }),
        });

    private static void Columns(JsonApiSourceOptions o)
    {
        o.ItemsPath = "data";
        o.Columns.Add(new ColumnMappingOptions { Name = "id" });
        o.Columns.Add(new ColumnMappingOptions { Name = "name" });
        o.Columns.Add(new ColumnMappingOptions { Name = "score", Type = ColumnType.Int32 });
        o.Columns.Add(new ColumnMappingOptions { Name = "updated_at", Type = ColumnType.TimestampTz });
        o.Key.Add("id");
        o.Http.RetryDelay = TimeSpan.FromMilliseconds(5);
        o.Http.CircuitBreaker.Enabled = false;
    }

    [Fact]
    public async Task Pages_by_number_until_the_total_which_changes_mid_run()
    {
        var total = 10;
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            var page = int.Parse(ctx.Request.Query["page"]!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal("2", ctx.Request.Query["limit"]);
            Assert.Equal("s3cr3t-key", ctx.Request.Query["api_key"]);
            var result = Items(page, page <= 3 ? 2 : 0, total);
            total = 6; // the total shrinks mid-run: paging stops once it is reached
            ctx.Response.ContentType = "application/json";
            return ctx.Response.WriteAsync(result);
        });
        await using var harness = new RunnerHarness(b => b.AddJsonApiSource("items", o =>
        {
            o.Url = server.Url("items?lang=fr").AbsoluteUri;
            o.Pagination = JsonApiPagination.PageNumber;
            o.PageSize = 2;
            o.TotalPath = "meta.total";
            o.ApiKey = "s3cr3t-key";
            o.ApiKeyParameter = "api_key";
            Columns(o);
        }));
        var result = await harness.RunAsync("items");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(6, result.Counts.Created);
        Assert.Equal(3, server.RequestCount);
        var state = await harness.StateAsync("items");
        Assert.Equal(string.Empty, state.Values[JsonApiSource.NextKey]);
    }

    [Fact]
    public async Task Stops_at_an_empty_last_page()
    {
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            var page = int.Parse(ctx.Request.Query["page"]!, System.Globalization.CultureInfo.InvariantCulture);
            ctx.Response.ContentType = "application/json";
            return ctx.Response.WriteAsync(Items(page, page <= 2 ? 2 : 0));
        });
        await using var harness = new RunnerHarness(b => b.AddJsonApiSource("items", o =>
        {
            o.Url = server.Url("items").AbsoluteUri;
            o.Pagination = JsonApiPagination.PageNumber;
            o.PageSize = 2;
            Columns(o);
        }));
        var result = await harness.RunAsync("items");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(4, result.Counts.Created);
        Assert.Equal(3, server.RequestCount);
    }

    [Fact]
    public async Task Resumes_from_the_checkpoint_after_a_failure_at_page_3_of_4()
    {
        var broken = true;
        var pages = new List<int>();
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            var page = int.Parse(ctx.Request.Query["page"]!, System.Globalization.CultureInfo.InvariantCulture);
            lock (pages)
            {
                pages.Add(page);
            }

            if (page == 3 && broken)
            {
                ctx.Response.StatusCode = 500;
                return Task.CompletedTask;
            }

            ctx.Response.ContentType = "application/json";
            return ctx.Response.WriteAsync(Items(page, page == 4 ? 1 : 2));
        });
        await using var harness = new RunnerHarness(b => b.AddJsonApiSource("items", o =>
        {
            o.Url = server.Url("items").AbsoluteUri;
            o.Pagination = JsonApiPagination.PageNumber;
            o.PageSize = 2;
            Columns(o);
            o.Http.MaxRetryAttempts = 1;
        }, s =>
        {
            s.BatchSize = 1;
            s.MaxRetryAttempts = 0;
        }));
        var failed = await harness.RunAsync("items");
        Assert.Equal(IngestionStatus.Failed, failed.Status);
        Assert.Contains("500", failed.Error!.Message, StringComparison.Ordinal);
        Assert.Equal(4, failed.Counts.Created);
        Assert.Equal("3", (await harness.StateAsync("items")).Values[JsonApiSource.NextKey]);

        broken = false;
        pages.Clear();
        var resumed = await harness.RunAsync("items");
        Assert.Equal(IngestionStatus.Succeeded, resumed.Status);
        Assert.Equal([3, 4], pages);
        Assert.Equal(3, resumed.Counts.Created);
        Assert.Equal(7, harness.Sink.GetTable("items").Count);
    }

    [Fact]
    public async Task A_spent_budget_stops_cleanly_and_the_next_run_resumes()
    {
        var pages = new List<string>();
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            var offset = int.Parse(ctx.Request.Query["offset"]!, System.Globalization.CultureInfo.InvariantCulture);
            pages.Add(ctx.Request.Query["offset"]!);
            ctx.Response.ContentType = "application/json";
            return ctx.Response.WriteAsync(Items(offset / 2 + 1, offset >= 6 ? 1 : 2));
        });
        await using var harness = new RunnerHarness(b => b.AddJsonApiSource("items", o =>
        {
            o.Url = server.Url("items").AbsoluteUri;
            o.Pagination = JsonApiPagination.OffsetLimit;
            o.PageSize = 2;
            o.Http.MaxRequestsPerRun = 2;
            Columns(o);
        }));
        var first = await harness.RunAsync("items");
        Assert.Equal(IngestionStatus.PartiallySucceeded, first.Status);
        Assert.Equal(4, first.Counts.Created);
        Assert.Equal("4", (await harness.StateAsync("items")).Values[JsonApiSource.NextKey]);
        var second = await harness.RunAsync("items");
        Assert.Equal(IngestionStatus.Succeeded, second.Status);
        Assert.Equal(["0", "2", "4", "6"], pages);
        Assert.Equal(7, harness.Sink.GetTable("items").Count);
    }

    [Fact]
    public async Task Cursor_pages_send_the_incremental_parameter_with_overlap_and_save_the_newest_time()
    {
        var since = new List<string?>();
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            since.Add(ctx.Request.Query["updated_since"]);
            Assert.Equal("Bearer tok-123456", ctx.Request.Headers.Authorization);
            var cursor = ctx.Request.Query["cursor"].ToString();
            var page = cursor == "" ? 1 : 2;
            var body = Items(page, 2).Replace("\"meta\":{\"total\":null}", $"\"meta\":{{\"next\":{(page == 1 ? "\"abc\"" : "null")}}}", StringComparison.Ordinal);
            ctx.Response.ContentType = "application/json; charset=utf-8";
            return ctx.Response.WriteAsync(body);
        });
        await using var harness = new RunnerHarness(b => b.AddJsonApiSource("items", o =>
        {
            o.Url = server.Url("items").AbsoluteUri;
            o.Pagination = JsonApiPagination.Cursor;
            o.NextCursorPath = "meta.next";
            o.PageSize = 2;
            o.ApiKey = "tok-123456";
            o.ApiKeyHeader = "Authorization";
            o.ApiKeyPrefix = "Bearer ";
            o.IncrementalParameter = "updated_since";
            o.IncrementalField = "updated_at";
            o.Overlap = TimeSpan.FromMinutes(10);
            Columns(o);
        }));
        await harness.States.SaveAsync("items", new SourceState { Cursor = "2024-01-01T00:00:00Z" }, default);
        var result = await harness.RunAsync("items");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(4, result.Counts.Created);
        Assert.Equal(["2023-12-31T23:50:00Z", "2023-12-31T23:50:00Z"], since);
        Assert.Equal(new DateTimeOffset(2024, 1, 2, 10, 0, 2, TimeSpan.Zero), DateTimeOffset.Parse((await harness.StateAsync("items")).Cursor!, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Follows_the_Link_header_and_rejects_bad_items()
    {
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            ctx.Response.ContentType = "application/json";
            if (ctx.Request.Query["p"] == "2")
            {
                return ctx.Response.WriteAsync("{\"data\":[{\"id\":\"b\",\"score\":\"many\"},{\"name\":\"no id\"},{\"id\":\"c\",\"score\":3}]}");
            }

            ctx.Response.Headers.Link = "</items?p=2>; rel=\"next\"";
            return ctx.Response.WriteAsync("{\"data\":[{\"id\":\"a\",\"score\":1}]}");
        });
        await using var harness = new RunnerHarness(b => b.AddJsonApiSource("items", o =>
        {
            o.Url = server.Url("items").AbsoluteUri;
            o.PageSizeParameter = null;
            Columns(o);
        }, s => s.MaxRejected = 5));
        var result = await harness.RunAsync("items");
        Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);
        Assert.Equal(2, result.Counts.Created);
        Assert.Equal(2, result.Counts.Rejected);
    }

    [Theory]
    [InlineData("application/json", "{\"data\":[{\"id\":1,", "malformed JSON")]
    [InlineData("text/html", "<html>down for maintenance</html>", "text/html")]
    [InlineData("application/json", "{\"items\":[]}", "no items array")]
    public async Task Bad_pages_fail_the_run_with_a_clear_error(string contentType, string body, string expected)
    {
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            ctx.Response.ContentType = contentType;
            return ctx.Response.WriteAsync(body);
        });
        await using var harness = new RunnerHarness(b => b.AddJsonApiSource("items", o =>
        {
            o.Url = server.Url("items").AbsoluteUri;
            Columns(o);
        }, s => s.MaxRetryAttempts = 0));
        var result = await harness.RunAsync("items");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains(expected, result.Error!.Message, StringComparison.Ordinal);
        Assert.Contains("'items'", result.Error.Message, StringComparison.Ordinal);
    }
}
