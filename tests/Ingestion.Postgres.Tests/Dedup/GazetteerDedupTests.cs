using System.Globalization;
using System.Runtime.CompilerServices;
using Ingestion.Dedup;
using Ingestion.Hosting;
using Ingestion.Postgres.Dedup;
using Ingestion.Postgres.Hosting;
using Ingestion.Running;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Postgres.Tests.Dedup;

public sealed class PlaceRow
{
    public string SourceId { get; set; } = "";

    public string Name { get; set; } = "";

    public double Latitude { get; set; }

    public double Longitude { get; set; }
}

/// <summary>Yields places in order, with a checkpoint after each, resuming after the saved cursor.</summary>
public sealed class PlaceSource(IReadOnlyList<GazetteerPlace> places) : IngestionSource<PlaceRow>
{
    public override async IAsyncEnumerable<PlaceRow> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var from = context.State.Cursor is { } cursor ? int.Parse(cursor, CultureInfo.InvariantCulture) + 1 : 0;
        for (var i = from; i < places.Count; i++)
        {
            await Task.CompletedTask;
            var p = places[i];
            yield return new PlaceRow { SourceId = p.Id, Name = p.Name, Latitude = p.Latitude, Longitude = p.Longitude };
            context.Checkpoint(new SourceCheckpoint(i.ToString(CultureInfo.InvariantCulture)));
        }
    }
}

/// <summary>Issue 19: two gazetteers of a real one's shape, loaded as sources with cross-source dedup on name and coordinates.</summary>
public class GazetteerDedupTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static RecordMatcher<PlaceRow> Matcher() => RecordMatcher.For<PlaceRow>("places")
        .Text("name", p => p.Name, weight: 0.6, required: true)
        .Geo("position", p => new GeoPoint(p.Longitude, p.Latitude), maxDistanceMeters: 5_000, weight: 0.4)
        .Build();

    [Fact]
    public async Task A_respelled_gazetteer_is_matched_with_recall_and_precision_loading_both_sources_with_the_defaults()
    {
        var (a, b) = Gazetteer.Generate(20_000, 2_000, twinShare: 0.85, seed: 19);
        Assert.True(a.Count(p => p.Name == "San Miguel") > 100, "many places share a common name");
        await using var sp = Services("gaz", a, b, _ => { });
        var runner = sp.GetRequiredService<IIngestionRunner>();
        var first = await runner.RunAsync("gazetteer_a", null, default);
        Assert.True(first.IsSuccess, first.ToString());
        var second = await runner.RunAsync("gazetteer_b", null, default);
        Assert.True(second.IsSuccess, second.ToString());

        var (recall, precision, right, twins, links) = Gazetteer.Score(b, await LinksAsync("gaz"));
        Assert.True(recall >= 0.98, $"recall {recall:0.000}: {right} of {twins} respelled places linked to their place");
        Assert.True(precision >= 0.995, $"precision {precision:0.000}: {right} right of {links} links");
        Assert.Equal(links, second.Counts.Linked);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM gaz.dedup_records WHERE NOT matched"));
    }

    [Fact]
    public async Task A_dedup_step_that_fails_once_leaves_its_records_pending_and_the_resumed_run_matches_every_one()
    {
        var (a, b) = Gazetteer.Generate(3_000, 600, twinShare: 0.85, seed: 7);
        await using var sp = Services("gaz_resume", a, b, o => o.BatchSize = 200);
        var runner = sp.GetRequiredService<IIngestionRunner>();
        Assert.True((await runner.RunAsync("gazetteer_a", null, default)).IsSuccess);

        // The first statement writing links fails once (a sequence is not rolled back): after B's first batch and
        // its checkpoint committed, before its matches did.
        await db.ExecuteAsync("""
            CREATE SEQUENCE gaz_resume.fail_once;
            CREATE FUNCTION gaz_resume.fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('gaz_resume.fail_once') = 1 THEN RAISE EXCEPTION 'injected dedup failure'; END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER fail_once BEFORE INSERT ON gaz_resume.record_links FOR EACH STATEMENT EXECUTE FUNCTION gaz_resume.fail_once();
            """);
        var failed = await runner.RunAsync("gazetteer_b", null, default);
        Assert.Equal(IngestionStatus.Failed, failed.Status);
        Assert.Contains("injected dedup failure", failed.Error!.Message);
        Assert.Equal(200L, await db.ScalarAsync<long>("SELECT count(*) FROM public.gaz_resume_b"));
        Assert.Equal(200L, await db.ScalarAsync<long>("SELECT count(*) FROM gaz_resume.dedup_records WHERE source = 'gazetteer_b' AND NOT matched"));

        var resumed = await runner.RunAsync("gazetteer_b", null, default);
        Assert.True(resumed.IsSuccess, resumed.ToString());
        Assert.Equal(400L, resumed.Counts.Created);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM gaz_resume.dedup_records WHERE NOT matched"));
        var (recall, precision, right, twins, _) = Gazetteer.Score(b, await LinksAsync("gaz_resume"));
        Assert.True(recall >= 0.98, $"recall {recall:0.000}: {right} of {twins}; the first batch's records must not be left unmatched");
        Assert.True(precision >= 0.995, $"precision {precision:0.000}");
    }

    private ServiceProvider Services(string schema, List<GazetteerPlace> a, List<GazetteerPlace> b, Action<SourceOptions> configureB)
    {
        var services = new ServiceCollection();
        services.AddIngestion()
            .UsePostgres(o => { o.ConnectionString = db.ConnectionString; o.Schema = schema; })
            .AddSource("gazetteer_a", _ => new PlaceSource(a), o => { o.MaxRetryAttempts = 0; o.CreateTable = true; o.Table = schema + "_a"; })
            .AddSource("gazetteer_b", _ => new PlaceSource(b), o => { o.MaxRetryAttempts = 0; o.CreateTable = true; o.Table = schema + "_b"; configureB(o); })
            .AddDedup(Matcher(), DedupPolicy.Link, "gazetteer_a", "gazetteer_b");
        return services.BuildServiceProvider();
    }

    private async Task<Dictionary<string, string>> LinksAsync(string schema)
    {
        var links = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var cmd = db.DataSource.CreateCommand($"""
            SELECT r.source_id, t.source_id FROM {schema}.record_links l
            JOIN {schema}.dedup_records r ON r.id = l.record_id JOIN {schema}.dedup_records t ON t.id = l.target_id
            WHERE l.status = 'linked' AND r.source = 'gazetteer_b' AND t.source = 'gazetteer_a'
            """);
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            links[reader.GetString(0)] = reader.GetString(1);
        }

        return links;
    }
}
