using System.Text;
using Ingestion.Sources.Feeds;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;

namespace Ingestion.Sources.Tests.Feeds;

/// <summary>Feeds and non-feeds as servers really send them (issue 17, RSS / Atom).</summary>
public class FeedRealWorldTests
{
    private static Task<TestHttpServer> Serve(string body, string contentType) =>
        TestHttpServer.StartAsync(async ctx =>
        {
            ctx.Response.ContentType = contentType;
            await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(body));
        });

    [Fact]
    public void RSS_2_0_in_the_Userland_namespace_is_read_like_plain_RSS_2_0()
    {
        const string Feed = """
            <?xml version="1.0" encoding="utf-8"?>
            <rss version="2.0" xmlns="http://backend.userland.com/rss2">
              <channel>
                <title>Scripting News</title>
                <item>
                  <title>First</title>
                  <link>https://example.org/1</link>
                  <guid>https://example.org/1#g</guid>
                  <pubDate>Mon, 05 Jan 2026 14:00:00 GMT</pubDate>
                  <category>news</category>
                </item>
                <item>
                  <title>Second</title>
                  <link>https://example.org/2</link>
                </item>
              </channel>
            </rss>
            """;
        var results = FeedParser.Parse(new StringReader(Feed), new FeedParseSettings { SourceName = "news" }).ToList();

        Assert.DoesNotContain(results, r => r.Rejected is not null);
        var items = results.Select(r => r.Item!).ToList();
        Assert.Equal(["https://example.org/1#g", "https://example.org/2"], items.Select(i => i.SourceId));
        Assert.Equal("First", items[0].Title);
        Assert.Equal(new DateTimeOffset(2026, 1, 5, 14, 0, 0, TimeSpan.Zero), items[0].Published);
        Assert.Equal(["news"], items[0].CategoryList);
        Assert.Equal("Scripting News", items[0].FeedTitle);
    }

    [Fact]
    public async Task An_HTML5_page_fetched_as_a_feed_fails_as_not_a_feed_with_its_first_bytes_not_as_a_DTD()
    {
        await using var server = await Serve("\n<!DOCTYPE html>\n<html lang=\"fr\"><head><title>Connexion</title></head><body>Login</body></html>", "text/html; charset=utf-8");
        await using var run = FeedRunHarness.Feed(server.Url("feed").ToString());
        var result = await run.RunAsync("news");

        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("not a feed: got text/html (first bytes: '<!DOCTYPE html> <html lang=\"fr\"><head><title>Connexion", result.Error!.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("DTD", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(0, result.Counts.Read);
    }

    [Fact]
    public async Task A_JSON_error_sent_as_XML_fails_as_not_a_feed()
    {
        await using var server = await Serve("{\"error\":\"rate limited\"}", "application/rss+xml");
        await using var run = FeedRunHarness.Feed(server.Url("feed").ToString());
        var result = await run.RunAsync("news");

        Assert.Contains("not a feed: got application/rss+xml (first bytes: '{\"error\":\"rate limited\"}')", result.Error!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_real_feed_sent_as_text_html_is_read_and_a_feed_with_a_DTD_is_still_refused_as_one()
    {
        await using var mislabelled = await Serve("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><item><guid>a</guid></item></channel></rss>", "text/html");
        await using var run = FeedRunHarness.Feed(mislabelled.Url("feed").ToString());
        Assert.Equal(1, (await run.RunAsync("news")).Counts.Created);

        await using var withDtd = await Serve("<?xml version=\"1.0\"?><!DOCTYPE rss [<!ENTITY x \"y\">]><rss version=\"2.0\"><channel><item><guid>&x;</guid></item></channel></rss>", "text/html");
        await using var refused = FeedRunHarness.Feed(withDtd.Url("feed").ToString());
        var result = await refused.RunAsync("news");
        Assert.Contains("DTD", result.Error!.Message, StringComparison.Ordinal);
    }
}
