using System.Runtime.CompilerServices;
using Ingestion.Dedup;
using Ingestion.Hosting;
using Ingestion.Postgres.Dedup;
using Ingestion.Postgres.Hosting;
using Ingestion.Running;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Ingestion.Postgres.Tests.Dedup;

public sealed class EventRow
{
    public string SourceId { get; set; } = "";

    public string? Title { get; set; }

    public DateTimeOffset? StartsAt { get; set; }

    public string? Place { get; set; }

    public string? Url { get; set; }
}

public sealed class ListSource(IReadOnlyList<EventRow> rows) : IngestionSource<EventRow>
{
    public override async IAsyncEnumerable<EventRow> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var r in rows)
        {
            await Task.Yield();
            yield return r;
        }
    }
}

/// <summary>An event as a calendar publishes it: another class, other property names.</summary>
public sealed class CalendarRow
{
    public string SourceId { get; set; } = "";

    public string? Summary { get; set; }

    public DateTimeOffset Start { get; set; }

    public string? Location { get; set; }
}

public sealed class CalendarSource(IReadOnlyList<CalendarRow> rows) : IngestionSource<CalendarRow>
{
    public override async IAsyncEnumerable<CalendarRow> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (var r in rows)
        {
            await Task.Yield();
            yield return r;
        }
    }
}

