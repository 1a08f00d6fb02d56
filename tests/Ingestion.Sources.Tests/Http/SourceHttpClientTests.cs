using System.IO.Compression;
using System.Net;
using System.Text;
using Ingestion.Sources.Http;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Sources.Tests.Http;

public sealed class SourceHttpClientTests
{
    internal static SourceHttpOptions FastOptions() => new()
    {
        RequestTimeout = TimeSpan.FromMilliseconds(800),
        ReadTimeout = TimeSpan.FromMilliseconds(300),
        RetryDelay = TimeSpan.FromMilliseconds(10),
        MaxRetryDelay = TimeSpan.FromSeconds(5),
        MaxRetryAttempts = 2,
        CircuitBreaker = { Enabled = false },
    };

    internal static SourceHttpClient Client(IngestionContext context, SourceHttpOptions? options = null)
    {
        var services = new ServiceCollection().AddSourceHttp().BuildServiceProvider();
        return services.GetRequiredService<ISourceHttpClientFactory>().Create(context, options ?? FastOptions());
    }

    private static async Task<string> ReadAllAsync(SourceHttpResponse response)
    {
        using var reader = new StreamReader(response.Body);
        return await reader.ReadToEndAsync();
    }

    [Fact]
    public async Task Retries_a_500_then_succeeds()
    {
        var calls = 0;
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                ctx.Response.StatusCode = 500;
                await ctx.Response.WriteAsync("boom");
                return;
            }

