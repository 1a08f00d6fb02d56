using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Running;
using Ingestion.Sources.Feeds;
using Ingestion.Sources.Ics;
using Ingestion.Sources.Tests.Feeds;
using Ingestion.Sources.Tests.Http;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Sources.Tests.EndToEnd;

/// <summary>
/// RSS/Atom and ICS sources ingest into PostgreSQL through the runner: Kestrel on 127.0.0.1 serves fixture
/// documents, the real PostgreSQL sink writes them into a throwaway database, and later runs see them unchanged.
/// </summary>
public sealed class FeedAndCalendarEndToEndTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    /// <summary>A document the test can swap, served with an ETag (304 on a match) unless validators are off.</summary>
    private sealed class Document(string path, string contentType, bool validators = true)
    {
        private volatile byte[] _body = FeedFixtures.Bytes(path);
        private volatile string _etag = "\"v1\"";

        public int NotModifiedAnswers;

        public void Replace(string path, string etag)
        {
            _body = FeedFixtures.Bytes(path);
            _etag = etag;
        }

        public Task<TestHttpServer> ServeAsync() => TestHttpServer.StartAsync(async ctx =>
        {
            var (body, etag) = (_body, _etag);
            if (validators)
            {
                if (ctx.Request.Headers.IfNoneMatch.ToString() == etag)
                {
                    Interlocked.Increment(ref NotModifiedAnswers);
                    ctx.Response.StatusCode = StatusCodes.Status304NotModified;
                    return;
                }

                ctx.Response.Headers.ETag = etag;
            }

            ctx.Response.ContentType = contentType;
            await ctx.Response.Body.WriteAsync(body);
        });
    }

    private static DateTime Utc(int year, int month, int day, int hour, int minute) => new(year, month, day, hour, minute, 0, DateTimeKind.Utc);

    private static string Fixture(string name) => Path.Combine("EndToEnd", "Fixtures", name);

    /// <summary>A container with the runtime on the PostgreSQL sink and stores, and one source.</summary>
    private ServiceProvider Build(Action<IIngestionBuilder> configure, TimeProvider? clock = null)
    {
        var services = new ServiceCollection();
        if (clock is not null)
        {
            services.AddSingleton(clock);
        }

        configure(services.AddIngestion().UsePostgres(o => o.ConnectionString = db.ConnectionString));
        return services.BuildServiceProvider();
    }

    private static Task<IngestionResult> RunAsync(ServiceProvider services, string source) =>
        services.GetRequiredService<IIngestionRunner>().RunAsync(source, null, CancellationToken.None);

    private static void Table(SourceOptions s, string table)
    {
        s.Table = table;
        s.CreateTable = true;
        s.MaxRetryAttempts = 0;
    }

    [Fact]
    public async Task Rss_into_postgres_then_304_is_not_modified_then_a_changed_feed_counts_created_updated_unchanged()
    {
        var feed = new Document(Fixture("decisions-v1.xml"), "application/rss+xml; charset=utf-8");
        await using var server = await feed.ServeAsync();
        await using var services = Build(b => b.AddFeedSource("e2e-rss", o =>
        {
            o.Url = server.Url("decisions.rss").AbsoluteUri;
            o.Http = SourceHttpClientTests.FastOptions();
        }, s => Table(s, "e2e_rss")));

        var first = await RunAsync(services, "e2e-rss");
        Assert.Equal(IngestionStatus.Succeeded, first.Status);
        Assert.Equal(new IngestionCounts { Read = 3, Created = 3 }, first.Counts);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM e2e_rss WHERE source = 'e2e-rss' AND format = 'rss2'"));
        Assert.Equal("Ville de Montréal c. Tremblay, 2026 QCCM 1201", await db.ScalarAsync<string>("SELECT title FROM e2e_rss WHERE source_id = '2026qccm1201'"));
        Assert.Equal(Utc(2026, 3, 2, 15, 15), await db.ScalarAsync<DateTime>("SELECT published FROM e2e_rss WHERE source_id = '2026qccm1201'"));
        Assert.Equal(Utc(2026, 3, 3, 19, 0), await db.ScalarAsync<DateTime>("SELECT published FROM e2e_rss WHERE source_id = '2026qccm1202'"));
        Assert.True(await db.ScalarAsync<bool>("SELECT categories = '[\"Code de la sécurité routière\", \"Vitesse\"]'::jsonb FROM e2e_rss WHERE source_id = '2026qccm1201'"));
        Assert.Equal(48213L, await db.ScalarAsync<long>("SELECT (enclosures -> 0 ->> 'length')::bigint FROM e2e_rss WHERE source_id = '2026qccm1201'"));
        Assert.Equal("Juge M. Roy", await db.ScalarAsync<string>("SELECT author FROM e2e_rss WHERE source_id = '2026qccm1202'"));

        var second = await RunAsync(services, "e2e-rss");
        Assert.Equal(IngestionStatus.NotModified, second.Status);
        Assert.Equal(1, feed.NotModifiedAnswers);
        Assert.Equal(0L, second.Counts.Read);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM e2e_rss"));

        feed.Replace(Fixture("decisions-v2.xml"), "\"v2\"");
        var third = await RunAsync(services, "e2e-rss");
        Assert.Equal(IngestionStatus.Succeeded, third.Status);
        Assert.Equal(new IngestionCounts { Read = 4, Created = 1, Updated = 1, Unchanged = 2 }, third.Counts);
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM e2e_rss"));
        Assert.Equal("Feu rouge; déclaration de culpabilité (jugement rectifié).", await db.ScalarAsync<string>("SELECT summary FROM e2e_rss WHERE source_id = '2026qccm1202'"));
    }

    [Fact]
    public async Task Atom_from_a_server_without_validators_is_not_modified_by_its_content_hash()
    {
        var feed = new Document(Path.Combine("Feeds", "Fixtures", "atom.xml"), "application/atom+xml", validators: false);
        await using var server = await feed.ServeAsync();
        await using var services = Build(b => b.AddFeedSource("e2e-atom", o =>
        {
            o.Url = server.Url("news.atom").AbsoluteUri;
            o.Http = SourceHttpClientTests.FastOptions();
        }, s => Table(s, "e2e_atom")));

        var first = await RunAsync(services, "e2e-atom");
        Assert.Equal(IngestionStatus.Succeeded, first.Status);
        Assert.Equal(new IngestionCounts { Read = 2, Created = 2 }, first.Counts);
        Assert.Equal("atom1", await db.ScalarAsync<string>("SELECT DISTINCT format FROM e2e_atom"));
        Assert.Equal("https://atom.example.org/blog/posts/1", await db.ScalarAsync<string>("SELECT link FROM e2e_atom WHERE source_id = 'urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a'"));

        var second = await RunAsync(services, "e2e-atom");
        Assert.Equal(IngestionStatus.NotModified, second.Status);
        Assert.Equal(0, feed.NotModifiedAnswers);
        Assert.Equal(2, server.RequestCount);
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM e2e_atom"));
    }

    [Fact]
    public async Task Ics_into_postgres_with_starts_at_ends_at_and_cancelled_events_then_not_modified_then_new_instances_as_the_window_moves()
    {
        var calendar = new Document(Fixture("city-events.ics"), "text/calendar; charset=utf-8");
        await using var server = await calendar.ServeAsync();
        var clock = new ManualClock(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        await using var services = Build(
            b => b.AddIcsSource("e2e-ics", o =>
            {
                o.Url = server.Url("events.ics").AbsoluteUri;
                o.Http = SourceHttpClientTests.FastOptions();
                o.PastWindow = TimeSpan.FromDays(1);
                o.FutureWindow = TimeSpan.FromDays(21);
            }, s => Table(s, "e2e_ics")),
            clock);

        // Window [Feb 28, Mar 22]: three single events, the weekly yoga on Mar 2 and its moved, cancelled Mar 16 (Mar 9 is an EXDATE).
        var first = await RunAsync(services, "e2e-ics");
        Assert.Equal(IngestionStatus.Succeeded, first.Status);
        Assert.Equal(new IngestionCounts { Read = 5, Created = 5 }, first.Counts);
        var columns = await db.ScalarAsync<string>("SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'e2e_ics' AND column_name IN ('start', 'end', 'starts_at', 'ends_at')");
        Assert.Equal("ends_at,starts_at", columns);
        Assert.Equal(Utc(2026, 3, 10, 23, 0), await db.ScalarAsync<DateTime>("SELECT starts_at FROM e2e_ics WHERE source_id = 'conseil-2026-03@ville.example'"));
        Assert.Equal(TimeSpan.FromMinutes(150), await db.ScalarAsync<TimeSpan>("SELECT ends_at - starts_at FROM e2e_ics WHERE source_id = 'conseil-2026-03@ville.example'"));
        Assert.Equal(
            "marche-hiver-2026@ville.example,yoga-parc@ville.example/20260316T130000Z",
            await db.ScalarAsync<string>("SELECT string_agg(source_id, ',' ORDER BY source_id) FROM e2e_ics WHERE is_cancelled"));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM e2e_ics WHERE NOT is_cancelled"));
        Assert.Equal(Utc(2026, 3, 16, 14, 30), await db.ScalarAsync<DateTime>("SELECT starts_at FROM e2e_ics WHERE source_id = 'yoga-parc@ville.example/20260316T130000Z'"));
        Assert.True(await db.ScalarAsync<bool>("SELECT is_all_day FROM e2e_ics WHERE source_id = 'collecte-sapins-2026@ville.example'"));

        var second = await RunAsync(services, "e2e-ics");
        Assert.Equal(IngestionStatus.NotModified, second.Status);
        Assert.Equal(1, calendar.NotModifiedAnswers);
        Assert.Equal(5L, await db.ScalarAsync<long>("SELECT count(*) FROM e2e_ics"));

        // A week later the window [Mar 7, Mar 29] takes in Mar 23: the unchanged calendar is read again, unconditionally.
        clock.Now = clock.Now.AddDays(7);
        var third = await RunAsync(services, "e2e-ics");
        Assert.Equal(IngestionStatus.Succeeded, third.Status);
        Assert.Equal(1, calendar.NotModifiedAnswers);
        Assert.Equal(new IngestionCounts { Read = 5, Created = 1, Unchanged = 4 }, third.Counts);
        Assert.Equal(Utc(2026, 3, 23, 13, 0), await db.ScalarAsync<DateTime>("SELECT starts_at FROM e2e_ics WHERE source_id = 'yoga-parc@ville.example/20260323T130000Z'"));
        Assert.Equal(6L, await db.ScalarAsync<long>("SELECT count(*) FROM e2e_ics"));
    }
}