public class PostgresDedupTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly DateTimeOffset T0 = new(2026, 6, 26, 19, 0, 0, TimeSpan.FromHours(-4));

    internal static RecordMatcher<EventRow> Matcher(string type = "events") => RecordMatcher.For<EventRow>(type)
        .Text("title", e => e.Title, weight: 0.6, required: true, minSimilarity: 0.3)
        .DateTime("starts_at", e => e.StartsAt, TimeSpan.FromHours(2), weight: 0.25, required: true)
        .Text("place", e => e.Place, weight: 0.15)
        .Carry("url", e => e.Url)
        .Thresholds(link: 0.8, review: 0.6)
        .Build();

    /// <summary>The dedup tables in <paramref name="schema"/> of the server at <paramref name="connectionString"/> (shared by the dedup test classes).</summary>
    internal static IngestionDatabase DedupDatabase(string connectionString, string schema) =>
        new(Options.Create(new PostgresIngestionOptions { ConnectionString = connectionString, Schema = schema }), [.. DedupMigrations.All]);

    /// <summary>An event's match profile (shared by the dedup test classes).</summary>
    internal static MatchProfile P(RecordMatcher<EventRow> m, string source, string id, string? title, DateTimeOffset? at, string? place = null, string? url = null) =>
        m.Profile(source, id, new EventRow { SourceId = id, Title = title, StartsAt = at, Place = place, Url = url });

    private IngestionDatabase Database(string schema) => DedupDatabase(db.ConnectionString, schema);

    [Theory]
    [InlineData("Festival International de Jazz de Montréal")]
    [InlineData("FESTIVAL INTERNATIONAL DE JAZZ DE MONTREAL - 2026")]
    [InlineData("Théâtre du Nouveau-Monde")]
    [InlineData("L'Œuvre de Sœur Thérèse, l’été")]
    [InlineData("The The")]
    [InlineData(" -- !! ")]
    public async Task The_sql_fold_built_on_unaccent_agrees_with_the_dotnet_normalizer(string text)
    {
        await using var database = Database("dedup_fold");
        var store = new PostgresDedupStore(database);
        var normalizer = new MatchKeyNormalizer();
        Assert.Equal(normalizer.Normalize(text), await store.FoldInDatabaseAsync(normalizer, text, default));
    }

    [Fact]
    public async Task Duplicates_across_sources_are_linked_with_reasons_and_shown_as_one_canonical_record()
    {
        await using var database = Database("dedup_link");
        var store = new PostgresDedupStore(database);
        var review = new RecordLinkReview(database, store);
        var m = Matcher();
        var first = await store.MatchBatchAsync(m, DedupPolicy.Link,
        [
            P(m, "eventbrite", "e1", "Festival International de Jazz de Montréal", T0, "Place des Arts"),
            P(m, "eventbrite", "e2", "Les Belles-Sœurs", T0.AddDays(2), "Théâtre du Nouveau Monde"),
            P(m, "eventbrite", "e3", "Nuit blanche à Montréal", T0.AddDays(5), "Quartier des spectacles"),
            P(m, "eventbrite", "e4", "Piknic Électronik", T0.AddDays(7), "Parc Jean-Drapeau"),
        ], Guid.NewGuid(), dryRun: false, default);
        Assert.Equal((0L, 0L), (first.Linked, first.ForReview));

        var second = await store.MatchBatchAsync(m, DedupPolicy.Link,
        [
            P(m, "opendata", "42", "FESTIVAL INTERNATIONAL DE JAZZ DE MONTREAL - 2026", T0.AddMinutes(30), "Place-des-Arts"),
            P(m, "opendata", "43", "Les Belles Soeurs", T0.AddDays(2), "Theatre du Nouveau-Monde"),
            P(m, "opendata", "44", "Nuit blanche Montréal édition spéciale", T0.AddDays(5).AddMinutes(90), "Quartier des Spectacles"),
            P(m, "opendata", "45", "Piknic Électronik", T0.AddDays(7).AddYears(1), "Parc Jean-Drapeau"),
        ], Guid.NewGuid(), dryRun: false, default);
        Assert.Equal((2L, 1L), (second.Linked, second.ForReview));

        var links = await review.ListAsync("events", null, 10, default);
        var jazz = Assert.Single(links, l => l.Record == new SourceRecordRef("opendata", "42"));
        Assert.Equal(new SourceRecordRef("eventbrite", "e1"), jazz.Target);
        Assert.Equal("linked", jazz.Status);
        Assert.StartsWith("link 0.", jazz.Reason);
        Assert.Contains("starts_at", jazz.Reason);
        Assert.Equal("review", Assert.Single(links, l => l.Record.SourceId == "44").Status);
        Assert.DoesNotContain(links, l => l.Record.SourceId == "45");

        // A third source joins the same group.
        var third = await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "ics", "uid-1@mtl", "Festival de Jazz de Montréal International", T0, "Place des Arts")], null, false, default);
        Assert.Equal(1L, third.Linked);
        var canonical = await review.GetCanonicalAsync("events", new SourceRecordRef("ics", "uid-1@mtl"), default);
        Assert.NotNull(canonical);
        Assert.Equal(new SourceRecordRef("eventbrite", "e1"), canonical.Canonical);
        Assert.Equal(["eventbrite:e1", "ics:uid-1@mtl", "opendata:42"], canonical.Aliases);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT members FROM dedup_link.dedup_canonical WHERE canonical_source_id = 'e1'"));

        // Re-reading the same records links nothing again.
        var again = await store.MatchBatchAsync(m, DedupPolicy.Link,
        [
            P(m, "opendata", "42", "FESTIVAL INTERNATIONAL DE JAZZ DE MONTREAL - 2026", T0.AddMinutes(30), "Place-des-Arts"),
            P(m, "opendata", "44", "Nuit blanche Montréal édition spéciale", T0.AddDays(5).AddMinutes(90), "Quartier des Spectacles"),
        ], Guid.NewGuid(), false, default);
        Assert.Equal((0L, 0L), (again.Linked, again.ForReview));
    }

    [Fact]
    public async Task Reviews_confirm_or_reject_and_a_rejected_pair_never_links_again()
    {
        await using var database = Database("dedup_review");
        var store = new PostgresDedupStore(database);
        var review = new RecordLinkReview(database, store);
        var m = Matcher();
        await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "a", "1", "Nuit blanche à Montréal", T0, "Quartier des spectacles"), P(m, "a", "2", "Osheaga", T0.AddDays(1), "Parc Jean-Drapeau")], null, false, default);
        var r = await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "b", "1", "Nuit blanche Montréal édition spéciale", T0.AddMinutes(90), "Quartier des Spectacles"), P(m, "b", "2", "OSHEAGA", T0.AddDays(1), "Parc Jean Drapeau")], null, false, default);
        Assert.Equal((1L, 1L), (r.Linked, r.ForReview));

        await review.ConfirmAsync("events", new SourceRecordRef("b", "1"), new SourceRecordRef("a", "1"), "alice", default);
        var confirmed = Assert.Single(await review.ListAsync("events", "confirmed", 10, default));
        Assert.Equal("alice", confirmed.ReviewedBy);
        Assert.Equal(2, (await review.GetCanonicalAsync("events", new SourceRecordRef("b", "1"), default))!.Aliases.Count);

        await review.RejectAsync("events", new SourceRecordRef("a", "2"), new SourceRecordRef("b", "2"), "bob", default);
        Assert.Single((await review.GetCanonicalAsync("events", new SourceRecordRef("b", "2"), default))!.Aliases);
        var rematch = await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "b", "2", "OSHEAGA", T0.AddDays(1), "Parc Jean Drapeau")], null, false, default);
        Assert.Equal(0L, rematch.Linked);
        var rematchOther = await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "a", "2", "Osheaga", T0.AddDays(1), "Parc Jean-Drapeau")], null, false, default);
        Assert.Equal(0L, rematchOther.Linked);
        Assert.Single((await review.GetCanonicalAsync("events", new SourceRecordRef("a", "2"), default))!.Aliases);
        Assert.Contains("was rejected", (await Assert.ThrowsAsync<InvalidOperationException>(() => review.ConfirmAsync("events", new SourceRecordRef("b", "2"), new SourceRecordRef("a", "2"), "carol", default))).Message);
        Assert.Contains("No 'events' record x:9", (await Assert.ThrowsAsync<InvalidOperationException>(() => review.RejectAsync("events", new SourceRecordRef("x", "9"), new SourceRecordRef("a", "2"), "carol", default))).Message);
    }

    [Fact]
    public async Task Merge_keeps_one_canonical_row_with_field_precedence_and_reports_conflicts()
    {
        await using var database = Database("dedup_merge");
        var store = new PostgresDedupStore(database);
        var review = new RecordLinkReview(database, store);
        var m = Matcher();
        var policy = DedupPolicy.Merge("opendata", "eventbrite");
        await store.MatchBatchAsync(m, policy, [P(m, "eventbrite", "e1", "Jazz Fest Montréal", T0, null, "https://eventbrite/e1")], null, false, default);
        var r = await store.MatchBatchAsync(m, policy, [P(m, "opendata", "42", "Jazz Fest - Montréal", T0.AddMinutes(30), "Place des Arts", null)], null, false, default);
        Assert.Equal((1L, 1L, 1L), (r.Linked, r.Merged, r.Conflicts));
        var canonical = await review.GetCanonicalAsync("events", new SourceRecordRef("eventbrite", "e1"), default);
        Assert.NotNull(canonical?.Merged);
        Assert.Equal("Jazz Fest - Montréal", canonical.Merged["title"]);
        Assert.Equal("Place des Arts", canonical.Merged["place"]);
        Assert.Equal("https://eventbrite/e1", canonical.Merged["url"]);
        Assert.StartsWith(T0.AddMinutes(30).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss", System.Globalization.CultureInfo.InvariantCulture), canonical.Merged["starts_at"]);
        Assert.Contains("\"field\": \"starts_at\"", canonical.MergeConflicts);
        Assert.Contains("\"winner\": \"opendata\"", canonical.MergeConflicts);
    }

    [Fact]
    public async Task Report_only_links_nothing_and_dry_runs_commit_nothing()
    {
        await using var database = Database("dedup_report");
        var store = new PostgresDedupStore(database);
        var m = Matcher();
        await store.MatchBatchAsync(m, DedupPolicy.ReportOnly, [P(m, "a", "1", "Osheaga", T0)], null, false, default);
        var dry = await store.MatchBatchAsync(m, DedupPolicy.ReportOnly, [P(m, "b", "1", "OSHEAGA", T0)], null, dryRun: true, default);
        Assert.Equal((0L, 1L), (dry.Linked, dry.ForReview));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_report.record_links"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_report.dedup_records"));
        var real = await store.MatchBatchAsync(m, DedupPolicy.ReportOnly, [P(m, "b", "1", "OSHEAGA", T0)], null, false, default);
        Assert.Equal((0L, 1L), (real.Linked, real.ForReview));
        Assert.Equal("reported", await db.ScalarAsync<string>("SELECT status FROM dedup_report.record_links"));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(DISTINCT canonical_id) FROM dedup_report.dedup_records"));
    }

    [Fact]
    public async Task Titles_that_normalize_to_empty_are_counted_unmatchable_and_never_stored()
    {
        await using var database = Database("dedup_empty");
        var store = new PostgresDedupStore(database);
        var m = Matcher();
        await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "a", "1", "!!!", T0)], null, false, default);
        var r = await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "b", "1", " -- ", T0), P(m, "b", "2", null, T0), P(m, "b", "3", "!!!", T0)], null, false, default);
        Assert.Equal((0L, 3L), (r.Linked, r.Unmatchable));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_empty.dedup_records"));
    }

    [Fact]
    public async Task Existing_table_rows_are_indexed_in_sql_and_incoming_records_find_their_duplicates_among_thousands()
    {
        await using var database = Database("dedup_scale");
        await database.EnsureMigratedAsync(default);
        await db.ExecuteAsync("""
            CREATE TABLE public.existing_events (source text, source_id text, title text, starts_at timestamptz, place text);
            INSERT INTO public.existing_events
            SELECT 'legacy', 'x' || g, (ARRAY['Concert','Spectacle','Festival','Exposition','Atelier'])[1 + g % 5] || ' numéro ' || g || ' ' || md5(g::text),
                   timestamptz '2026-01-01 00:00+00' + (g * interval '37 minutes'), 'Salle ' || (g % 50)
            FROM generate_series(1, 4000) g;
            INSERT INTO public.existing_events VALUES ('legacy', 'jazz', 'Festival International de Jazz de Montréal', '2026-06-26 23:00+00', 'Place des Arts');
            """);
        var store = new PostgresDedupStore(database);
        var m = Matcher();
        var indexed = await store.IndexTableAsync(m, ("public", "existing_events"), "source", "source_id", new Dictionary<string, string> { ["title"] = "title", ["starts_at"] = "starts_at", ["place"] = "place" }, default);
        Assert.Equal(4001, indexed);

        var incoming = Enumerable.Range(1, 300).Select(i => P(m, "ics", $"u{i}", $"Conférence inédite {i} sur le sujet {i * 7}", T0.AddDays(i), "Ailleurs")).ToList();
        incoming.Add(P(m, "ics", "jazz", "FESTIVAL INTERNATIONAL DE JAZZ DE MONTREAL - 2026", T0.AddMinutes(10), "Place-des-Arts"));
        var r = await store.MatchBatchAsync(m, DedupPolicy.Link, incoming, null, false, default);
        Assert.Equal(1L, r.Linked);
        Assert.True(r.Compared < 300, $"the candidate search should compare few pairs, compared {r.Compared}");
        var canonical = await new RecordLinkReview(database, store).GetCanonicalAsync("events", new SourceRecordRef("ics", "jazz"), default);
        Assert.Equal(["ics:jazz", "legacy:jazz"], canonical!.Aliases);
    }

    [Fact]
    public async Task Runs_report_linked_and_review_counts()
    {
        var services = new ServiceCollection();
        var a = new List<EventRow> { new() { SourceId = "e1", Title = "Festival International de Jazz de Montréal", StartsAt = T0, Place = "Place des Arts" }, new() { SourceId = "e2", Title = "Nuit blanche à Montréal", StartsAt = T0.AddDays(3), Place = "Quartier des spectacles" } };
        var b = new List<EventRow> { new() { SourceId = "42", Title = "FESTIVAL INTERNATIONAL DE JAZZ DE MONTREAL - 2026", StartsAt = T0.AddMinutes(15), Place = "Place-des-Arts" }, new() { SourceId = "43", Title = "Nuit blanche Montréal édition spéciale", StartsAt = T0.AddDays(3).AddMinutes(90), Place = "Quartier des Spectacles" } };
        services.AddIngestion()
            .UsePostgres(o => { o.ConnectionString = db.ConnectionString; o.Schema = "dedup_run"; })
            .AddSource("eventbrite", _ => new ListSource(a), o => { o.MaxRetryAttempts = 0; o.CreateTable = true; })
            .AddSource("opendata", _ => new ListSource(b), o => { o.MaxRetryAttempts = 0; o.CreateTable = true; })
            .AddDedup(Matcher(), DedupPolicy.Link, "eventbrite", "opendata");
        await using var sp = services.BuildServiceProvider();
        var runner = sp.GetRequiredService<IIngestionRunner>();
        var first = await runner.RunAsync("eventbrite", null, default);
        Assert.Equal((0L, 0L), (first.Counts.Linked, first.Counts.ForReview));
        var second = await runner.RunAsync("opendata", null, default);
        Assert.True(second.IsSuccess, second.ToString());
        Assert.Equal((1L, 1L), (second.Counts.Linked, second.Counts.ForReview));
        Assert.True(second.Counts.AddsUp);
        Assert.Contains("linked=1 for_review=1", second.Counts.ToString());
        var job = (await sp.GetRequiredService<Ingestion.Stores.IImportJobStore>().ListRecentAsync(1, "opendata", default))[0];
        Assert.Equal(1L, job.Counts.Linked);

        var dry = await runner.RunAsync("opendata", new RunRequest { DryRun = true }, default);
        Assert.Equal(0L, dry.Counts.Linked);
        Assert.Throws<ArgumentException>(() => new ServiceCollection().AddIngestion().AddDedup(Matcher(), DedupPolicy.Link, "only-one"));
    }
    [Fact]
    public async Task Sources_of_different_classes_are_linked_through_the_postgres_sink_with_counts_in_the_job_rows()
    {
        // One matcher over object: each source yields its own class, the selectors read each.
        var matcher = RecordMatcher.For<object>("mixed_events")
            .Text("title", r => r switch { EventRow e => e.Title, CalendarRow c => c.Summary, _ => null }, weight: 0.6, required: true, minSimilarity: 0.3)
            .DateTime("starts_at", r => r switch { EventRow e => e.StartsAt, CalendarRow c => c.Start, _ => null }, TimeSpan.FromHours(2), weight: 0.25, required: true)
            .Text("place", r => r switch { EventRow e => e.Place, CalendarRow c => c.Location, _ => null }, weight: 0.15)
            .Thresholds(link: 0.8, review: 0.6)
            .Build();
        var listed = new List<EventRow>
        {
            new() { SourceId = "e1", Title = "Festival International de Jazz de Montréal", StartsAt = T0, Place = "Place des Arts" },
            new() { SourceId = "e2", Title = "Nuit blanche à Montréal", StartsAt = T0.AddDays(3), Place = "Quartier des spectacles" },
            new() { SourceId = "e3", Title = "Piknic Électronik", StartsAt = T0.AddDays(7), Place = "Parc Jean-Drapeau" },
        };
        var calendar = new List<CalendarRow>
        {
            new() { SourceId = "jazz@cal", Summary = "FESTIVAL INTERNATIONAL DE JAZZ DE MONTREAL - 2026", Start = T0.AddMinutes(15), Location = "Place-des-Arts" },
            new() { SourceId = "nuit@cal", Summary = "Nuit blanche Montréal édition spéciale", Start = T0.AddDays(3).AddMinutes(90), Location = "Quartier des Spectacles" },
            new() { SourceId = "piknic@cal", Summary = "Piknic Électronik", Start = T0.AddDays(7).AddYears(1), Location = "Parc Jean-Drapeau" },
            new() { SourceId = "other@cal", Summary = "Marché de nuit du Vieux-Port", Start = T0.AddMinutes(30), Location = "Place des Arts" },
        };
        var services = new ServiceCollection();
        services.AddIngestion()
            .UsePostgres(o => { o.ConnectionString = db.ConnectionString; o.Schema = "dedup_mixed"; })
            .AddSource("agenda", _ => new ListSource(listed), o => { o.MaxRetryAttempts = 0; o.CreateTable = true; o.Table = "mixed_agenda"; })
            .AddSource("calendar", _ => new CalendarSource(calendar), o => { o.MaxRetryAttempts = 0; o.CreateTable = true; o.Table = "mixed_calendar"; })
            .AddDedup(matcher, DedupPolicy.Link, "agenda", "calendar");
        await using var sp = services.BuildServiceProvider();
        var runner = sp.GetRequiredService<IIngestionRunner>();
        Assert.True((await runner.RunAsync("agenda", null, default)).IsSuccess);
        var result = await runner.RunAsync("calendar", null, default);
        Assert.True(result.IsSuccess, result.ToString());
        Assert.Equal((4L, 1L, 1L), (result.Counts.Created, result.Counts.Linked, result.Counts.ForReview));

        // The rows are in the target tables, the links in record_links, the counts in the job row.
        Assert.Equal(4L, await db.ScalarAsync<long>("SELECT count(*) FROM public.mixed_calendar"));
        Assert.Equal(
            "calendar:jazz@cal>agenda:e1=linked;calendar:nuit@cal>agenda:e2=review",
            await db.ScalarAsync<string>("""
                SELECT string_agg(a.source || ':' || a.source_id || '>' || b.source || ':' || b.source_id || '=' || l.status, ';' ORDER BY a.source_id)
                FROM dedup_mixed.record_links l JOIN dedup_mixed.dedup_records a ON a.id = l.record_id JOIN dedup_mixed.dedup_records b ON b.id = l.target_id
                WHERE l.record_type = 'mixed_events'
                """));
        Assert.Equal(result.RunId, await db.ScalarAsync<Guid>("SELECT run_id FROM dedup_mixed.record_links WHERE status = 'linked'"));
        var job = (await sp.GetRequiredService<Ingestion.Stores.IImportJobStore>().ListRecentAsync(1, "calendar", default))[0];
        Assert.Equal((1L, 1L), (job.Counts.Linked, job.Counts.ForReview));
        Assert.Equal("1/1", await db.ScalarAsync<string>($"SELECT linked || '/' || for_review FROM dedup_mixed.import_jobs WHERE id = '{result.RunId}'"));

        var canonical = await sp.GetRequiredService<RecordLinkReview>().GetCanonicalAsync("mixed_events", new SourceRecordRef("calendar", "jazz@cal"), default);
        Assert.Equal(["agenda:e1", "calendar:jazz@cal"], canonical!.Aliases);

        // Running the calendar again links nothing new; the links stay.
        var again = await runner.RunAsync("calendar", null, default);
        Assert.Equal((0L, 0L, 4L), (again.Counts.Linked, again.Counts.ForReview, again.Counts.Unchanged));
        Assert.Equal(2L, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_mixed.record_links"));
    }

    [Fact]
    public async Task A_source_whose_class_the_matcher_cannot_read_fails_naming_both_classes()
    {
        var services = new ServiceCollection();
        services.AddIngestion()
            .UsePostgres(o => { o.ConnectionString = db.ConnectionString; o.Schema = "dedup_wrong_class"; })
            .AddSource("agenda", _ => new ListSource([new EventRow { SourceId = "e1", Title = "Festival", StartsAt = T0 }]), o => { o.MaxRetryAttempts = 0; o.CreateTable = true; })
            .AddSource("calendar", _ => new CalendarSource([new CalendarRow { SourceId = "c1", Summary = "Festival", Start = T0 }]), o => { o.MaxRetryAttempts = 0; o.CreateTable = true; })
            .AddDedup(Matcher(), DedupPolicy.Link, "agenda", "calendar");
        await using var sp = services.BuildServiceProvider();
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("calendar", null, default);
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("Source 'calendar' yields CalendarRow records, but its dedup set matches EventRow records", result.Error!.Message);
    }

    [Fact]
    public async Task A_statement_that_times_out_fails_naming_it_and_is_not_retried_as_transient()
    {
        await using var database = new IngestionDatabase(Options.Create(new PostgresIngestionOptions { ConnectionString = db.ConnectionString + ";Command Timeout=1", Schema = "dedup_timeout" }), [.. DedupMigrations.All]);
        await database.EnsureMigratedAsync(default);
        var store = new PostgresDedupStore(database);
        var m = Matcher();

        // Another session holds the blocks table: the staging statement waits past the 1 s command timeout.
        await using var conn = await db.DataSource.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using (var lockCmd = new Npgsql.NpgsqlCommand("LOCK TABLE dedup_timeout.dedup_blocks IN ACCESS EXCLUSIVE MODE", conn, tx))
        {
            await lockCmd.ExecuteNonQueryAsync();
        }

        var e = await Assert.ThrowsAsync<IngestionException>(() => store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "a", "1", "Osheaga", T0)], null, false, default));
        Assert.Contains("Dedup of 'events': staging 1 records timed out (the connection's Command Timeout", e.Message);
        Assert.Contains("not retried", e.Message);
        Assert.False(IngestionRunner.IsTransient(e));
    }

    [Fact]
    public async Task A_record_filed_again_with_another_title_leaves_no_stale_block_and_is_found_by_its_new_title_only()
    {
        await using var database = Database("dedup_refile");
        var store = new PostgresDedupStore(database);
        var m = Matcher();
        await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "a", "1", "Osheaga", T0)], null, false, default);
        await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "a", "1", "Piknic Électronik", T0)], null, false, default);
        var keys = m.Blocking.FileKeys(P(m, "a", "1", "Piknic Électronik", T0));
        Assert.Equal(keys.Count, await db.ScalarAsync<long>("SELECT count(*) FROM dedup_refile.dedup_blocks"));
        Assert.Equal(0L, (await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "b", "1", "OSHEAGA", T0)], null, false, default)).Linked);
        Assert.Equal(1L, (await store.MatchBatchAsync(m, DedupPolicy.Link, [P(m, "b", "2", "PIKNIC ELECTRONIK", T0)], null, false, default)).Linked);
    }
}
