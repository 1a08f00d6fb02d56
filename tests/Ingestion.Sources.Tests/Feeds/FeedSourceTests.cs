using System.Text;
using Ingestion.Running;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.Sources.Tests.Feeds;

public sealed class FeedSourceTests
{
    /// <summary>Serves a fixture with an ETag, answering 304 to a matching If-None-Match; records the conditional headers seen.</summary>
    private static Task<TestHttpServer> Serve(byte[] body, string contentType, List<string?>? ifNoneMatch = null, string etag = "\"v1\"") =>
        TestHttpServer.StartAsync(async ctx =>
        {
            var seen = ctx.Request.Headers.IfNoneMatch.ToString();
            lock (ifNoneMatch ?? [])
            {
                ifNoneMatch?.Add(seen.Length == 0 ? null : seen);
            }

            if (seen == etag)
            {
                ctx.Response.StatusCode = StatusCodes.Status304NotModified;
                return;
            }

            ctx.Response.Headers.ETag = etag;
            ctx.Response.ContentType = contentType;
            await ctx.Response.Body.WriteAsync(body);
        });

    [Fact]
    public async Task Rss_over_http_is_ingested_with_rejections_counted_then_304_is_not_modified()
    {
        var conditional = new List<string?>();
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Feed("rss2.xml")), "application/rss+xml; charset=utf-8", conditional);
        await using var run = FeedRunHarness.Feed(server.Url("feed.xml").ToString(), maxRejected: 2);

        var first = await run.RunAsync("news");
        Assert.Equal(IngestionStatus.PartiallySucceeded, first.Status);
        Assert.Equal(new IngestionCounts { Read = 5, Created = 3, Rejected = 2 }, first.Counts);
        var table = run.Sink.GetTable("news");
        Assert.Equal(
            ["news\u001fhttp://127.0.0.1:" + server.BaseAddress.Port + "/d/102", "news\u001fqccq-2026-101", "news\u001fqccq-2026-105"],
            table.Keys.Order(StringComparer.Ordinal));

        var second = await run.RunAsync("news");
        Assert.Equal(IngestionStatus.NotModified, second.Status);
        Assert.Equal([null, "\"v1\""], conditional);

        var full = await run.RunAsync("news", new RunRequest { Mode = IngestionMode.FullRefresh });
        Assert.Equal(3, full.Counts.Unchanged);
        Assert.Null(conditional[^1]);
    }

    [Fact]
    public async Task Rejections_over_the_error_budget_fail_the_run_naming_the_item_and_field()
    {
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Feed("rss2.xml")), "application/rss+xml");
        await using var run = FeedRunHarness.Feed(server.Url("feed.xml").ToString());
        var result = await run.RunAsync("news");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("item 3 (line 26)", result.Error!.Message, StringComparison.Ordinal);
        Assert.Contains("guid", result.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Atom_served_as_the_wrong_content_type_is_still_read_by_its_content()
    {
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Feed("atom.xml")), "text/plain");
        await using var run = FeedRunHarness.Feed(server.Url("atom").ToString());
        var result = await run.RunAsync("news");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        Assert.Equal(2, result.Counts.Created);
    }

    [Fact]
    public async Task An_html_page_instead_of_a_feed_fails_naming_the_root_and_the_content_type()
    {
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Feed("not-a-feed.html")), "text/html; charset=utf-8");
        await using var run = FeedRunHarness.Feed(server.Url("feed").ToString());
        var result = await run.RunAsync("news");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("<html>", result.Error!.Message, StringComparison.Ordinal);
        Assert.Contains("not a feed: got text/html", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(0, result.Counts.Read);
    }

    [Theory]
    [InlineData("latin1.xml", "application/rss+xml", "Été à Montréal")]
    [InlineData("latin1-undeclared.xml", "application/rss+xml; charset=ISO-8859-1", "Français")]
    [InlineData("cp1252.xml", "text/xml", "\u201Cquoted\u201D \u20AC price")]
    public async Task Non_utf8_encodings_from_the_prolog_or_the_content_type_charset(string fixture, string contentType, string title)
    {
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Feed(fixture)), contentType);
        await using var run = FeedRunHarness.Feed(server.Url("feed").ToString());
        var result = await run.RunAsync("news");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        var row = Assert.Single(run.Sink.GetTable("news")).Value;
        Assert.Contains(title, row.OfType<string>());
    }

    [Fact]
    public async Task Malformed_xml_fails_the_run_naming_the_line()
    {
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Feed("malformed.xml")), "application/rss+xml");
        await using var run = FeedRunHarness.Feed(server.Url("feed").ToString());
        var result = await run.RunAsync("news");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("not well-formed", result.Error!.Message, StringComparison.Ordinal);
        Assert.StartsWith("line 4", result.Error.Position, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_body_cut_short_of_its_content_length_fails_before_any_record()
    {
        var bytes = FeedFixtures.Bytes(FeedFixtures.Feed("rss2.xml"));
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            ctx.Response.ContentType = "application/rss+xml";
            ctx.Response.ContentLength = bytes.Length;
            await ctx.Response.Body.WriteAsync(bytes.AsMemory(0, bytes.Length / 2));
            await ctx.Response.Body.FlushAsync();
            ctx.Abort();
        });
        await using var run = FeedRunHarness.Feed(server.Url("feed").ToString(), maxRejected: 10);
        var result = await run.RunAsync("news");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Equal(0, result.Counts.Read);
        Assert.Empty(run.Sink.GetTable("news"));
    }

    [Fact]
    public async Task A_complete_response_holding_a_truncated_document_fails_naming_the_position()
    {
        var text = Encoding.UTF8.GetString(FeedFixtures.Bytes(FeedFixtures.Feed("atom.xml")));
        await using var server = await Serve(Encoding.UTF8.GetBytes(text[..(text.Length * 2 / 3)]), "application/atom+xml");
        await using var run = FeedRunHarness.Feed(server.Url("feed").ToString());
        var result = await run.RunAsync("news");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("not well-formed", result.Error!.Message, StringComparison.Ordinal);
        Assert.StartsWith("line ", result.Error.Position, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Xxe_is_rejected_and_the_external_entity_is_never_fetched()
    {
        var secretRequests = 0;
        byte[] body = [];
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            if (ctx.Request.Path == "/secret")
            {
                Interlocked.Increment(ref secretRequests);
                await ctx.Response.WriteAsync("TOP-SECRET");
                return;
            }

            ctx.Response.ContentType = "application/rss+xml";
            await ctx.Response.Body.WriteAsync(body);
        });
        body = Encoding.UTF8.GetBytes(File.ReadAllText(FeedFixtures.Feed("xxe.xml")).Replace("{{SECRET_URL}}", server.Url("secret").ToString(), StringComparison.Ordinal));
        await using var run = FeedRunHarness.Feed(server.Url("feed").ToString(), maxRejected: 10);
        var result = await run.RunAsync("news");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("DTD", result.Error!.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("TOP-SECRET", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(0, secretRequests);
        Assert.Equal(1, server.RequestCount);
        Assert.Empty(run.Sink.GetTable("news"));
    }

    [Fact]
    public async Task Billion_laughs_is_rejected_without_expansion()
    {
        await using var server = await Serve(FeedFixtures.Bytes(FeedFixtures.Feed("billion-laughs.xml")), "application/rss+xml");
        await using var run = FeedRunHarness.Feed(server.Url("feed").ToString(), maxRejected: 10);
        var before = GC.GetTotalAllocatedBytes(precise: false);
        var result = await run.RunAsync("news");
        var allocated = GC.GetTotalAllocatedBytes(precise: false) - before;
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("DTD", result.Error!.Message, StringComparison.Ordinal);
        Assert.Equal("the DOCTYPE declaration", result.Error.Position);

        // Expanded, &lol9; is 3 GB of text; the whole run allocates a few megabytes at most.
        Assert.True(allocated < 200L << 20, $"allocated {allocated} bytes");
    }

    [Fact]
    public async Task A_local_file_is_read_and_unchanged_on_the_next_run()
    {
        var path = Path.Combine(Path.GetTempPath(), $"feed-{Guid.NewGuid():N}.xml");
        File.Copy(FeedFixtures.Feed("rdf.xml"), path);
        try
        {
            await using var run = FeedRunHarness.Feed(path);
            var first = await run.RunAsync("news");
            Assert.Equal(IngestionStatus.Succeeded, first.Status);
            Assert.Equal(2, first.Counts.Created);
            Assert.Equal(IngestionStatus.NotModified, (await run.RunAsync("news")).Status);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Options_are_validated_at_start()
    {
        await using var run = FeedRunHarness.Feed("ftp://example.org/feed.xml");
        var validator = run.Services.GetServices<IHostedService>();
        var e = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            foreach (var hosted in validator)
            {
                await hosted.StartAsync(CancellationToken.None);
            }
        });
        Assert.Contains("Ingestion:Sources:news:Url", e.Message, StringComparison.Ordinal);
        Assert.Contains("'ftp'", e.Message, StringComparison.Ordinal);
    }
}