            await ctx.Response.WriteAsync("ok");
        });
        var http = Client(new TestIngestionContext());
        await using var response = await http.GetAsync(server.Url("data"), default);
        Assert.Equal("ok", await ReadAllAsync(response));
        Assert.Equal(2, server.RequestCount);
        Assert.Equal(2, http.Budget.UsedThisRun);
    }

    [Fact]
    public async Task Honours_Retry_After_on_429()
    {
        var calls = 0;
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                ctx.Response.StatusCode = 429;
                ctx.Response.Headers.RetryAfter = "3";
                return;
            }

            await ctx.Response.WriteAsync("ok");
        });
        var clock = new ScaledTimeProvider(0.01);
        var http = Client(new TestIngestionContext(time: clock));
        await using var response = await http.GetAsync(server.Url("data"), default);
        Assert.Equal("ok", await ReadAllAsync(response));
        Assert.Equal(2, server.RequestCount);
        Assert.Contains(TimeSpan.FromSeconds(3), clock.Delays);
    }

    [Fact]
    public async Task A_Retry_After_longer_than_allowed_is_left_to_the_runner()
    {
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            ctx.Response.StatusCode = 503;
            ctx.Response.Headers.RetryAfter = "120";
            return Task.CompletedTask;
        });
        var http = Client(new TestIngestionContext());
        var e = await Assert.ThrowsAsync<TransientIngestionException>(() => http.GetAsync(server.Url("data"), default));
        Assert.Equal(TimeSpan.FromSeconds(120), e.RetryAfter);
        Assert.Equal(1, server.RequestCount);
        Assert.Contains("503", e.Message, StringComparison.Ordinal);
        Assert.Contains("test-source", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_that_never_answers_times_out()
    {
        await using var server = await TestHttpServer.StartAsync(async ctx => await Task.Delay(Timeout.Infinite, ctx.RequestAborted));
        var options = FastOptions();
        options.RequestTimeout = TimeSpan.FromMilliseconds(200);
        options.MaxRetryAttempts = 1;
        var http = Client(new TestIngestionContext(), options);
        var e = await Assert.ThrowsAsync<TransientIngestionException>(() => http.GetAsync(server.Url("slow"), default));
        Assert.Contains("RequestTimeout", e.Message, StringComparison.Ordinal);

        // The timeout was retried once: two attempts, as the client counts them. The server saw the first; the second
        // may time out on a busy machine before the server has dispatched it (a CI run once saw only one).
        Assert.Contains("2 attempt(s)", e.Message, StringComparison.Ordinal);
        Assert.InRange(server.RequestCount, 1, 2);
    }

    [Fact]
    public async Task A_body_that_stalls_times_out()
    {
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            await ctx.Response.WriteAsync("partial");
            await ctx.Response.Body.FlushAsync();
            await Task.Delay(Timeout.Infinite, ctx.RequestAborted);
        });
        var http = Client(new TestIngestionContext());
        await using var response = await http.GetAsync(server.Url("stall"), default);
        var e = await Assert.ThrowsAsync<TransientIngestionException>(() => ReadAllAsync(response));
        Assert.Contains("ReadTimeout", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_gzip_bomb_is_refused()
    {
        var bomb = Gzip(new byte[20 << 20]);
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            ctx.Response.Headers.ContentEncoding = "gzip";
            await ctx.Response.Body.WriteAsync(bomb);
        });
        var options = FastOptions();
        options.MaxDecompressedBytes = 4 << 20;
        options.MaxExpansionRatio = 1_000_000;
        var http = Client(new TestIngestionContext(), options);
        await using (var response = await http.GetAsync(server.Url("bomb"), default))
        {
            var e = await Assert.ThrowsAsync<IngestionException>(() => ReadAllAsync(response));
            Assert.Contains("MaxDecompressedBytes", e.Message, StringComparison.Ordinal);
        }

        options = FastOptions();
        var ratio = Client(new TestIngestionContext(), options);
        await using (var response = await ratio.GetAsync(server.Url("bomb"), default))
        {
            var e = await Assert.ThrowsAsync<IngestionException>(() => ReadAllAsync(response));
            Assert.Contains("MaxExpansionRatio", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Gzip_and_deflate_bodies_are_decompressed()
    {
        var text = string.Concat(Enumerable.Repeat("hello,world\n", 1000));
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            if (ctx.Request.Path == "/gz")
            {
                ctx.Response.Headers.ContentEncoding = "gzip";
                await ctx.Response.Body.WriteAsync(Gzip(Encoding.UTF8.GetBytes(text)));
            }
            else
            {
                ctx.Response.Headers.ContentEncoding = "deflate";
                var ms = new MemoryStream();
                using (var z = new ZLibStream(ms, CompressionLevel.Fastest, leaveOpen: true))
                {
                    z.Write(Encoding.UTF8.GetBytes(text));
                }

                await ctx.Response.Body.WriteAsync(ms.ToArray());
            }
        });
        var http = Client(new TestIngestionContext());
        await using (var r = await http.GetAsync(server.Url("gz"), default))
        {
            Assert.Equal(text, await ReadAllAsync(r));
        }

        await using (var r = await http.GetAsync(server.Url("deflate"), default))
        {
            Assert.Equal(text, await ReadAllAsync(r));
        }
    }

    [Fact]
    public async Task A_response_over_the_size_cap_is_aborted()
    {
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            if (ctx.Request.Path == "/announced")
            {
                ctx.Response.ContentLength = 5000;
            }

            await ctx.Response.Body.WriteAsync(new byte[5000]);
        });
        var options = FastOptions();
        options.MaxResponseBytes = 1000;
        var http = Client(new TestIngestionContext(), options);
        var announced = await Assert.ThrowsAsync<IngestionException>(() => http.GetAsync(server.Url("announced"), default));
        Assert.Contains("MaxResponseBytes", announced.Message, StringComparison.Ordinal);
        await using var response = await http.GetAsync(server.Url("chunked"), default);
        var streamed = await Assert.ThrowsAsync<IngestionException>(() => ReadAllAsync(response));
        Assert.Contains("MaxResponseBytes", streamed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_truncated_body_is_a_transient_error()
    {
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            ctx.Response.ContentLength = 10_000;
            await ctx.Response.Body.WriteAsync(new byte[100]);
            await ctx.Response.Body.FlushAsync();
            ctx.Abort();
        });
        var options = FastOptions();
        options.MaxRetryAttempts = 0;
        var http = Client(new TestIngestionContext(), options);

        // Kestrel may cut the connection before or after the headers left: either way the run sees a transient error.
        var e = await Assert.ThrowsAsync<TransientIngestionException>(async () =>
        {
            await using var response = await http.GetAsync(server.Url("cut"), default);
            await ReadAllAsync(response);
        });
        Assert.Contains("/cut", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_404_fails_without_retry_and_redacts_the_key()
    {
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            ctx.Response.StatusCode = 404;
            await ctx.Response.WriteAsync($"no such thing for key {ctx.Request.Query["api_key"]} and {ctx.Request.Headers["X-Api-Key"]}");
        });
        var options = FastOptions();
        options.Headers["X-Api-Key"] = "header-secret-123";
        var http = Client(new TestIngestionContext(), options);
        http.Redactor.AddSecret("query-secret-456");
        var e = await Assert.ThrowsAsync<IngestionException>(() => http.GetAsync(server.Url("x?api_key=query-secret-456&q=1"), default));
        Assert.IsNotType<TransientIngestionException>(e);
        Assert.Equal(1, server.RequestCount);
        Assert.DoesNotContain("query-secret-456", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("header-secret-123", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("query-secret-456", e.Position, StringComparison.Ordinal);
        Assert.Contains("api_key=***", e.Message, StringComparison.Ordinal);
        Assert.Contains("404", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Conditional_fetch_sends_validators_and_a_304_is_not_modified()
    {
        string? ifNoneMatch = null;
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            ifNoneMatch = ctx.Request.Headers.IfNoneMatch;
            if (ifNoneMatch == "\"v1\"")
            {
                ctx.Response.StatusCode = 304;
                return;
            }

            ctx.Response.Headers.ETag = "\"v1\"";
            await ctx.Response.WriteAsync("a,b\n1,2\n");
        });
        var first = new TestIngestionContext();
        await using (var doc = await Client(first).OpenDocumentAsync(server.Url("f.csv").AbsoluteUri, default))
        {
            Assert.NotNull(doc);
            Assert.Equal("a,b\n1,2\n", await new StreamReader(doc.Content).ReadToEndAsync());
            Assert.Equal("\"v1\"", doc.ETag);
            Assert.NotNull(doc.ContentHash);
        }

        var second = new TestIngestionContext(state: new SourceState { ETag = "\"v1\"" });
        Assert.Null(await Client(second).OpenDocumentAsync(server.Url("f.csv").AbsoluteUri, default));
        Assert.Equal("\"v1\"", ifNoneMatch);
        Assert.True(second.IsNotModified);

        var full = new TestIngestionContext(state: new SourceState { ETag = "\"v1\"" }, mode: IngestionMode.FullRefresh);
        await using var again = await Client(full).OpenDocumentAsync(server.Url("f.csv").AbsoluteUri, default);
        Assert.NotNull(again);
        Assert.False(full.IsNotModified);
    }

    [Fact]
    public async Task Same_content_from_a_server_ignoring_validators_is_not_modified()
    {
        var body = "a,b\n1,2\n";
        await using var server = await TestHttpServer.StartAsync(ctx => ctx.Response.WriteAsync(body));
        string hash;
        var first = new TestIngestionContext();
        await using (var doc = await Client(first).OpenDocumentAsync(server.Url("f.csv").AbsoluteUri, default))
        {
            await new StreamReader(doc!.Content).ReadToEndAsync();
            hash = doc.ContentHash!;
        }

        var second = new TestIngestionContext(state: new SourceState { ContentHash = hash });
        Assert.Null(await Client(second).OpenDocumentAsync(server.Url("f.csv").AbsoluteUri, default));
        Assert.True(second.IsNotModified);
        Assert.Equal(hash, second.NotModifiedCheckpoint!.ContentHash);

        body = "a,b\n1,3\n";
        var third = new TestIngestionContext(state: new SourceState { ContentHash = hash });
        await using var changed = await Client(third).OpenDocumentAsync(server.Url("f.csv").AbsoluteUri, default);
        Assert.NotNull(changed);
        Assert.NotEqual(hash, changed.ContentHash);
        Assert.Equal(body, await new StreamReader(changed.Content).ReadToEndAsync());
    }

    [Fact]
    public async Task The_daily_budget_persists_in_state_and_stops_before_sending()
    {
        await using var server = await TestHttpServer.StartAsync(ctx => ctx.Response.WriteAsync("ok"));
        var today = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var state = new SourceState { Values = new Dictionary<string, string> { [RequestBudget.DayKey] = today, [RequestBudget.CountKey] = "8" } };
        var options = FastOptions();
        options.MaxRequestsPerDay = 10;
        var context = new TestIngestionContext(state: state);
        var http = Client(context, options);
        Assert.Equal(2, http.Budget.Remaining);
        (await http.GetAsync(server.Url("1"), default)).Dispose();
        (await http.GetAsync(server.Url("2"), default)).Dispose();
        var e = await Assert.ThrowsAsync<RequestBudgetExhaustedException>(() => http.GetAsync(server.Url("3"), default));
        Assert.Equal(2, server.RequestCount);
        Assert.Contains("daily request budget of 10", e.Message, StringComparison.Ordinal);
        http.StopForBudget(e, "page=3");
        Assert.Equal("10", context.Checkpoints[^1].Values![RequestBudget.CountKey]);
        Assert.Equal("page=3", context.Checkpoints[^1].Cursor);
        Assert.NotNull(context.StoppedEarlyReason);

        var yesterday = new SourceState { Values = new Dictionary<string, string> { [RequestBudget.DayKey] = "2000-01-01", [RequestBudget.CountKey] = "10" } };
        Assert.Equal(10, Client(new TestIngestionContext("other-source", yesterday), options).Budget.Remaining);
    }

    [Fact]
    public async Task The_run_cap_on_requests_counts_retries()
    {
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            ctx.Response.StatusCode = 502;
            return Task.CompletedTask;
        });
        var http = Client(new TestIngestionContext(limits: new IngestionLimits { MaxRequests = 2 }));
        await Assert.ThrowsAsync<RequestBudgetExhaustedException>(() => http.GetAsync(server.Url("x"), default));
        Assert.Equal(2, server.RequestCount);
    }

    [Fact]
    public async Task The_circuit_opens_after_repeated_failures()
    {
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            ctx.Response.StatusCode = 500;
            return Task.CompletedTask;
        });
        var options = FastOptions();
        options.MaxRetryAttempts = 0;
        options.CircuitBreaker = new HttpCircuitBreakerOptions { MinimumThroughput = 2, FailureRatio = 0.5, BreakDuration = TimeSpan.FromSeconds(30) };
        var services = new ServiceCollection().AddSourceHttp().BuildServiceProvider();
        var factory = services.GetRequiredService<ISourceHttpClientFactory>();
        for (var i = 0; i < 2; i++)
        {
            await Assert.ThrowsAsync<TransientIngestionException>(() => factory.Create(new TestIngestionContext(), options).GetAsync(server.Url("x"), default));
        }

        var e = await Assert.ThrowsAsync<TransientIngestionException>(() => factory.Create(new TestIngestionContext(), options).GetAsync(server.Url("x"), default));
        Assert.Contains("circuit breaker", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, server.RequestCount);
        Assert.NotNull(e.RetryAfter);
    }

    [Fact]
    public async Task Wrong_content_type_is_reported_with_the_body_start()
    {
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            ctx.Response.ContentType = "text/html";
            await ctx.Response.WriteAsync("<html>maintenance</html>");
        });
        var http = Client(new TestIngestionContext());
        await using var response = await http.GetAsync(server.Url("api"), default);
        var e = Assert.Throws<IngestionException>(() => response.EnsureMediaType("JSON", "json"));
        Assert.Contains("text/html", e.Message, StringComparison.Ordinal);
        Assert.Contains("maintenance", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Link_header_next_is_found()
    {
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            ctx.Response.Headers.Link = "<https://x.test/a?page=1>; rel=\"prev\", </items?page=3>; rel=\"next\"";
            return Task.CompletedTask;
        });
        await using var response = await Client(new TestIngestionContext()).GetAsync(server.Url("items?page=2"), default);
        Assert.Equal(server.Url("items?page=3"), response.NextLink);
    }

    [Fact]
    public async Task A_local_file_is_not_modified_when_unchanged()
    {
        var path = Path.Combine(Path.GetTempPath(), $"ingestion-test-{Guid.NewGuid():N}.csv");
        await File.WriteAllTextAsync(path, "a\n1\n");
        try
        {
            var first = new TestIngestionContext();
            string etag;
            await using (var doc = await Client(first).OpenDocumentAsync(path, default))
            {
                etag = doc!.ETag!;
            }

            var second = new TestIngestionContext(state: new SourceState { ETag = etag });
            Assert.Null(await Client(second).OpenDocumentAsync(path, default));
            Assert.True(second.IsNotModified);
            var missing = await Assert.ThrowsAsync<IngestionException>(() => Client(first).OpenDocumentAsync(path + ".missing", default));
            Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Options_are_validated_with_their_names()
    {
        var options = new SourceHttpOptions { RequestTimeout = TimeSpan.Zero, MaxRequestsPerDay = 0, TimeZone = "Nowhere/Special" };
        var errors = options.Validate("Ingestion:Sources:x:Http").ToList();
        Assert.Contains(errors, e => e.Contains("Ingestion:Sources:x:Http:RequestTimeout", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("MaxRequestsPerDay", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Nowhere/Special", StringComparison.Ordinal));
        Assert.Empty(new SourceHttpOptions { TimeZone = "America/Toronto" }.Validate("p"));
    }

    internal static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true))
        {
            gz.Write(data);
        }

        return ms.ToArray();
    }
}
